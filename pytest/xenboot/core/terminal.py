"""The user's terminal joined to a byte stream (a guest console, a dom0
shell) until the escape key: raw mode, both directions, nothing buffered."""
import os
import select
import sys
import termios
import tty

from xenboot.core.errors import BadInput

ESCAPE = b"\x1d"  # Ctrl-]
ESCAPE_NAME = "Ctrl-]"
# How often `stop()` is asked (e.g. has the domain ended?) while nobody types.
STOP_CHECK = 0.2


def require_tty(what):
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise BadInput(f"{what} needs a terminal: run it from an interactive shell, not a pipe or CI")


def bridge(read_ready, read, write, stop=lambda: False, escape=ESCAPE):
    """Copy the terminal's keys to `write(bytes)` and what `read()` returns
    (when `read_ready` is readable) to the terminal, until the escape key,
    the other side's end (read() -> b""), or stop(). Returns why it ended."""
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    saved = termios.tcgetattr(stdin)
    tty.setraw(stdin)
    try:
        while not stop():
            ready, _, _ = select.select([stdin, read_ready], [], [], STOP_CHECK)
            if read_ready in ready:
                data = read()
                if not data:
                    return "closed"
                os.write(stdout, data)
            if stdin in ready:
                keys = os.read(stdin, 1024)
                if escape in keys:
                    before = keys.split(escape, 1)[0]
                    if before:
                        write(before)
                    return "escape"
                write(keys)
        return "stopped"
    finally:
        termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
