"""What other evidence adds to the console's verdict.

The Judge (matcher.py) decides from the console alone. Two witnesses it
cannot see may change the verdict line afterwards: the diagnosis of a guest
gone quiet (xenctx's stack, Xen's event-channel state) and what Xen itself
said about the domain (xenconsole.crash_facts). Their rules live here, once:
the live run (console.py for the diagnosis, xenconsole.py for Xen) and
check-log apply them through these functions, so the same evidence gives
the same verdict line, recorded or live.
"""
from xenboot.core.errors import Verdict

# What the matcher says of a domain that died without a line from the
# kernel: Xen's reason, when there is one, takes the missing line's place.
NO_PANIC_LINE = " (no panic line seen)"
CRASHED_WITHOUT_LINE = "the domain crashed"

# Verdicts in which Xen's word is quoted: the guest failed and Xen may know
# why (a PASS that Xen commented on keeps its line).
XEN_QUOTED = (Verdict.CRASH, Verdict.PANIC, Verdict.HANG, Verdict.TIMEOUT)
QUIET = (Verdict.HANG, Verdict.TIMEOUT)

# Functions only the kernel debugger's trap path runs (FreeBSD's
# kern/subr_kdb.c kdb_trap(), ddb/db_main.c db_trap()).
DEBUGGER_FRAMES = frozenset({"db_trap", "kdb_trap"})


def crashed_message(name):
    return f"{CRASHED_WITHOUT_LINE} while waiting for '{name}'{NO_PANIC_LINE}"


def from_diagnosis(outcome):
    """A HANG or TIMEOUT with the diagnosis in outcome.diagnosis: a HANG
    whose xenctx stack is inside the kernel debugger is DEBUGGER (FreeBSD
    10.4 i386 with boot_ddb enters ddb inside init386(), before its console
    attached, so the prompt never comes: the silence is a debugger waiting);
    otherwise events Xen shows the guest lost (xl.event_state) are quoted.
    Returns whether it became DEBUGGER."""
    if outcome.verdict not in QUIET:
        return False
    diagnosis = outcome.diagnosis or {}
    frames = diagnosis.get("frames") or []
    if outcome.verdict is Verdict.HANG and DEBUGGER_FRAMES & {f.split("+")[0] for f in frames}:
        outcome.verdict = Verdict.DEBUGGER
        outcome.message = (f"console not attached: the kernel is in its debugger (xenctx: "
                           f"{' < '.join(frames)}), whose prompt never reached the console; "
                           f"{outcome.message}")
        return True
    finding = (diagnosis.get("events") or {}).get("finding")
    if finding and outcome.message is not None:
        outcome.message = f"{outcome.message} [{finding}]"
    return False


def from_xen(outcome, xen):
    """`xen` is what Xen said about the domain (result.json's `xen`). The
    verdict line leads with Xen's reason when the guest gave none (a crash
    without a panic line) and quotes it after the guest's otherwise."""
    summary = (xen or {}).get("summary")
    if outcome.verdict not in XEN_QUOTED or not summary or outcome.message is None:
        return
    if outcome.message.startswith(CRASHED_WITHOUT_LINE):
        outcome.message = f"{summary} ({outcome.message.replace(NO_PANIC_LINE, '')})"
    else:
        outcome.message = f"{outcome.message} [{summary}]"
