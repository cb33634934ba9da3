"""xl.event_state reads Xen's 'q' and 'e' debug-key dumps of a silent
domain and names the event channels the guest lost."""
from xenboot.judge.verdict import from_diagnosis
from xenboot.core.errors import Verdict
from xenboot.guest import xl
from xenboot.judge.matcher import Outcome

# Excerpt of `xl dmesg` after the two debug keys, as the lab's debug Xen
# 4.17.5 printed them for a HANG of the branch reconstruction's amd64 XEN
# (128 MB, waiting for xbd0; a boot of 2026-12-02, its exception.S still
# storing the event mask with movq): dom0's ports are trimmed, domain 1's
# are as printed.
DUMP = """\
(XEN) [   55.983765] General information for domain 1:
(XEN) [   55.983844]     refcnt=3 dying=0 pause_count=0
(XEN) [   55.985141] VCPU information and callbacks for domain 1:
(XEN) [   55.985234]   UNIT0 affinities: hard={0-1} soft={0-1}
(XEN) [   55.985326]     VCPU0: CPU1 [has=F] poll=0 upcall_pend=00 upcall_mask=00 
(XEN) [   55.985448]     pause_count=0 pause_flags=1
(XEN) [   55.985534] No periodic timer
(XEN) [   56.044864] 'e' pressed -> dumping event-channel info
(XEN) [   56.045047] Event channel information for domain 0:
(XEN) [   56.045185]     port [p/m/s]
(XEN) [   56.048671]       27 [0/0/  -   ]: s=3 n=1 x=0 d=1 p=1
(XEN) [   56.048951] Event channel information for domain 1:
(XEN) [   56.049032] Polling vCPUs: {}
(XEN) [   56.049086]     port [p/m/s]
(XEN) [   56.049198]        1 [1/0/0]: s=3 n=0 x=0 d=0 p=27
(XEN) [   56.049346]        2 [0/0/0]: s=3 n=0 x=0 d=0 p=28
(XEN) [   56.049450]        3 [1/0/0]: s=5 n=0 x=0 v=0
"""
XENSTORE = '/local/domain/1/store/port = "1"\n/local/domain/1/console/port = "2"\n'


def test_pending_unmasked_unsignalled_ports_of_a_blocked_vcpu_are_lost():
    state = xl.event_state(DUMP, 1, XENSTORE)
    assert state["vcpus"] == [{"vcpu": 0, "upcall_pending": 0, "upcall_mask": 0, "blocked": True}]
    assert [(p["port"], p["name"]) for p in state["ports"]] == [(1, "xenstore"), (2, "console"), (3, "VIRQ_TIMER")]
    assert state["lost"] == [1, 3]
    assert state["finding"] == ("Xen: event channels 1 (xenstore), 3 (VIRQ_TIMER) pending and unmasked but "
                                "never signalled (selector and upcall_pending clear) while vCPU0 blocked: "
                                "the guest lost them")


def test_nothing_is_lost_while_xen_still_signals_or_the_port_is_masked():
    signalled = DUMP.replace("upcall_pend=00", "upcall_pend=01")
    assert xl.event_state(signalled, 1, XENSTORE)["lost"] == []
    masked = DUMP.replace("1 [1/0/0]", "1 [1/1/0]").replace("3 [1/0/0]", "3 [1/0/1]")
    state = xl.event_state(masked, 1, XENSTORE)
    assert state["lost"] == [] and state["finding"] is None
    # Another domain's dump says nothing about this one.
    assert xl.event_state(DUMP, 7) is None


def test_the_last_dump_of_the_domain_counts():
    later = DUMP.replace("1 [1/0/0]", "1 [0/0/0]").replace("3 [1/0/0]", "3 [0/0/0]")
    assert xl.event_state(DUMP + later, 1, XENSTORE)["lost"] == []


def test_a_hang_s_verdict_quotes_the_lost_events():
    outcome = Outcome()
    outcome.verdict, outcome.message = Verdict.HANG, "no output for 30 s while waiting for 'disk'"
    outcome.diagnosis = {"frames": ["cpu_idle+0x80"], "events": xl.event_state(DUMP, 1, XENSTORE)}
    assert not from_diagnosis(outcome)
    assert outcome.verdict is Verdict.HANG
    assert outcome.message.startswith("no output for 30 s while waiting for 'disk' [Xen: event channels 1 (xenstore)")
