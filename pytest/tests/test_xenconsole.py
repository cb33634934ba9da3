"""The Xen console per domain (xenconsole.py): Xen's lines about one guest
split out of the host's console into its run folder's xen.log, its
console_io lines judged as the "xen" source, and Xen's crash report in
result.json and the verdict.

Unit tests read tests/fixtures/xen/two-crashes-one-host.host.log, captured
from a real lab run (see its first lines). `(dN)` console_io lines cannot
come from Debian's release Xen (it refuses a domU's console_io): those
lines here are constructed in Xen 4.17's format (guest_printk: "(d%d) ",
then the console timestamp) and say so."""
import json
import os
import socket
import subprocess
import textwrap
import threading

import pytest

from test_lab_boot import DOM0_REPO, boot_in_dom0
from xenboot.core import paths
from xenboot.report import checklog
from xenboot.pipeline.boot import BootRequest, _stage_kernel, boot, shared_lab_host
from xenboot.console.console import ConsoleSession
from xenboot.core.errors import BadInput, Verdict
from xenboot.host.lab.qemu import lab_host
from xenboot.judge.matcher import CONSOLE, XEN, Judge, Outcome
from xenboot.judge.spec import load_spec
from xenboot.guest.symbols import Symbols
from xenboot.console.xenconsole import Resends, Splitter, XenConsole, crash_facts
from xenboot.host.xenlog import FileSource, _after_overlap

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "xen", "two-crashes-one-host.host.log")
XENBOOT = str(paths.REPO / "ci" / "xenboot")
PROBE = str(paths.REPO / "build" / "probe" / "probe")
CRASH_AT_ENTRY = str(paths.REPO / "build" / "probe" / "crash-at-entry")

# Constructed in Xen 4.17's format (see the module docstring): the guest's
# console_io lines of d1 and d2, one of d1's split across two reads.
CONSOLE_IO = ["(d1) [   20.100000] xen_setbootenv(): cmd_line=''\n",
              "(d2) [   20.100100] another guest's line\n",
              "(d1) [   20.2000", "00] PROBE xenprint hello from d1\n",
              "(d12) [   20.300000] d12 is not d1\n"]


def split(domid, text):
    return Splitter(domid).feed(text)


def host_log():
    with open(FIXTURE) as f:
        return f.read()


def xen_lines(text):
    """Xen's lines since the host was restored from the lab's snapshot."""
    live = text.split("live from here ---\n", 1)[1]
    return [line for line in live.splitlines() if line.startswith("(XEN) ")]


def console_c_flushes(printed, attach_at, ring_size, full_for):
    """Xen's console_io text as FreeBSD's Xen console.c makes it, a model
    of its xcons_putc/__xencons_tx_flush for this test: nothing is flushed
    until the console attaches (`attach_at` characters printed); from then
    on each character printed writes the whole unsent backlog to console_io
    and offers it to the ring, which takes `ring_size` bytes, then nothing
    for `full_for` more characters (xenconsoled has not drained it yet),
    then all."""
    xen_text, sent = "", 0
    for end in range(attach_at, len(printed) + 1):
        xen_text += printed[sent:end]
        if end == attach_at:
            sent = min(ring_size, end)
        elif end > attach_at + full_for:
            sent = end
    return xen_text


def test_re_sent_console_io_lines_reach_the_judge_once():
    printed = "".join(f"   0xffffffff800dc7e0(0xffffffff802c{n:04x})... done.\n" for n in range(120))
    xen_text = console_c_flushes(printed, attach_at=3000, ring_size=2048, full_for=8)
    lines = xen_text.split("\n")[:-1]
    assert len(lines) > 120 + 8 * 10
    resends = Resends()
    fresh = [line for line in lines if resends.fresh(line)]
    want = printed.split("\n")[:-1]
    assert [line for line in fresh if line in want] == want
    # Xen joins the start of each re-send to the unfinished line it holds
    # (its per-domain buffer): one line of new text a re-send, no more.
    assert len(fresh) - len(want) <= 8 + 1


def test_a_line_that_recurs_beyond_a_re_send_is_kept():
    resends = Resends()
    lines = ["xbd0: attached", "done.", "done.", "panic: one", "xbd0: attached", "xbd0: attached"]
    assert [line for line in lines if resends.fresh(line)] == ["xbd0: attached", "done.", "done.", "panic: one"]


# -- the splitter, on captured text --------------------------------------------

def test_each_guest_gets_its_own_crash_report_and_nothing_else():
    text = host_log()
    mine = {domid: [raw for _, raw, _ in split(domid, text)] for domid in (1, 2, 3)}
    for domid, other in ((1, 3), (3, 1)):
        lines = mine[domid]
        assert lines[0].endswith(f"d{domid}v0 Unhandled: vec 14, #PF[0000]")
        assert any(f"Domain {domid} (vcpu#0) crashed" in line for line in lines)
        assert any(f"CONTEXT: pv guest (d{domid}v0)" in line for line in lines)
        assert any("domain_crash_sync called from entry.S" in line for line in lines)
        assert any("RIP:    e033:[<ffffffff80004809>]" in line for line in lines)
        assert not any(f"d{other}v0" in line or f"Domain {other} " in line for line in lines)
        # The whole block: register dump and the stack rows after it.
        assert lines[-1].split("]", 1)[1].startswith("    0000")
    # The guest that passed had nothing said about it.
    assert mine[2] == []
    # Between them, the two crashed guests account for every live Xen line.
    assert sorted(mine[1] + mine[3]) == sorted(xen_lines(text))


def test_dom0_lines_are_dom0s_and_dom0_kernel_output_is_nobodys():
    lines = [raw for _, raw, _ in split(0, host_log())]
    assert any("d0 has maximum 232 PIRQs" in line for line in lines)
    assert any("Dom0 has maximum 1 VCPUs" in line for line in lines)
    assert not any("Linux version" in line or "Unhandled" in line for line in lines)


def test_console_io_lines_of_the_domain_only_even_split_across_reads():
    splitter = Splitter(1)
    found = [item for chunk in CONSOLE_IO for item in splitter.feed(chunk)]
    assert [(kind, text) for kind, _, text in found] == [
        (CONSOLE, "xen_setbootenv(): cmd_line=''"), (CONSOLE, "PROBE xenprint hello from d1")]
    assert found[1][1] == "(d1) [   20.200000] PROBE xenprint hello from d1"


def test_hex_words_of_a_dump_never_name_a_domain():
    # Constructed: a 32-bit guest's stack row whose words start with d + digits.
    text = ("(XEN) [    5.000000]    d0123456 d1234567 c0100000 d1000000\n"
            "(XEN) [    5.000001] eax: d1234567   ebx: 00000001\n")
    assert split(1, text) == [] and split(0, text) == []


# -- what the report says -------------------------------------------------------

def facts_for(domid, symbols=None):
    messages = [text for kind, _, text in split(domid, host_log()) if kind == XEN]
    return crash_facts(messages, symbols and symbols.name)


def test_crash_facts_name_the_reason_rip_and_cr2(tmp_path):
    # Constructed nm listing: probe_fault's address in the captured run's probe.
    listing = tmp_path / "kernel.syms"
    listing.write_text("ffffffff80000000 T _start\nffffffff800047e0 t probe_fault\n"
                       "ffffffff80004860 t cmd_help\nffffffff80000000 T _stext\n"
                       "ffffffff80010000 T _etext\n")
    facts = facts_for(1, Symbols.read(str(listing)))
    assert facts["fault_in"] == "create_bounce_frame"
    assert facts["rip"] == "0xffffffff80004809" and facts["rip_symbol"] == "probe_fault+0x29"
    assert facts["cr2"] == "0xdeadb000"
    assert facts["summary"] == ("Xen: unhandled #PF[0000], fault in create_bounce_frame,"
                                " RIP probe_fault+0x29, cr2 0xdeadb000")
    # Without symbols the address stands.
    assert "RIP 0xffffffff80004809," in facts_for(1)["summary"]
    assert crash_facts([]) == {}


def test_a_pv32_crash_report_reads_the_same():
    # Constructed in the shape Xen 4.17 prints for a 32-bit PV guest (compat
    # entry.S, EIP, 32-bit cr2), as the issue describes a FreeBSD 10.4 i386 crash.
    text = ("(XEN) [   30.000000] domain_crash_sync called from entry.S: fault at ffff82d040387d5e"
            " x86_64/compat/entry.S#compat_crash_page_fault+0x4/0x6\n"
            "(XEN) [   30.000001] Domain 1 (vcpu#0) crashed on cpu#1:\n"
            "(XEN) [   30.000002] EIP:    e019:[<c0a1b2c3>]\n"
            "(XEN) [   30.000003] cr0: 8005003b   cr4: 00040664   cr3: 3a446000   cr2: c069affc\n")
    messages = [line for _, _, line in split(1, text)]
    assert messages[0].startswith("domain_crash_sync called from")
    assert crash_facts(messages, {0xc0a1b2c3: "trap_pfault"}.get)["summary"] == (
        "Xen: fault in compat_crash_page_fault, RIP trap_pfault, cr2 0xc069affc")


def test_routine_messages_are_kept_but_never_the_reason():
    # Real, debug Xen 4.17.5: a FreeBSD 10.4 i386 guest that then panicked
    # (`panic: no init`) on its own; Xen's grant-table line says nothing about it.
    text = ("(XEN) [   24.898705] common/grant_table.c:1882:d1v0 Expanding d1 grant table from 1 to 2 frames\n"
            "(XEN) [   25.000000] mm.c:1234:d1v0 Bad L1 flags 800000\n")
    messages = [line for _, _, line in split(1, text)]
    assert len(messages) == 2
    assert crash_facts(messages[:1]) == {}
    assert crash_facts(messages)["summary"] == "Xen: mm.c:1234:d1v0 Bad L1 flags 800000"


def test_symbols_come_from_kernel_debug_beside_a_stripped_kernel(tmp_path):
    kernel, share = tmp_path / "kernel", tmp_path / "share"
    share.mkdir()
    subprocess.run(["strip", "-o", str(kernel), PROBE], check=True)
    subprocess.run(["cp", PROBE, str(kernel) + ".debug"], check=True)
    _stage_kernel(kernel.read_bytes(), str(share), str(kernel))
    assert "probe_fault" in Symbols.read(str(share / "kernel.syms")).functions


def test_symbols_name_only_addresses_inside_the_text(tmp_path):
    listing = tmp_path / "kernel.syms"
    listing.write_text("ffffffff80000000 T _start\nffffffff80000100 t f\n"
                       "ffffffff80000000 T _stext\nffffffff80000200 T _etext\n")
    symbols = Symbols.read(str(listing))
    assert symbols.name(0xffffffff80000000) == "_start"
    assert symbols.name(0xffffffff80000104) == "f+0x4"
    assert symbols.name(0xffffffff80000200) is None and symbols.name(0x1000) is None
    assert symbols.functions == {"f"}


def concluded(tmp_path, verdict, message, host_text):
    host_log_path = tmp_path / "host.log"
    host_log_path.write_text("")
    xen = XenConsole(FileSource(str(host_log_path)), 1, str(tmp_path))
    host_log_path.write_text(host_text)
    outcome = Outcome()
    outcome.verdict, outcome.message = verdict, message
    try:
        return xen.conclude(outcome), outcome.message
    finally:
        xen.close()


def test_a_run_xen_spoke_about_carries_xen_even_when_it_passed(tmp_path):
    # Constructed: a debug Xen's gdprintk about a refused page-table update.
    said = "(XEN) [   21.000000] d1v0 Bad L1 flags 800000\n"
    report, message = concluded(tmp_path, Verdict.PASS, "reached 3 milestone(s)", said)
    assert report["messages"] == ["d1v0 Bad L1 flags 800000"]
    assert message == "reached 3 milestone(s)"
    assert concluded(tmp_path, Verdict.PASS, "reached 3 milestone(s)", "(XEN) d2v0 other\n")[0] is None
    report, message = concluded(tmp_path, Verdict.TIMEOUT, "'x' did not come", said)
    assert message == "'x' did not come [Xen: d1v0 Bad L1 flags 800000]"


def test_xl_dmesg_polls_take_only_what_follows_the_lines_seen_last():
    seen = ["a\n", "b\n"]
    assert _after_overlap(["x\n", "a\n", "b\n", "c\n", "d\n"], seen) == 3
    # The ring wrapped past what was seen: all of it is new.
    assert _after_overlap(["c\n", "d\n"], seen) == 0
    assert _after_overlap(["a\n", "b\n"], seen) == 2


# -- the judge's second source --------------------------------------------------

EARLY_FROM_XEN = """
    hang = 5
    [[milestone]]
    name = "early"
    pattern = '^xen_setbootenv'
    source = "xen"
    budget = 5
"""
SOURCES_SPEC = EARLY_FROM_XEN + """
    [[milestone]]
    name = "either"
    pattern = '^hello'
    budget = 5
    [[milestone]]
    name = "late"
    pattern = '^bye'
    source = "console"
    budget = 5
    [[fatal]]
    kind = "panic"
    pattern = '^panic - '
    source = "xen"
"""


def write_spec(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_a_pattern_matches_only_the_source_it_watches(tmp_path):
    judge = Judge(load_spec(write_spec(tmp_path, SOURCES_SPEC)))
    judge.feed("xen_setbootenv(): cmd_line=''\n", None, 1.0)          # console: not for "early"
    assert judge.outcome.milestones == []
    judge.feed("xen_setbootenv(): cmd_line=''\n", None, 1.1, source=XEN)
    judge.feed("hello\n", None, 1.2, source=XEN)                       # "both" by default
    judge.feed("bye\n", None, 1.3, source=XEN)                         # console only: not yet
    judge.feed("panic - on the console is not fatal here\n", None, 1.4)
    judge.feed("bye\n", None, 1.5)
    assert judge.outcome.verdict is Verdict.PASS
    assert [(m["name"], m.get("source")) for m in judge.outcome.milestones] == [
        ("early", XEN), ("either", XEN), ("late", None)]
    assert [e["source"] for e in judge.events if "milestone" in e] == [XEN, XEN, CONSOLE]


def test_a_fatal_line_from_xen_sets_the_verdict(tmp_path):
    judge = Judge(load_spec(write_spec(tmp_path, SOURCES_SPEC)))
    judge.feed("panic - xen_start_info is NULL\n", None, 1.0, source=XEN)
    judge.end("poweroff", 1.5)
    assert judge.outcome.verdict is Verdict.PANIC
    assert judge.outcome.fatal == [{"kind": "panic", "seconds": 1.0, "source": XEN,
                                    "line": "panic - xen_start_info is NULL"}]


@pytest.mark.parametrize("entry, key", [
    ('[[milestone]]\nname = "m"\npattern = "x"\nbudget = 1\nsource = "serial"\n', 'milestone "m"'),
    ('[[milestone]]\nname = "m"\npattern = "x"\nbudget = 1\n[[fatal]]\nkind = "panic"\n'
     'pattern = "p"\nsource = "Xen"\n', 'fatal "panic"'),
    ('[[milestone]]\nname = "m"\npattern = "x"\nbudget = 1\n[[note]]\nname = "n"\n'
     'pattern = "p"\nsource = ""\n', 'note "n"'),
])
def test_an_unknown_source_is_bad_input_naming_the_entry(tmp_path, entry, key):
    with pytest.raises(BadInput) as e:
        load_spec(write_spec(tmp_path, entry))
    assert f"{key}: source:" in e.value.message and "console, xen, both" in e.value.message


def test_a_waiting_for_the_end_milestone_has_no_source(tmp_path):
    path = write_spec(tmp_path, '[[milestone]]\nname = "end"\nend = ["poweroff"]\nbudget = 1\n'
                                'source = "xen"\n')
    with pytest.raises(BadInput, match="source: a milestone with end/alive has no source"):
        load_spec(path)


# -- the generic fatal set and the xtf spec --------------------------------------

def judged(spec, text, end="crash"):
    judge = Judge(load_spec(spec))
    judge.feed(text, None, None)
    judge.end(end, None)
    return judge.outcome


def test_a_panic_line_in_capitals_is_panic_with_that_line():
    # XTF's panic() output (common/lib.c), as its selftest printed it in the lab.
    outcome = judged("generic", "--- Xen Test Framework ---\n******************************\n"
                                "PANIC: Unhandled exception at e033:0000000000104005 Vec 13 #GP[IDT[64]]\n"
                                "******************************\n")
    assert outcome.verdict is Verdict.PANIC
    assert outcome.message == "PANIC: Unhandled exception at e033:0000000000104005 Vec 13 #GP[IDT[64]]"


@pytest.mark.parametrize("result, verdict", [
    ("Test result: SUCCESS", Verdict.PASS), ("Test result: SUCCESS with warnings", Verdict.PASS),
    ("Test result: SKIP", Verdict.PASS), ("Test result: FAILURE", Verdict.MILESTONE_MISSING),
    ("Test result: ERROR", Verdict.MILESTONE_MISSING)])
def test_xtf_spec_passes_success_and_skip_only(result, verdict):
    outcome = judged("xtf", "--- Xen Test Framework ---\nEnvironment: PV 64bit (Long mode 4 levels)\n"
                            f"XTF Selftests\n{result}\n", end="poweroff")
    assert outcome.verdict is verdict
    assert [m["name"] for m in outcome.milestones] == (["banner", "result"] if verdict is Verdict.PASS
                                                       else ["banner"])


def test_xtf_without_its_banner_is_not_a_pass():
    assert judged("xtf", "Test result: SUCCESS\n", end="poweroff").verdict is Verdict.MILESTONE_MISSING


# -- live: the console session with Xen's console as a file ---------------------

class Running:
    """A domain that keeps running until the test ends."""

    def end_reason(self):
        return None

    def console_complete(self):
        return False


def test_session_judges_console_io_from_the_xen_console_and_records_each_source(tmp_path):
    host_log_path = tmp_path / "host.log"
    host_log_path.write_text("(XEN) before the domain was built: (d1) not this run's\n")
    xen = XenConsole(FileSource(str(host_log_path)), 1, str(tmp_path)).start()
    harness, guest = socket.socketpair()
    spec = load_spec(write_spec(tmp_path, EARLY_FROM_XEN + """
        [[milestone]]
        name = "ring"
        pattern = '^hello from the ring'
        source = "console"
        budget = 5
    """))

    def guest_speaks(event):
        # The guest's ring line comes once Xen's line was judged: in order.
        if event.get("milestone") == "early":
            guest.sendall(b"hello from the ring\r\n")
    try:
        with open(host_log_path, "a") as f:
            f.write("".join(CONSOLE_IO))
        with ConsoleSession(harness.fileno(), spec, str(tmp_path), domain=Running(), xen=xen,
                            on_match=guest_speaks) as session:
            outcome = session.judge()
    finally:
        xen.close()
        harness.close()
        guest.close()
    assert outcome.verdict is Verdict.PASS, outcome
    records = [json.loads(line) for line in (tmp_path / "console.jsonl").read_text().splitlines()]
    assert {r["source"] for r in records if r["dir"] == "recv"} == {CONSOLE, XEN}
    assert [r["text"] for r in records if r["dir"] == "recv" and r["source"] == XEN] == [
        "xen_setbootenv(): cmd_line=''", "PROBE xenprint hello from d1"]
    assert (tmp_path / "xen.log").read_text() == (
        "(d1) [   20.100000] xen_setbootenv(): cmd_line=''\n"
        "(d1) [   20.200000] PROBE xenprint hello from d1\n")


def test_check_log_rejudges_the_recorded_xen_lines(tmp_path):
    log = tmp_path / "console.log"
    log.write_bytes(b"hello\r\nhello from the ring\r\n")
    jsonl = tmp_path / "console.jsonl"
    records = [{"t": 0.5, "dir": "recv", "source": XEN, "text": "xen_setbootenv(): cmd_line=''"},
               {"t": 1.0, "dir": "recv", "source": CONSOLE, "n": 7, "text": "hello\r\n"},
               {"t": 1.5, "dir": "recv", "source": CONSOLE, "n": 21, "text": "hello from the ring\r\n"}]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    spec = load_spec(write_spec(tmp_path, SOURCES_SPEC.replace("'^bye'", "'^hello from the ring'")))
    outcome = checklog.check_log(str(log), spec, str(jsonl))
    assert outcome.verdict is Verdict.PASS
    assert outcome.milestones[0] == {"name": "early", "seconds": 0.5, "source": XEN,
                                     "line": "xen_setbootenv(): cmd_line=''"}
    # Without the recorded Xen lines the Xen-only milestone never comes.
    assert checklog.check_log(str(log), spec).verdict is not Verdict.PASS


# -- on real Xen (the lab) -------------------------------------------------------

def boot_together(host, requests):
    """{name: BootRequest} booted at once on one shared host: {name: result data}."""
    records = {}

    def run(name):
        records[name] = boot(requests[name], progress=lambda line: None, shared_host=host).data
    threads = [threading.Thread(target=run, args=(name,)) for name in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return records


NEVER = "hang = 30\n[[milestone]]\nname = \"never\"\npattern = '^never$'\nbudget = 60\n"


@pytest.mark.lab
def test_two_crashing_probes_on_one_host_each_get_only_their_own_xen_report(tmp_path):
    spec = write_spec(tmp_path, NEVER, "never.toml")
    runs = {"a": ("probe.run=fault", spec), "b": ("probe.run=fault", spec), "c": ("", "probe")}
    # The first host of a fresh clone boots cold and saves the snapshot; the
    # host under test must be restored from it, so that its host.log holds
    # only what Xen said about these guests.
    with shared_lab_host(str(tmp_path / "warm-up"), progress=lambda line: None):
        pass
    with shared_lab_host(str(tmp_path), progress=lambda line: None) as host:
        records = boot_together(host, {name: BootRequest(kernel="probe", spec=spec_name, cmdline=cmdline,
                                                         out_dir=str(tmp_path / name))
                                       for name, (cmdline, spec_name) in runs.items()})
    domids = {name: records[name]["domain"]["domid"] for name in runs}
    assert len(set(domids.values())) == 3
    for name in ("a", "b"):
        data, domid = records[name], domids[name]
        assert data["verdict"] == "CRASH", data["message"]
        assert data["message"].startswith("Xen: unhandled #PF[0000], fault in create_bounce_frame,"
                                          " RIP probe_fault+0x"), data["message"]
        assert data["xen"]["domid"] == domid and data["xen"]["cr2"] == "0xdeadb000"
        log = (tmp_path / name / "xen.log").read_text()
        assert f"Domain {domid} (vcpu#0) crashed" in log and f"d{domid}v0 Unhandled" in log
        for other in set(domids.values()) - {domid}:
            assert f"d{other}v" not in log and f"Domain {other} " not in log
    assert records["c"]["verdict"] == "PASS" and "xen" not in records["c"]
    assert (tmp_path / "c" / "xen.log").read_text() == ""
    jsonl = [json.loads(line) for line in (tmp_path / "c" / "console.jsonl").read_text().splitlines()]
    received = [r for r in jsonl if r["dir"] == "recv"]
    assert received and all(r["source"] == CONSOLE for r in received)
    assert all(r["source"] == CONSOLE for r in jsonl if "milestone" in r)
    # Everything the host said about them is in one of the two xen.logs.
    host_lines = xen_lines((tmp_path / "host" / "host.log").read_text())
    split_lines = (tmp_path / "a" / "xen.log").read_text().splitlines() + \
        (tmp_path / "b" / "xen.log").read_text().splitlines()
    assert sorted(host_lines) == sorted(split_lines)


@pytest.mark.lab
def test_crash_at_entry_verdict_quotes_xens_reason(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([XENBOOT, "boot", "--out", str(out), "--kernel", CRASH_AT_ENTRY],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["verdict"] == "CRASH"
    assert result["message"] == ("Xen: unhandled #PF[0000], fault in create_bounce_frame, RIP _start,"
                                 " cr2 0xdeadb000 (the domain crashed while waiting for 'first-output')")
    assert result["message"] in proc.stdout
    assert result["xen"]["rip_symbol"] == "_start"
    assert any(line.startswith("Domain ") and "crashed" in line for line in result["xen"]["messages"])
    assert "Domain " in (out / "xen.log").read_text()


@pytest.mark.lab
def test_host_xl_follows_xl_dmesg_for_the_domains_xen_report(tmp_path):
    os.makedirs(tmp_path / "share")
    with lab_host(str(tmp_path), str(tmp_path / "share"), host_root=True) as host:
        job = boot_in_dom0(host, "--kernel", f"{DOM0_REPO}/build/probe/crash-at-entry",
                           "--out", "/tmp/xl-crash")
        assert job.status == 1, job.text
        result = json.loads(host.read_file("/tmp/xl-crash/result.json"))
        xen_log = host.read_file("/tmp/xl-crash/xen.log").decode()
    domid = result["domain"]["domid"]
    assert result["host"]["kind"] == "xl" and result["verdict"] == "CRASH"
    assert result["message"].startswith("Xen: unhandled #PF[0000], fault in create_bounce_frame,"
                                        " RIP _start, cr2 0xdeadb000")
    assert f"Domain {domid} (vcpu#0) crashed" in xen_log


# -- end to end on the debug lab: the probe's console_io and Xen's refusal -----

RESULT = """\
hang = 30
[[milestone]]
name = "result"
pattern = '^PROBE result '
source = "console"
budget = 60
"""
# Lines of the two sources are judged in the order they reach the harness,
# which is not always the order they were printed in: a spec does not make
# a milestone of one source wait for one of the other printed just before.
XEN_HELLO = """\
hang = 30
[[milestone]]
name = "xen-hello"
pattern = '^hello-from-(?P<who>[a-z]+)$'
source = "xen"
budget = 60
"""
REFUSED = """\
[[milestone]]
name = "refused"
pattern = '^badpte: .*: refused '
source = "console"
budget = 60
"""


@pytest.mark.lab
def test_probes_console_io_is_a_milestone_and_xens_refusal_stays_with_its_run(tmp_path):
    """Two probes on one debug host: each prints through console_io (matched
    from Xen's console only), one makes Xen refuse a page-table update; the
    refusal is in that run's result.json `xen`, not the other's."""
    specs = {"bad": write_spec(tmp_path, RESULT + REFUSED, "bad.toml"),
             "good": write_spec(tmp_path, XEN_HELLO, "good.toml")}
    runs = {"bad": "probe.run=xenprint hello-from-bad,badpte", "good": "probe.run=xenprint hello-from-good"}
    with shared_lab_host(str(tmp_path), progress=lambda line: None, flavour="debug") as host:
        records = boot_together(host, {name: BootRequest(kernel="probe", spec=specs[name], cmdline=runs[name],
                                                         lab="debug", out_dir=str(tmp_path / name))
                                       for name in runs})
    for name, data in records.items():
        assert data["verdict"] == "PASS", data["message"]
        assert f"hello-from-{name}" in (tmp_path / name / "xen.log").read_text()
    jsonl = [json.loads(line) for line in (tmp_path / "good" / "console.jsonl").read_text().splitlines()]
    assert any(r["dir"] == "recv" and r["source"] == XEN and r["text"] == "hello-from-good" for r in jsonl)
    hello = records["good"]["milestones"][-1]
    assert (hello["name"], hello["line"], hello["source"]) == ("xen-hello", "hello-from-good", XEN)
    bad = records["bad"]
    assert any("Bad L1 flags" in line for line in bad["xen"]["messages"]), bad["xen"]
    assert "Bad L1 flags" not in (tmp_path / "good" / "xen.log").read_text()
    assert f"d{bad['domain']['domid']}v0 Bad L1 flags" in (tmp_path / "bad" / "xen.log").read_text()
