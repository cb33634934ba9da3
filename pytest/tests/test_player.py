"""Synthetic transcripts played on a pty through the live console driver: the
FreeBSD spec family, the probe spec and the generic spec, end to end.

Transcripts play SPEED times faster than written and the specs' budgets
shrink by the same factor, so the verdicts are those of a real-time run."""
import os
import pathlib

import pytest

from xenboot import player
from xenboot.console import ConsoleSession, ExpectFailed, judge
from xenboot.errors import BadInput, Verdict
from xenboot.player import Player
from xenboot.spec import load_spec

TRANSCRIPTS = pathlib.Path(__file__).parent / "transcripts"
SPEED = 40


def play(name, spec, out, speed=SPEED):
    with Player(TRANSCRIPTS / f"{name}.txt", speed=speed) as p:
        outcome = judge(p.master, load_spec(spec).scaled(1 / speed), out, domain=p)
    return outcome, p


def reached(outcome):
    return [m["name"] for m in outcome.milestones]


def test_every_transcript_says_it_is_synthetic():
    for path in TRANSCRIPTS.glob("*.txt"):
        assert path.read_text().startswith("# SYNTHETIC"), path
        assert player.parse(path)


def test_boot_d_session_continue_mountroot_init(tmp_path):
    outcome, p = play("boot-d-continue-init", "freebsd-xen-pv-boot-d", tmp_path)
    assert outcome.verdict is Verdict.PASS
    assert reached(outcome) == ["bootenv", "kdb-backends", "kdb-current", "kdb", "sysinit", "banner",
                                "version", "real-memory", "avail-memory", "mountroot", "init"]
    assert p.typed == ["set $lines = 0", "bt", "show registers", "ps", "c"]
    assert [d["command"] for d in outcome.debugger] == ["set $lines = 0", "bt", "show registers", "ps"]
    assert "initxen() at initxen+0x6d2" in outcome.debugger[1]["reply"]
    assert "kdb_enter+0x3e" in outcome.debugger[2]["reply"]
    banner = outcome.milestones[reached(outcome).index("banner")]["line"]
    assert banner.endswith("Copyright (c) 1992-2013 The FreeBSD Project.")


def test_stop_at_kdb(tmp_path):
    outcome, p = play("boot-d-continue-init", "freebsd-xen-pv-kdb-stop", tmp_path)
    assert outcome.verdict is Verdict.PASS
    assert reached(outcome)[-1] == "kdb"
    assert "stopped in the debugger" in outcome.message
    assert p.typed == ["set $lines = 0", "bt", "show registers", "ps"]


def test_entry_the_spec_does_not_expect_is_debugger(tmp_path):
    outcome, p = play("boot-d-continue-init", "freebsd-xen-pv", tmp_path)
    assert outcome.verdict is Verdict.DEBUGGER
    assert outcome.failed_at == "banner"
    assert [d["command"] for d in outcome.debugger] == ["set $lines = 0", "bt", "show registers", "ps"]
    assert "c" not in p.typed


@pytest.mark.parametrize("spec", ["freebsd-xen-pv-kdb", "freebsd-xen-pv"])
def test_continue_beyond_kdb_to_init(tmp_path, spec):
    outcome, p = play("kdb-mid-boot", spec, tmp_path)
    assert outcome.verdict is Verdict.PASS
    assert reached(outcome)[-4:] == ["avail-memory", "kdb", "mountroot", "init"]
    assert p.typed[-1] == "c"


def test_panic_with_backtrace(tmp_path):
    outcome, _ = play("panic-backtrace", "freebsd-xen-pv", tmp_path)
    assert outcome.verdict is Verdict.PANIC
    assert outcome.message == "panic: vm_fault: fault on nofault entry, addr: ffffffff81000000"
    assert outcome.failed_at == "mountroot"
    bt = next(d["reply"] for d in outcome.debugger if d["command"] == "bt")
    assert "panic() at panic+0x155" in bt


def test_fatal_trap_12(tmp_path):
    outcome, _ = play("fatal-trap-12", "freebsd-xen-pv", tmp_path)
    assert outcome.verdict is Verdict.PANIC
    # The root it had mounted is named after the fatal line.
    assert outcome.message == ("Fatal trap 12: page fault while in kernel mode"
                               " (noted: Trying to mount root from ufs:/dev/md0 []...)")
    assert [f["kind"] for f in outcome.fatal] == ["fatal-trap", "panic", "debugger"]
    assert outcome.failed_at == "init"
    assert "vfs_mountroot()" in next(d["reply"] for d in outcome.debugger if d["command"] == "bt")


def test_silence_after_the_kdb_lines_is_a_hang(tmp_path):
    outcome, _ = play("hang-after-kdb", "freebsd-xen-pv", tmp_path)
    assert outcome.verdict is Verdict.HANG
    assert outcome.failed_at == "banner"
    assert outcome.diagnosis == {"player": "hang-after-kdb.txt", "verdict": "HANG"}


def test_output_without_the_milestone_is_a_timeout(tmp_path):
    outcome, _ = play("timeout-chatter", "freebsd-xen-pv", tmp_path)
    assert outcome.verdict is Verdict.TIMEOUT
    assert outcome.failed_at == "banner"
    assert reached(outcome) == ["kdb-backends", "kdb-current", "sysinit"]


def test_pager_when_set_lines_fails(tmp_path):
    outcome, p = play("pager-more", "freebsd-xen-pv-kdb-stop", tmp_path)
    assert outcome.verdict is Verdict.PASS
    assert p.typed == ["set $lines = 0", "bt", " ", "show registers", " ", "ps"]
    replies = {d["command"]: d["reply"] for d in outcome.debugger}
    assert replies["set $lines = 0"] == "Unknown variable"
    assert replies["bt"].splitlines()[-2:] == ["initxen() at initxen+0x6d2/frame 0xffffffff81a6df70",
                                               "btext() at btext+0x2c"]
    assert "--More--" not in replies["bt"]


def test_domain_crash_without_panic(tmp_path):
    outcome, _ = play("crash-early", "freebsd-xen-pv", tmp_path)
    assert outcome.verdict is Verdict.CRASH
    assert outcome.failed_at == "kdb-current" and outcome.end_reason == "crash"


def test_generic_spec_on_a_diskless_linux_panic(tmp_path):
    outcome, _ = play("linux-diskless", "generic", tmp_path)
    assert outcome.verdict is Verdict.PANIC
    assert "Kernel panic - not syncing: VFS" in outcome.message


def test_generic_spec_passes_a_guest_that_stays_alive(tmp_path):
    outcome, _ = play("hang-after-kdb", "generic", tmp_path)
    assert outcome.verdict is Verdict.PASS
    assert reached(outcome) == ["first-output", "domain-end"]


def test_probe_failure(tmp_path):
    outcome, _ = play("probe-failure", "probe", tmp_path)
    assert outcome.verdict is Verdict.MILESTONE_MISSING and outcome.failed_at == "result"
    assert "evtchn-upcall fail" in outcome.message


@pytest.fixture
def probe(tmp_path):
    """The probe transcript at its prompt, judged, for interactive use."""
    with Player(TRANSCRIPTS / "probe.txt", speed=SPEED) as p:
        with ConsoleSession(p.master, load_spec("probe").scaled(1 / SPEED), tmp_path,
                            domain=p) as session:
            assert session.judge().verdict is Verdict.PASS
            yield session


def test_probe_answers_at_its_prompt(probe):
    probe.send_line("echo hi")
    assert probe.expect(r"^hi$").line == "hi"
    probe.expect(r"^probe> $")
    probe.send_line("poweroff")
    with pytest.raises(ExpectFailed) as e:
        probe.expect("never", timeout=10)
    assert e.value.verdict is Verdict.MILESTONE_MISSING and "poweroff" in e.value.message


@pytest.mark.parametrize("command, verdict", [("panic boom", Verdict.PANIC), ("fault", Verdict.CRASH),
                                              ("hang", Verdict.TIMEOUT)])
def test_probe_failing_commands(probe, command, verdict):
    probe.send_line(command)
    with pytest.raises(ExpectFailed) as e:
        probe.expect("never", timeout=0.5)
    assert e.value.verdict is verdict


def test_transcript_without_synthetic_header_is_refused(tmp_path):
    path = tmp_path / "real.txt"
    path.write_text("0.0 | hello\n")
    with pytest.raises(BadInput, match="SYNTHETIC"):
        player.parse(path)


@pytest.mark.parametrize("line, complaint", [
    ("hello", "expected 'TIME OP TEXT'"),
    ("0.1 @ explode", "directive 'explode'"),
    ("0.1 @ end halt", "end 'halt'"),
    ("      = bt", "belongs after '@ session PROMPT'"),
    ("      | reply", "untimed lines are replies"),
    ("0.1 @ more", "belongs in a reply"),
])
def test_transcript_errors_name_the_line(tmp_path, line, complaint):
    path = tmp_path / "bad.txt"
    path.write_text(f"# SYNTHETIC test\n{line}\n")
    with pytest.raises(BadInput) as e:
        player.parse(path)
    assert f"{path}:2:" in e.value.message and complaint in e.value.message


def test_player_command_line(tmp_path, capsys):
    status = player.main([str(TRANSCRIPTS / "probe-failure.txt"), "--spec", "probe",
                          "--speed", str(SPEED), "--out", str(tmp_path)])
    assert status == 1
    assert capsys.readouterr().out.startswith("MILESTONE_MISSING: PROBE result FAILURE")
    assert os.path.getsize(tmp_path / "console.log") > 0
