"""A real boot's run folder as a REAL test transcript (see xenboot.testing.player):

    python3 -m xenboot.testing.transcript RUN_DIR --tree 'owner/repo @ commit' \\
        --version 10.4-RELEASE --local-change none|'what' [--xen '...'] > NAME.txt

console.log holds the bytes, console.jsonl when they came, what the judge
typed and how the domain ended; result.json the kernel's sha256, the spec,
the verdict and the xenctx stack. The console becomes timed `~` lines; a
debugger session becomes `@ session PROMPT` with each command's reply (the
echo and the next prompt taken off, which the player writes itself), ddb's
pager `@ more`, the spec's continue or reset command `@ leave`, and its
[debugger] nudge `@ hold` (what came after it had been held back).
xen.log's lines become `x` lines at their times: a console_io line at the
time console.jsonl gives it, Xen's own messages by their Xen timestamps
from there (without a console_io line to place them by, at the end).
Time spent in a session is taken off what follows, as the player stops its
clock there. A byte that is not UTF-8 plays back as its Latin-1 character.
"""
import argparse
import heapq
import json
import os
import re
import sys

from xenboot.console import xenconsole
from xenboot.core import consolelog
from xenboot.core.errors import BadInput
from xenboot.testing.player import END_REASONS, REAL
from xenboot.judge.spec import load_spec

_XEN_LINE = re.compile(r"^\((?P<who>XEN|d\d+)\) (?:\[\s*(?P<ts>\d+(?:\.\d+)?)\] )?")
_PLAIN = re.compile(r"[\x20-\x5b\x5d-\x7e]")
_ESCAPES = {"\r": "\\r", "\n": "\\n", "\t": "\\t", "\x1b": "\\e", "\\": "\\\\"}
PAGER, PAGER_ERASE = b"--More--\r", b"        \r"


def escape(data):
    """Bytes as the text of a `~` line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return "".join(c if _PLAIN.match(c) or ord(c) > 0x7f else _ESCAPES.get(c, f"\\x{ord(c):02x}")
                   for c in text)


def _lines(data):
    """data split after each \\n (and a \\r right after it: FreeBSD's Xen console ends lines \\n\\r)."""
    return [part for part in re.split(rb"(?<=\n)(?!\r)|(?<=\n\r)", data) if part]


def _events(run_dir):
    """(time, "recv", bytes) | (time, "send", text) | (time, "end", reason)
    | (time, "xen", line) in order."""
    jsonl = list(consolelog.read(os.path.join(run_dir, consolelog.FILE)))
    return heapq.merge(_console_events(run_dir, jsonl), _xen_events(run_dir, jsonl), key=lambda e: e[0])


def _console_events(run_dir, jsonl):
    with open(os.path.join(run_dir, "console.log"), "rb") as log:
        t = 0.0
        for record in jsonl:
            t = consolelog.time_of(record, t)
            if consolelog.is_console(record):
                yield t, "recv", log.read(record["n"])
            elif record.get("dir") == consolelog.SEND:
                yield t, "send", record["text"]
            elif record.get("end_reason"):
                yield t, "end", record["end_reason"]


def _xen_events(run_dir, jsonl):
    """xen.log's lines, each at a time since unpause: a console_io line's
    from console.jsonl (which has them in the same order), Xen's messages
    from their Xen timestamps, offset as the console_io line before them
    (or the first one) was; without any console_io line, inf (the end)."""
    try:
        with open(os.path.join(run_dir, "xen.log"), encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    times = iter([r["t"] for r in jsonl if consolelog.is_xen(r)])
    # console.jsonl has the console_io lines the judge saw: each once.
    resends = xenconsole.Resends()
    placed, offset = [], None
    for line in lines:
        m = _XEN_LINE.match(line)
        ts = float(m["ts"]) if m and m["ts"] else None
        seen = m and m["who"] != "XEN" and resends.fresh(line[m.end():])
        t = next(times, None) if seen else None
        if t is not None and ts is not None:
            offset = t - ts
        placed.append((t, ts, line))
    if offset is None:
        return [(float("inf"), "xen", line) for _, _, line in placed]
    events = []
    for t, ts, line in placed:
        if t is None:
            t = ts + offset if ts is not None else (events[-1][0] if events else 0.0)
        events.append((max(0.0, t), "xen", line))
    return sorted(events, key=lambda e: e[0])


class _Writer:
    def __init__(self):
        self.lines = []
        self.paused = 0.0     # seconds spent in sessions so far

    def timed(self, chunks):
        for t, data in chunks:
            for part in _lines(data):
                self.lines.append(f"{max(0.0, t - self.paused):.3f} ~ {escape(part)}")

    def reply(self, data):
        for part in _lines(data):
            self.lines.append(f"      ~ {escape(part)}")


def _strip_front(chunks, prefixes):
    """chunks without the first of `prefixes` that the output starts with."""
    data = b"".join(d for _, d in chunks)
    cut = next((len(p) for p in prefixes if p and data.startswith(p)), 0)
    kept = []
    for t, d in chunks:
        kept.append((t, d[cut:]))
        cut = max(0, cut - len(d))
    return [(t, d) for t, d in kept if d]


def _echoes(command):
    """What a debugger shows for a typed line, longest first."""
    echo = command.encode("utf-8")
    return [echo + e for e in (b"\r\n", b"\n\r", b"\n", b"\r")] + [echo]


def convert(run_dir, provenance, leaving, nudge=""):
    """The transcript text for the recording in run_dir; `leaving` are the
    commands after which the boot goes on (the spec's continue and reset),
    `nudge` the key the judge typed to let held output out."""
    out = _Writer()
    chunks = []             # (time, bytes) received and not yet written
    session = None          # (prompt, time it came) inside a debugger session
    command = None          # the last line typed
    front = []              # what the next output may start with: an echo, the pager's eraser
    end = None
    xen = []                # (transcript time, line) of Xen's console
    for t, kind, value in _events(run_dir):
        if kind == "xen":
            xen.append((max(0.0, t - out.paused), value))
            continue
        if kind == "end":
            end = end or (t, value)
            continue
        if kind == "recv":
            chunks.append((t, value))
            continue
        if nudge and value == nudge:
            if session is None:
                # The clock stood still while the console held its output.
                kept = _strip_front(chunks, front)
                out.timed(kept)
                last = kept[-1][0] if kept else t
                out.lines.append(f"{max(0.0, last - out.paused):.3f} @ hold")
                out.paused += max(0.0, t - last)
            else:
                out.reply(b"".join(d for _, d in _strip_front(chunks, front)))
                out.lines.append("      @ hold")
            chunks, front = [], []
            continue
        data = b"".join(d for _, d in _strip_front(chunks, front))
        if not value.endswith(("\r", "\n")):
            if session is None:
                raise BadInput(f"{run_dir}: {value!r} was typed at {t} s outside a debugger session; "
                               "only the judge's own sessions convert")
            # A pager key: the reply so far, up to ddb's "--More--".
            at = data.rfind(PAGER)
            out.reply(data[:at] if at >= 0 else data)
            out.lines.append("      @ more")
            chunks, front = [], [PAGER_ERASE]
            continue
        if session is None:
            prompt = data[max(data.rfind(b"\n"), data.rfind(b"\r")) + 1:]
            if not prompt or not re.fullmatch(rb"[\x20-\x7e]+", prompt):
                raise BadInput(f"{run_dir}: a line was typed at {t} s after {prompt!r}, not a prompt; "
                               "only the judge's own sessions convert")
            kept = _strip_front(chunks, front)
            out.timed(_without_tail(kept, len(prompt)))
            session = (prompt, kept[-1][0] if kept else t)
            out.lines.append(f"{max(0.0, session[1] - out.paused):.3f} @ session "
                             f"{json.dumps(prompt.decode('ascii'))}")
        else:
            out.reply(data[:-len(session[0])] if data.endswith(session[0]) else data)
        command = value.rstrip("\r\n")
        out.lines.append(f"      = {command}")
        chunks, front = [], _echoes(command)
        if command in leaving:
            out.lines.append("      @ leave")
            out.paused += max(0.0, t - session[1])
            session = None
    ending = f"end {end[1]}" if end and end[1] in END_REASONS else "silence"
    if session is not None:
        # Still in the debugger when the recording stopped (the spec said
        # stop, or the domain ended there): the rest is the last reply.
        data = b"".join(d for _, d in _strip_front(chunks, front))
        out.reply(data[:-len(session[0])] if data.endswith(session[0]) else data)
        if end:
            out.lines.append(f"      @ {ending}")
    else:
        kept = _strip_front(chunks, front)
        out.timed(kept)
        last = kept[-1][0] if kept else 0.0
        out.lines.append(f"{max(0.0, (end[0] if end else last) - out.paused):.3f} @ {ending}")
    return "\n".join(header(provenance) + _with_xen(out.lines, xen)) + "\n"


def _with_xen(lines, xen):
    """lines with Xen's `x` lines put before the first timed line that
    comes after them; those after the last timed line (the end, or a
    session the recording stopped in) go before it, at its time, so that
    the player plays them."""
    last = max((i for i, line in enumerate(lines) if line[:1].isdigit()), default=None)
    merged, pending = [], list(xen)
    for i, line in enumerate(lines):
        if line[:1].isdigit():
            t = float(line.split()[0])
            while pending and (pending[0][0] < t or i == last):
                at, text = pending.pop(0)
                merged.append(f"{min(at, t):.3f} x {text}")
        merged.append(line)
    return merged


def _without_tail(chunks, n):
    """chunks less their last n bytes."""
    kept = list(chunks)
    while n and kept:
        t, d = kept.pop()
        if len(d) > n:
            kept.append((t, d[:-n]))
            n = 0
        else:
            n -= len(d)
    return kept


def header(found):
    lines = [f"{REAL} console of a real boot, converted from its run folder by xenboot.testing.transcript"]
    return lines + [f"# {key}: {value}" for key, value in found.items()]


def provenance_of(run_dir, tree, version, local_change, xen=None):
    """The header's fields: the given ones and what result.json recorded."""
    try:
        with open(os.path.join(run_dir, "result.json")) as f:
            result = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise BadInput(f"{run_dir}/result.json: {e}; give a boot's run folder") from None
    found = {"tree": tree, "version": version, "local-change": local_change,
             "kernel-sha256": (result.get("kernel") or {}).get("sha256"),
             "xen": xen or (result.get("host") or {}).get("xen_version"),
             "spec": (result.get("spec") or {}).get("name"), "verdict": result.get("verdict"),
             "failed-at": result.get("failed_at"),
             "cmdline": ((result.get("request") or {}).get("cmdline") or None)}
    frames = (result.get("diagnosis") or {}).get("frames")
    if frames:
        found["xenctx-frames"] = " < ".join(frames)
    missing = [k for k in ("kernel-sha256", "xen", "spec", "verdict") if not found[k]]
    if missing:
        raise BadInput(f"{run_dir}/result.json records no {', '.join(missing)}; give them or use a boot's run folder")
    return {k: v for k, v in found.items() if v}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m xenboot.testing.transcript",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a boot's run folder (console.log, console.jsonl, result.json)")
    parser.add_argument("--tree", required=True, help="the FreeBSD tree: 'owner/repo @ commit'")
    parser.add_argument("--version", required=True, help="its release, e.g. 10.4-RELEASE")
    parser.add_argument("--local-change", required=True, help="'none', or what was changed by hand")
    parser.add_argument("--xen", help="the Xen build (default: the version result.json records)")
    parser.add_argument("--out", help="the transcript file (default: stdout)")
    args = parser.parse_args(argv)
    found = provenance_of(args.run_dir, args.tree, args.version, args.local_change, args.xen)
    debugger = load_spec(found["spec"]).debugger
    text = convert(args.run_dir, found, leaving=(debugger.continue_, debugger.reset), nudge=debugger.nudge)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
