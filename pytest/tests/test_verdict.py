"""The verdict rules beyond the console (judge/verdict.py): what the
diagnosis of a quiet guest and Xen's own report add to the verdict line.
The live run and check-log both go through them (test_checklog.py compares
the two on real run folders)."""
import pytest

from xenboot.core.errors import Verdict
from xenboot.judge.matcher import Outcome
from xenboot.judge.verdict import crashed_message, from_diagnosis, from_xen

# SYNTHETIC frames, shaped after the xenctx stack issue 13 reports for a real
# FreeBSD 10.4 i386 XEN kernel booted with boot_ddb=1 ("db_readline < ... <
# db_trap < kdb_trap < ... < init386"); the offsets are made up.
EARLY_DDB_FRAMES = ["db_readline+0x9c", "db_read_line+0x19", "db_command_loop+0x3d",
                    "db_command_script+0x2a", "db_trap+0xf1", "kdb_trap+0xe5", "trap+0x4c7",
                    "calltrap+0x6", "kdb_enter+0x35", "init386+0x7e4"]
# The probe kernel's own hang, as test_lab_boot's live hang records it.
PROBE_HANG_FRAMES = ["probe_hang_loop+0x11", "probe_run+0x5d", "probe_main+0x1b9"]
XEN = {"summary": "Xen: fault in compat_crash_page_fault, RIP trap_pfault, cr2 0xc069affc"}


def outcome_of(verdict, message, frames=None):
    outcome = Outcome()
    outcome.verdict, outcome.message = verdict, message
    outcome.diagnosis = {"frames": frames or []}
    return outcome


def silent_outcome(verdict, frames):
    return outcome_of(verdict, "no output for 60 s while waiting for 'kdb'", frames)


def test_a_hang_inside_the_debugger_is_debugger_console_not_attached():
    outcome = silent_outcome(Verdict.HANG, EARLY_DDB_FRAMES)
    assert from_diagnosis(outcome)
    assert outcome.verdict is Verdict.DEBUGGER
    assert outcome.message.startswith("console not attached: the kernel is in its debugger (xenctx: "
                                      "db_readline+0x9c < db_read_line+0x19 <")
    assert "kdb_trap+0xe5 < trap+0x4c7" in outcome.message and "init386+0x7e4)" in outcome.message
    assert outcome.message.endswith("; no output for 60 s while waiting for 'kdb'")


@pytest.mark.parametrize("verdict, frames", [
    (Verdict.HANG, PROBE_HANG_FRAMES),       # a hang elsewhere stays a hang
    (Verdict.HANG, []),                      # no stack: nothing to say
    (Verdict.HANG, ["kdb_trapped_here+0x1"]),  # a name that only starts like one
    (Verdict.TIMEOUT, EARLY_DDB_FRAMES),     # output kept coming: not a silent debugger
    (Verdict.PANIC, EARLY_DDB_FRAMES),       # the console said why: the diagnosis is not asked
])
def test_other_stacks_and_verdicts_stay(verdict, frames):
    outcome = silent_outcome(verdict, frames)
    assert not from_diagnosis(outcome)
    assert outcome.verdict is verdict and outcome.message == "no output for 60 s while waiting for 'kdb'"


def test_verdict_leads_with_xen_when_the_guest_said_nothing_and_quotes_it_otherwise():
    silent = outcome_of(Verdict.CRASH, crashed_message("init"))
    assert silent.message == "the domain crashed while waiting for 'init' (no panic line seen)"
    from_xen(silent, XEN)
    assert silent.message == ("Xen: fault in compat_crash_page_fault, RIP trap_pfault, cr2 0xc069affc"
                              " (the domain crashed while waiting for 'init')")
    panicked = outcome_of(Verdict.PANIC, "panic: vm_fault")
    from_xen(panicked, XEN)
    assert panicked.message == f"panic: vm_fault [{XEN['summary']}]"


@pytest.mark.parametrize("verdict, xen", [
    (Verdict.PASS, XEN),                     # Xen commented on a boot that passed
    (Verdict.BAD_INPUT, XEN),
    (Verdict.CRASH, None),                   # Xen said nothing
    (Verdict.CRASH, {"log": "xen.log"}),     # ...or nothing that makes a reason
])
def test_xen_is_quoted_only_for_a_failed_guest_with_a_reason(verdict, xen):
    outcome = outcome_of(verdict, "as the console judged")
    from_xen(outcome, xen)
    assert outcome.message == "as the console judged"
