"""Terminal progress: one redrawn line on a terminal, plain lines otherwise."""
import io
import os

import pytest

from xenboot.console import progress as progress_mod
from xenboot.console.progress import Progress, is_live, last_line


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def pty_stream():
    master, slave = os.openpty()
    stream = os.fdopen(slave, "w")
    yield stream, master
    stream.close()
    os.close(master)


def read_all(master):
    os.set_blocking(master, False)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_live_only_on_a_terminal_outside_ci(pty_stream, monkeypatch):
    stream, _ = pty_stream
    monkeypatch.delenv("CI", raising=False)
    assert is_live(stream)
    assert not is_live(io.StringIO())
    monkeypatch.setenv("CI", "true")
    assert not is_live(stream)


def test_plain_lines_name_the_stage_and_its_time(tmp_path):
    out, clock = io.StringIO(), Clock()
    log = tmp_path / "console.log"
    log.write_bytes(b"first\r\n\x1b[1mKernel\x1b[0m line two\r\n")
    p = Progress(stream=out, live=False, clock=clock)
    p.stage("boot", logs=[log])
    p("boot: domain running")
    clock.now += progress_mod.HEARTBEAT
    p.refresh()
    clock.now += 2.5
    p.stage("report")
    p.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "boot: started"
    assert lines[1] == "boot: domain running"
    # The heartbeat: stage, elapsed, the console's last line as a terminal shows it.
    assert lines[2] == "boot   30.0s  Kernel line two"
    assert lines[3] == "boot: done in 32.5 s"
    assert lines[4:] == ["report: started", "report: done in 0.0 s"]
    assert "\r" not in out.getvalue()


def test_terminal_line_is_redrawn_in_place(pty_stream, tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)  # CI=true asks for plain lines
    stream, master = pty_stream
    clock = Clock()
    log = tmp_path / "console.log"
    log.write_bytes(b"PROBE begin\r\nPROBE result SUCCESS\r\nprobe> ")
    p = Progress(stream=stream, clock=clock)
    assert p.live
    p.stage("boot", logs=[log])
    clock.now += 1.5
    p.refresh()
    p("boot: a message")
    p.close()
    text = read_all(master)
    # Redraws return to the line start and clear it; messages scroll above.
    assert "\r\x1b[K" in text
    assert "boot    1.5s  probe>" in text
    assert "boot: a message\r\n" in text.replace("\r\r\n", "\r\n")
    assert text.rstrip().endswith("boot: done in 1.5 s")


def test_last_line_follows_the_newest_log(tmp_path):
    old, new = tmp_path / "a.log", tmp_path / "b.log"
    old.write_text("old line\n")
    new.write_text("new line\n\n")
    os.utime(old, (1, 1))
    assert last_line([old, new, tmp_path / "missing.log"]) == "new line"
    assert last_line([tmp_path / "missing.log"]) == ""


def test_is_a_boot_progress_callable():
    out = io.StringIO()
    with Progress(stream=out, live=False) as p:
        p("lab: building the cache")
    assert out.getvalue() == "lab: building the cache\n"
