"""Synthetic transcripts played on a pty through the live console driver: the
FreeBSD spec family, the probe spec and the generic spec, end to end.

Transcripts play SPEED times faster than written and the specs' budgets
shrink by the same factor, so the verdicts are those of a real-time run."""
import os
import pathlib
import re

import pytest

from xenboot.testing import player
from xenboot.console.console import ConsoleSession, ExpectFailed
from xenboot.core.errors import BadInput, Verdict
from xenboot.testing.player import Player
from xenboot.judge.spec import load_spec

TRANSCRIPTS = pathlib.Path(__file__).parent / "transcripts"
SPEED = 40


def play(name, spec, out, speed=SPEED):
    return player.replay(TRANSCRIPTS / f"{name}.txt", spec, out, speed=speed)


def reached(outcome):
    return [m["name"] for m in outcome.milestones]


def test_every_transcript_says_where_it_comes_from():
    for path in TRANSCRIPTS.glob("*.txt"):
        found = player.provenance(path)
        assert found["kind"] in ("SYNTHETIC", "REAL"), path
        assert path.read_text().startswith(f"# {found['kind']} "), path
        assert player.parse(path)


REAL_TRANSCRIPTS = sorted(p for p in TRANSCRIPTS.glob("*.txt") if player.provenance(p)["kind"] == "REAL")


@pytest.mark.parametrize("path", REAL_TRANSCRIPTS, ids=[p.stem for p in REAL_TRANSCRIPTS])
def test_real_transcripts_replay_to_their_live_verdict(tmp_path, path):
    """Real boots' consoles (recorded by the lead, converted with
    xenboot.testing.transcript) judged again in CI, without the tree they came from."""
    found = player.provenance(path)
    outcome, _ = play(path.stem, found["spec"], tmp_path)
    assert outcome.verdict.value == found["verdict"]
    assert outcome.failed_at == found.get("failed-at")


def test_the_real_poweroff_notes_witness_lock_order_reversal(tmp_path):
    outcome, _ = play("real-i386-boot-to-init", "freebsd-xen-pv-i386", tmp_path)
    assert (outcome.verdict, outcome.end_reason) == (Verdict.PASS, "poweroff")
    reversal = [n["fields"] for n in outcome.notes if n["name"] == "lock-order-reversal"]
    assert [(r["which"], r["lock"]) for r in reversal] == [("1st", "ufs"), ("2nd", "devfs")]
    assert reversal[0]["where"] == "/usr/src/sys/kern/vfs_mount.c:1229"


def test_the_real_stock_crash_is_quoted_from_xen_s_lines_in_the_transcript(tmp_path):
    outcome, _ = play("real-i386-stock-crash", "freebsd-xen-pv-i386", tmp_path)
    assert (outcome.verdict, outcome.failed_at) == (Verdict.CRASH, "kdb-backends")
    assert outcome.message.startswith("Xen: fault in compat_crash_page_fault_4, RIP 0xc03965cd, cr2 0xc06baffc")
    # The kernel's console_io lines came as the second source, Xen's own
    # messages went to xen.log only.
    xen_lines = [line for line in (tmp_path / "console.jsonl").read_text().splitlines() if '"source": "xen"' in line
                 and '"dir": "recv"' in line]
    assert any("xen_setbootenv(): cmd_line=" in line for line in xen_lines)
    assert "Domain 1 (vcpu#0) crashed" in (tmp_path / "xen.log").read_text()


def test_boot_d_session_continue_mountroot_init(tmp_path):
    outcome, p = play("boot-d-continue-init", "freebsd-xen-pv-boot-d", tmp_path)
    assert outcome.verdict is Verdict.PASS
    assert reached(outcome) == ["bootenv", "kdb-backends", "kdb-current", "kdb", "banner", "version",
                                "sysinit", "xen-clock", "xenstore", "disk", "mountroot", "init", "poweroff"]
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
    assert reached(outcome)[-5:] == ["disk", "kdb", "mountroot", "init", "poweroff"]
    assert p.typed[-1] == "c"


def test_i386_boot_to_init_and_poweroff(tmp_path):
    outcome, _ = play("i386-boot-to-init", "freebsd-xen-pv-i386", tmp_path)
    assert outcome.verdict is Verdict.PASS and outcome.end_reason == "poweroff"
    assert reached(outcome) == ["loader-metadata", "kdb-backends", "kdb-current", "banner", "version",
                                "real-memory", "avail-memory", "xen-clock", "console", "xenstore", "disk",
                                "mountroot", "init", "poweroff"]
    version = outcome.milestones[reached(outcome).index("version")]["line"]
    assert version == "FreeBSD 10.4-RELEASE #1: Thu Nov 26 01:40:12 UTC 2026"
    assert outcome.notes == [{"name": "mountroot", "seconds": outcome.milestones[-3]["seconds"],
                              "line": "Trying to mount root from ufs:/dev/xbd0 []...",
                              "fields": {"root": "ufs:/dev/xbd0", "options": ""}}]


def test_the_amd64_spec_does_not_pass_the_i386_console(tmp_path):
    outcome, _ = play("i386-boot-to-init", "freebsd-xen-pv", tmp_path)
    assert outcome.verdict is Verdict.PASS
    assert "console" not in reached(outcome) and "bootenv" not in reached(outcome)


def test_no_init_names_the_root_and_the_init_it_tried(tmp_path):
    outcome, p = play("i386-no-init-ddb", "freebsd-xen-pv-i386", tmp_path)
    assert outcome.verdict is Verdict.PANIC and outcome.failed_at == "init"
    assert outcome.message == (
        "panic: no init (noted: Trying to mount root from ufs:/dev/xbd0 []...; exec /sbin/init: error 8;"
        " init: not found in path /sbin/init:/sbin/oinit:/sbin/init.bak:/rescue/init)")
    fields = {n["name"]: n.get("fields") for n in outcome.notes}
    assert fields == {"mountroot": {"root": "ufs:/dev/xbd0", "options": ""},
                      "init-failed": {"init": "/sbin/init", "error": "8"},
                      "init-missing": {"path": "/sbin/init:/sbin/oinit:/sbin/init.bak:/rescue/init"}}
    assert p.typed == ["set $lines = 0", "bt", " ", "show registers", "ps"]
    replies = {d["command"]: d["reply"] for d in outcome.debugger}
    assert replies["bt"].splitlines()[-1].startswith("start_init(0,")
    assert "--More--" not in replies["bt"] and "kdb_enter+0x35" in replies["show registers"]


def test_mountroot_prompt_names_the_root_it_tried(tmp_path):
    outcome, _ = play("i386-mountroot-prompt", "freebsd-xen-pv-i386", tmp_path)
    # No xbd0 attached: the mountroot line came before its turn, and is still named.
    assert outcome.verdict is Verdict.MILESTONE_MISSING and outcome.failed_at == "disk"
    assert outcome.message == ("mountroot>  (noted: Trying to mount root from ufs:/dev/xbd0 []...;"
                               " Mounting from ufs:/dev/xbd0 failed with error 19.)")


def test_a_real_mountroot_prompt_names_the_root_and_the_error(tmp_path):
    # Real 10.4 i386 XEN, vfs.root.mountfrom naming a disk that is not there.
    outcome, _ = play("real-i386-mountroot-prompt", "freebsd-xen-pv-i386", tmp_path)
    assert (outcome.verdict, outcome.failed_at) == (Verdict.MILESTONE_MISSING, "init")
    assert outcome.message == ("mountroot>  (noted: Trying to mount root from ufs:/dev/xbd9 []...;"
                               " Mounting from ufs:/dev/xbd9 failed with error 19.)")


@pytest.mark.parametrize("spec", ["freebsd-xen-pv-i386-boot-d", "freebsd-xen-pv-i386"])
def test_ddb_before_the_console_is_debugger_console_not_attached(tmp_path, spec):
    outcome, _ = play("i386-early-ddb", spec, tmp_path)
    assert outcome.verdict is Verdict.DEBUGGER
    assert outcome.message.startswith("console not attached: the kernel is in its debugger (xenctx: "
                                      "db_readline+0x9c < ")
    assert "< init386+0x7e4)" in outcome.message and outcome.diagnosis["frames"][3] == "db_trap+0xf1"


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
    assert outcome.failed_at == "xen-clock"
    assert reached(outcome) == ["kdb-backends", "kdb-current", "banner", "version", "sysinit"]


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
    probe.expect(r"^probe> $", prompt=True)
    probe.send_line("poweroff")
    with pytest.raises(ExpectFailed) as e:
        probe.expect("never", timeout=10)
    assert e.value.verdict is Verdict.MILESTONE_MISSING and "poweroff" in e.value.message


@pytest.mark.parametrize("command, verdict, after", [("panic boom", Verdict.PANIC, b"panic: boom\r\n"),
                                                     ("fault", Verdict.CRASH, b""),
                                                     ("hang", Verdict.HANG, b"")])
def test_probe_failing_commands(probe, tmp_path, command, verdict, after):
    probe.send_line(command)
    with pytest.raises(ExpectFailed) as e:
        # Longer than the (scaled) hang budget: a silent guest is HANG.
        probe.expect("never", timeout=2)
    assert e.value.verdict is verdict
    # The command was obeyed: after its echo came what it prints, then nothing.
    log = (tmp_path / "console.log").read_bytes()
    assert log.rsplit(f"probe> {command}\r\n".encode(), 1)[1] == after


def test_transcript_without_a_header_is_refused(tmp_path):
    path = tmp_path / "bare.txt"
    path.write_text("0.0 | hello\n")
    with pytest.raises(BadInput, match="starts with '# SYNTHETIC' or '# REAL'"):
        player.parse(path)


REAL_HEADER = """# REAL console of a test, made up for this test
# tree: example/freebsd @ 0123456789abcdef0123456789abcdef01234567
# version: 10.4-RELEASE
# local-change: sys/i386/xen/locore.s: init386() on the bottom stack page
# kernel-sha256: {sha}
# xen: 4.17.5 debug
# spec: generic
# verdict: PASS
"""


def test_real_header_gives_its_provenance(tmp_path):
    path = tmp_path / "real.txt"
    path.write_text(REAL_HEADER.format(sha="ab" * 32) + "0.0 | hello\n0.1 @ end poweroff\n")
    found = player.provenance(path)
    assert found["kind"] == "REAL" and found["tree"].startswith("example/freebsd @ 0123")
    assert player.describe(found) == (
        "REAL FreeBSD 10.4-RELEASE console from example/freebsd @ 0123456789abcdef0123456789abcdef01234567"
        " with a local change (sys/i386/xen/locore.s: init386() on the bottom stack page), kernel sha256 "
        + "ab" * 32 + ", Xen 4.17.5 debug")
    assert [step.op for step in player.parse(path)] == ["print", "end"]


@pytest.mark.parametrize("edit, complaint", [
    (lambda h: h.replace("# xen: 4.17.5 debug\n", ""), "missing # xen: ..."),
    (lambda h: h.replace("# tree: ", "# tee: ").replace("# spec: generic\n", ""),
     "missing # tree: ..., # spec: ..."),
    (lambda h: h.format(sha="not-a-digest"), "'not-a-digest' is not a sha256"),
])
def test_real_header_without_its_provenance_is_refused(tmp_path, edit, complaint):
    path = tmp_path / "real.txt"
    text = edit(REAL_HEADER)
    path.write_text(text.format(sha="ab" * 32) if "{sha}" in text else text)
    with pytest.raises(BadInput, match=re.escape(complaint)):
        player.parse(path)


def test_the_player_says_a_synthetic_result_is_not_real(tmp_path, capsys):
    player.main([str(TRANSCRIPTS / "i386-boot-to-init.txt"), "--spec", "freebsd-xen-pv-i386",
                 "--speed", str(SPEED), "--out", str(tmp_path)])
    assert capsys.readouterr().out.startswith("SYNTHETIC transcript: not the output of a real boot\nPASS")


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
    assert capsys.readouterr().out.splitlines()[1].startswith("MILESTONE_MISSING: PROBE result FAILURE")
    assert os.path.getsize(tmp_path / "console.log") > 0


def test_the_real_branch_kernel_at_128_mb_panics_in_a_pmap_stub_after_mountroot(tmp_path):
    """The branch's own amd64 code (REAL, a reconstruction of its tree): past
    mountroot, its pmap stub panics, ddb answers the whole script."""
    outcome, _ = play("real-amd64-branch-pmap-todo", "freebsd-xen-pv", tmp_path)
    assert (outcome.verdict, outcome.failed_at) == (Verdict.PANIC, "init")
    assert outcome.message.startswith("panic: XXX: pmap_page_wired_mappings: TODO")
    assert reached(outcome)[-4:] == ["xen-clock", "xenstore", "disk", "mountroot"]
    replies = {d["command"]: d for d in outcome.debugger}
    assert list(replies) == ["set $lines = 0", "bt", "show registers", "ps"]
    assert "pmap_page_wired_mappings" in replies["bt"]["reply"] and "[kernel]" in replies["ps"]["reply"]
    # Xen's copy of the console, re-sent many times over, is judged once.
    assert [f["kind"] for f in outcome.fatal] == ["panic", "debugger"]


def test_the_real_branch_kernel_at_256_mb_crashes_and_xen_says_where(tmp_path):
    outcome, _ = play("real-amd64-branch-256m-crash", "freebsd-xen-pv", tmp_path)
    assert (outcome.verdict, outcome.failed_at) == (Verdict.CRASH, "kdb-backends")
    assert outcome.message.startswith("Xen: unhandled #PF[0000], fault in create_bounce_frame, RIP 0x")
    assert "noted: Attempt to use unmapped va" in outcome.message
