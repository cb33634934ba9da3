"""Console bytes as a terminal shows them: what the judge searches, what a
progress line or a report quotes, and what the lab quotes from host.log
when its host fails; below every layer that reads a console."""
import os
import re

# ANSI/VT escape sequences: CSI, OSC, two-byte, or a lone ESC.
_ESCAPE = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b\n]*(?:\x07|\x1b\\)?|[@-Z\\-_])?")
# Control characters but \t, and \n and \r which carry the line structure.
_CONTROLS = bytes(range(0x20)).translate(None, b"\t\n\r") + b"\x7f"


def clean(data):
    """Console bytes as a terminal would show them, as text: no escape noise or
    control characters, \\r\\n as \\n, and of a line rewritten with bare \\r
    (ddb's `--More--` eraser, spinners) the last rewrite only.

    Works on bytes with C-speed primitives (an ASCII control byte is never
    part of a UTF-8 character); the regex runs only where an ESC is."""
    if b"\x1b" in data:
        data = _ESCAPE.sub(b"", data)
    data = data.translate(None, _CONTROLS)
    if b"\r" in data:
        data = _overwrite(data.replace(b"\r\n", b"\n"))
    return data.decode("utf-8", "replace")


def _overwrite(data):
    out = []
    pos = 0
    while (i := data.find(b"\r", pos)) >= 0:
        nl = data.rfind(b"\n", pos, i)
        start = nl + 1 if nl >= 0 else pos
        end = data.find(b"\n", i)
        if end < 0:
            end = len(data)
        line = data[start:end].rstrip(b"\r")
        out.append(data[pos:start])
        out.append(line[line.rfind(b"\r") + 1:])
        pos = end
    out.append(data[pos:])
    return b"".join(out)


# Enough of a log's end to hold its last line; older bytes are never read.
TAIL_BYTES = 4096


def console_tail(path, count, nbytes=TAIL_BYTES):
    """The last `count` non-empty lines of a console log as a terminal shows
    them, read from its last `nbytes` only; [] when it cannot be read."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - nbytes))
            text = clean(f.read())
    except OSError:
        return []
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return lines[-count:]
