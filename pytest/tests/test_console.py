"""The live console driver on a unix socket pair, as on the Xen host: logs,
log cap, the domain's end, INFRA, diagnosis, and interactive use after the
verdict. The guest side is written by the test before the driver reads it
(or, from the session's tee, as it reads), so no verdict here depends on how
fast anything runs."""
import json
import socket
import textwrap
import threading
import time

import pytest

from xenboot.console import console as console_module
from xenboot.console.console import DRAIN_QUIET, ConsoleSession, ExpectFailed, judge
from xenboot.core.errors import Verdict
from xenboot.judge.spec import load_spec

from test_verdict import EARLY_DDB_FRAMES

SPEC = """
    hang = 5
    [[milestone]]
    name = "hello"
    pattern = '^hello (?P<who>\\w+)'
    budget = 5
    [[milestone]]
    name = "bye"
    pattern = '^bye$'
    budget = 5
    [[fatal]]
    kind = "panic"
    pattern = '^panic: '
"""


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(textwrap.dedent(SPEC))
    return load_spec(str(path))


@pytest.fixture
def console():
    harness, guest = socket.socketpair()
    yield harness, guest
    harness.close()
    guest.close()


class Domain:
    """A domain that ends when told; `on_end` runs when the driver first sees
    it. `complete` says the console's relay has ended (nothing more comes)."""

    def __init__(self, on_end=None, complete=False):
        self.reason = None
        self.on_end = on_end
        self.complete = complete
        self.diagnosed = []

    def console_complete(self):
        return self.complete

    def end_reason(self):
        if self.reason and self.on_end:
            self.on_end()
            self.on_end = None
        return self.reason

    def diagnose(self, verdict):
        self.diagnosed.append(verdict)
        return {"xenctx": "rip: ffffffff80000000"}


def records(out):
    with open(out / "console.jsonl") as f:
        return [json.loads(line) for line in f]


def test_every_byte_is_logged_raw_and_every_event_as_json(tmp_path, spec, console):
    harness, guest = console
    raw = b"\x1b[1mhello\x1b[0m world\r\nnoise \xff\r\nbye\r\nafter\r\n"
    guest.sendall(raw)
    outcome = judge(harness.fileno(), spec, tmp_path)
    assert outcome.verdict is Verdict.PASS
    assert outcome.milestones[0]["line"] == "hello world"
    assert (tmp_path / "console.log").read_bytes() == raw
    events = records(tmp_path)
    assert {e["dir"] for e in events} == {"recv", "match"}
    recv = [e for e in events if e["dir"] == "recv"]
    assert sum(e["n"] for e in recv) == len(raw)
    assert "\\xff" in "".join(e["text"] for e in recv)
    assert [e["milestone"] for e in events if "milestone" in e] == ["hello", "bye"]
    times = [e["t"] for e in events]
    assert times == sorted(times) and all(t >= 0 for t in times)


def test_past_the_log_cap_output_is_judged_but_not_kept(tmp_path, spec, console):
    harness, guest = console
    guest.sendall(b"hello you\n" + b"x" * 5000 + b"\n")
    reads = []   # (bytes logged before the read, the read)
    with ConsoleSession(harness.fileno(), spec, tmp_path, log_cap=1000) as session:
        def tee(data):
            if not reads:   # "bye" comes once the first read is in
                guest.sendall(b"bye\n")
            reads.append((session.logged, data))
        session.tee = tee
        outcome = session.judge()
    (logged_before_bye,) = [logged for logged, data in reads if b"bye" in data]
    assert logged_before_bye == 1000
    assert outcome.verdict is Verdict.PASS and outcome.log_truncated
    assert [m["name"] for m in outcome.milestones] == ["hello", "bye"]
    assert (tmp_path / "console.log").stat().st_size == 1000
    assert any("log_cap" in e for e in records(tmp_path))


def until_poweroff(tmp_path):
    """SPEC, then the domain's poweroff as its last milestone."""
    spec_path = tmp_path / "end.toml"
    spec_path.write_text(textwrap.dedent(SPEC) + textwrap.dedent("""
        [[milestone]]
        name = "off"
        end = ["poweroff"]
        budget = 5
    """))
    return load_spec(str(spec_path))


def test_output_still_on_its_way_when_the_domain_ends_is_read(tmp_path, console):
    harness, guest = console
    domain = Domain(on_end=lambda: guest.sendall(b"bye\n"))
    guest.sendall(b"hello there\n")
    domain.reason = "poweroff"
    outcome = judge(harness.fileno(), until_poweroff(tmp_path), tmp_path, domain=domain)
    assert outcome.verdict is Verdict.PASS
    assert [m["name"] for m in outcome.milestones] == ["hello", "bye", "off"]
    assert outcome.end_reason == "poweroff"


def drained(tmp_path, console, complete, late=None):
    """Judges a guest that prints its last line just as it powers off and,
    with `late`, (seconds, bytes) more after that; the outcome and how long
    the judging took."""
    harness, guest = console
    spec = until_poweroff(tmp_path)
    if late:
        threading.Timer(late[0], guest.sendall, (late[1],)).start()
    guest.sendall(b"hello there\nbye\n")
    domain = Domain(complete=complete)
    domain.reason = "poweroff"
    started = time.monotonic()
    outcome = judge(harness.fileno(), spec, tmp_path, domain=domain)
    return outcome, time.monotonic() - started


def test_a_complete_console_is_not_waited_on_after_the_end(tmp_path, console, monkeypatch):
    # A quiet period no load can mistake: only a drain that waits for it
    # takes this long.
    monkeypatch.setattr(console_module, "DRAIN_QUIET", 60.0)
    monkeypatch.setattr(console_module, "DRAIN_MAX", 120.0)
    outcome, took = drained(tmp_path, console, complete=True)
    assert outcome.verdict is Verdict.PASS
    assert took < 30


def test_until_the_relay_ends_late_output_is_still_read(tmp_path, console):
    outcome, _ = drained(tmp_path, console, complete=False, late=(DRAIN_QUIET / 2, b"late line\n"))
    assert outcome.verdict is Verdict.PASS
    assert b"late line" in (tmp_path / "console.log").read_bytes()


def test_domain_crash_without_panic_is_crash(tmp_path, spec, console):
    harness, guest = console
    guest.sendall(b"hello there\n")
    domain = Domain()
    domain.reason = "crash"
    outcome = judge(harness.fileno(), spec, tmp_path, domain=domain)
    assert outcome.verdict is Verdict.CRASH and outcome.failed_at == "bye"


def test_console_closing_while_the_domain_runs_is_infra(tmp_path, spec, console):
    harness, guest = console
    guest.sendall(b"hello there\n")
    guest.close()
    outcome = judge(harness.fileno(), spec, tmp_path, domain=Domain())
    assert outcome.verdict is Verdict.INFRA


def test_end_of_a_console_without_domain_is_an_unknown_end(tmp_path, spec, console):
    harness, guest = console
    guest.sendall(b"hello there\n")
    guest.close()
    outcome = judge(harness.fileno(), spec, tmp_path)
    assert outcome.verdict is Verdict.MILESTONE_MISSING and outcome.end_reason == "unknown"


def test_hang_asks_the_domain_for_a_diagnosis(tmp_path, spec, console):
    harness, guest = console
    guest.sendall(b"hello there\n")
    domain = Domain()
    outcome = judge(harness.fileno(), spec.scaled(0.02), tmp_path, domain=domain)
    assert outcome.verdict is Verdict.HANG
    assert domain.diagnosed == [Verdict.HANG]
    assert outcome.diagnosis == {"xenctx": "rip: ffffffff80000000"}


def test_a_failing_diagnosis_does_not_change_the_verdict(tmp_path, spec, console):
    harness, guest = console
    domain = Domain()
    domain.diagnose = lambda verdict: 1 / 0
    outcome = judge(harness.fileno(), spec.scaled(0.02), tmp_path, domain=domain)
    assert outcome.verdict is Verdict.HANG
    assert "ZeroDivisionError" in outcome.diagnosis["error"]


def test_session_stays_usable_after_the_verdict(tmp_path, console):
    harness, guest = console
    guest.sendall(b"PROBE begin freebsd-xen-ci probe 1\r\nPROBE result SUCCESS\r\nprobe> ")
    with ConsoleSession(harness.fileno(), "probe", tmp_path) as session:
        assert session.judge().verdict is Verdict.PASS
        session.send_line("echo hi")
        assert guest.recv(100) == b"echo hi\r"
        guest.sendall(b"echo hi\r\nhi\r\nprobe> ")
        assert session.expect(r"^hi$").line == "hi"
        assert session.expect(r"^probe> $", prompt=True).line == "probe> "
        session.send_line("panic boom")
        guest.sendall(b"panic boom\r\npanic: boom\r\n")
        with pytest.raises(ExpectFailed) as e:
            session.expect(r"^never$", timeout=5)
        assert e.value.verdict is Verdict.PANIC
    sent = [e["text"] for e in records(tmp_path) if e["dir"] == "send"]
    assert sent == ["echo hi\r", "panic boom\r"]
    assert any(e.get("expect") == r"^hi$" for e in records(tmp_path))


def test_expect_waits_for_the_end_of_a_line_unless_it_is_a_prompt(tmp_path, spec, console):
    """The unfinished `badpte: ...: ` once matched `^badpte: .*: (.*)$` with an
    empty group (a clean-room run under load): only a prompt matches unfinished."""
    harness, guest = console
    with ConsoleSession(harness.fileno(), spec, tmp_path) as session:
        guest.sendall(b"badpte: update 0x1000: ")
        with pytest.raises(ExpectFailed):
            session.expect(r"^badpte: .*: (.*)$", timeout=0.3)
        guest.sendall(b"refused (-22 EINVAL)\r\nprobe> ")
        assert session.expect(r"^badpte: .*: (.*)$").group(1) == "refused (-22 EINVAL)"
        assert session.expect(r"^probe> $", prompt=True).line == "probe> "


def test_expect_leftover_from_the_judges_last_block(tmp_path, spec, console):
    harness, guest = console
    guest.sendall(b"hello a\nbye\nafter the verdict\n")
    with ConsoleSession(harness.fileno(), spec, tmp_path) as session:
        session.judge()
        assert session.expect("after the (?P<what>\\w+)").group("what") == "verdict"


def test_expect_timeout_and_domain_end(tmp_path, spec, console):
    harness, guest = console
    domain = Domain()
    with ConsoleSession(harness.fileno(), spec, tmp_path, domain=domain) as session:
        with pytest.raises(ExpectFailed) as e:
            session.expect("never", timeout=0.05)
        assert e.value.verdict is Verdict.TIMEOUT
        domain.reason = "crash"
        with pytest.raises(ExpectFailed) as e:
            session.expect("never", timeout=30)
        assert e.value.verdict is Verdict.CRASH


def test_expect_on_a_silent_guest_is_hang_on_a_talking_one_timeout(tmp_path, spec, console):
    harness, guest = console
    # Both waits outlast the hang budget (0.5 s), so only silence tells them apart.
    with ConsoleSession(harness.fileno(), spec.scaled(0.1), tmp_path) as session:
        with pytest.raises(ExpectFailed) as e:
            session.expect("never", timeout=1)
        assert e.value.verdict is Verdict.HANG
        # Every read brings the next line: the guest never falls silent.
        session.tee = lambda data: guest.sendall(b"noise\n")
        guest.sendall(b"noise\n")
        with pytest.raises(ExpectFailed) as e:
            session.expect("never", timeout=1)
        assert e.value.verdict is Verdict.TIMEOUT


def test_input_can_go_another_way(tmp_path, spec, console):
    harness, guest = console
    typed = []
    with ConsoleSession(harness.fileno(), spec, tmp_path, send=typed.append) as session:
        session.send_line("boot")
    assert typed == [b"boot\r"]


def test_the_live_driver_reclassifies_and_logs_it(tmp_path, spec, console):
    harness, guest = console
    guest.sendall(b"hello there\n")
    domain = Domain()
    domain.diagnose = lambda verdict: {"frames": EARLY_DDB_FRAMES}
    outcome = judge(harness.fileno(), spec.scaled(0.02), tmp_path, domain=domain)
    assert outcome.verdict is Verdict.DEBUGGER and outcome.failed_at == "bye"
    verdicts = [r["verdict"] for r in records(tmp_path) if "verdict" in r]
    assert verdicts == ["HANG", "DEBUGGER"]
