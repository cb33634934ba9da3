"""Terminal progress for long stages: the stage, its elapsed time and the
last console line, on one line redrawn in place.

On a terminal the line is redrawn a few times a second and messages scroll
above it. When stderr is not a terminal, or CI=true, there is no redrawing
(a CI log would fill with carriage returns): messages and stage changes are
plain lines, and a heartbeat line every HEARTBEAT seconds shows that a long
stage is still alive and where its console is.

A Progress is also the `progress(line)` callable that boot(), the lab and
the nightly pipeline take, so the same messages reach either form:

    with Progress() as progress:
        progress.stage("boot", logs=[os.path.join(out, "console.log")])
        record = boot(req, progress=progress)
"""
import os
import shutil
import sys
import threading
import time

from xenboot.core.text import console_tail

REDRAW = 0.2
HEARTBEAT = 30.0
def is_live(stream):
    """Redraw in place only for a person at a terminal."""
    ci = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")
    return not ci and hasattr(stream, "isatty") and stream.isatty()


def last_line(paths):
    """The last line of whichever log changed most recently; "" before any has one."""
    newest, mtime = None, -1.0
    for path in paths:
        try:
            m = os.stat(path).st_mtime
        except OSError:
            continue
        if m > mtime:
            newest, mtime = path, m
    lines = console_tail(newest, 1) if newest else []
    return lines[0].strip() if lines else ""


class Progress:
    """`progress(line)` prints a message; `progress.stage(name, logs)` starts
    a stage whose elapsed time and newest log line the status shows."""

    def __init__(self, stream=None, live=None, clock=time.monotonic):
        self.stream = stream or sys.stderr
        self.live = is_live(self.stream) if live is None else live
        self.clock = clock
        self.name = None
        self.started = None
        self.logs = []
        self._lock = threading.Lock()
        self._shown = False
        self._last_beat = None
        self._stop = threading.Event()
        self._ticker = None

    def __enter__(self):
        self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
        self._ticker.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._stop.set()
        if self._ticker:
            self._ticker.join()
            self._ticker = None
        with self._lock:
            self._erase()
            self._end_stage()

    def __call__(self, line):
        with self._lock:
            self._erase()
            self._write(f"{line}\n")
            self._draw()

    def stage(self, name, logs=()):
        with self._lock:
            self._erase()
            self._end_stage()
            self.name, self.started, self.logs = name, self.clock(), list(logs)
            self._last_beat = self.started
            if not self.live:
                self._write(f"{name}: started\n")
            self._draw()

    def watch(self, logs):
        """The logs whose newest line the status shows from now on."""
        with self._lock:
            self.logs = list(logs)

    def status(self):
        """`stage  12.3s  last console line`, or "" outside a stage."""
        if self.name is None:
            return ""
        text = f"{self.name}  {self.clock() - self.started:5.1f}s"
        line = last_line(self.logs)
        return f"{text}  {line}" if line else text

    def refresh(self):
        """Redraw (terminal) or, once a heartbeat is due, print the status."""
        with self._lock:
            if self.live:
                self._erase()
                self._draw()
            elif self.name is not None and self.clock() - self._last_beat >= HEARTBEAT:
                self._last_beat = self.clock()
                self._write(f"{self.status()}\n")

    # -- internals (called with the lock held) --------------------------------

    def _tick(self):
        while not self._stop.wait(REDRAW):
            self.refresh()

    def _end_stage(self):
        if self.name is not None:
            self._write(f"{self.name}: done in {self.clock() - self.started:.1f} s\n")
            self.name = None

    def _draw(self):
        if self.live and self.name is not None:
            width = shutil.get_terminal_size((100, 24)).columns
            self._write(self.status()[:max(10, width - 1)])
            self._shown = True

    def _erase(self):
        if self._shown:
            self._write("\r\x1b[K")
            self._shown = False

    def _write(self, text):
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            # A closed or broken terminal must not stop the run it reports on.
            pass
