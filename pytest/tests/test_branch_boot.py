"""The amd64_xen_pv branch's own amd64 PV kernel, built with `make kernel
TARGET=amd64 KERNCONF=XEN` and booted on the debug lab (issue 21). Marked
branch_tree: $XENBOOT_BRANCH_TREE names a reconstruction of the branch's
tree (its amd64 files laid over a FreeBSD 10 tree, with local adaptations;
never committed). What it did here is also kept as REAL transcripts, which
CI replays without the tree (test_player.py)."""
import json
import re
import subprocess

import pytest

from xenboot.core import paths

pytestmark = [pytest.mark.lab, pytest.mark.branch_tree]
XENBOOT = str(paths.REPO / "ci" / "xenboot")


@pytest.fixture(scope="module")
def objdir(tmp_path_factory):
    return tmp_path_factory.mktemp("branch-obj")


def branch_boot(tree, objdir, out, *extra):
    """`make boot FREEBSD_SRC=tree [MEMORY=...]`, through the tool; its result.json."""
    subprocess.run([XENBOOT, "freebsd", "--src", str(tree), "--objdir", str(objdir), "--out", str(out), *extra],
                   capture_output=True, text=True, timeout=3600)
    return json.loads((out / "result.json").read_text())


def test_the_branch_kernel_is_an_amd64_xen_pv_kernel(branch_tree, objdir, tmp_path):
    out = tmp_path / "build"
    proc = subprocess.run([XENBOOT, "kernel", "--target", "amd64", "--kernconf", "XEN", "--src", str(branch_tree),
                           "--objdir", str(objdir), "--out", str(out)], capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    built = json.loads((out / "result.json").read_text())
    notes = built["kernel"]["notes"]
    assert (built["kernel"]["guest_type"], notes["VIRT_BASE"], notes["PAE_MODE"]) == \
        ("xen-3.0-x86_64", "0xffffffff80000000", "no")
    assert "writable_page_tables" in notes["FEATURES"]


# At 128 MB a boot that stops silent waiting for xbd0 (HANG, Xen's
# event-channel dump naming the lost xenstore event) is the branch's own
# exception.S: EVENTS_MASK/EVENTS_UNMASK store the mask with movq, and the
# 8-byte store at evtchn_upcall_mask (offset 1 of vcpu_info) zeroes the low
# byte of evtchn_pending_sel (offset 8), so pending events are lost. With
# that movq kept 8 of 10 boots hung; with it made movb (a local adaptation
# of the reconstruction) 10 of 10 reached the panic (both 2026-12-02). Each
# HANG must say so; the panic path is what the tests below check.
TRIES_AT_128 = 5


@pytest.fixture(scope="module")
def at_128(branch_tree, objdir, tmp_path_factory):
    hangs = []
    for attempt in range(1, TRIES_AT_128 + 1):
        out = tmp_path_factory.mktemp("branch") / f"128M-{attempt}"
        result = branch_boot(branch_tree, objdir, out, "--memory", "128")
        if result["verdict"] != "HANG":
            return out, result
        assert "(xenstore)" in result["message"] and "the guest lost" in result["message"], result["message"]
        hangs.append(result["failed_at"])
    # The tree's lost events, told apart from the harness's: the panic path is
    # left unchecked this time (the REAL transcript of it replays in CI).
    pytest.skip(f"{TRIES_AT_128} boots at 128 MB each lost their xenstore event (HANG at {hangs}, Xen's "
                "event-channel dump quoted): the tree's amd64/xen/exception.S still stores the event mask "
                "with movq, zeroing evtchn_pending_sel's low byte: make those stores movb")


def test_at_128_mb_it_mounts_root_then_panics_in_a_pmap_stub_and_ddb_answers(at_128):
    _, result = at_128
    assert result["verdict"] == "PANIC" and result["failed_at"] == "init", result["message"]
    assert result["message"].startswith("panic: XXX: pmap_page_wired_mappings: TODO"), result["message"]
    names = [m["name"] for m in result["milestones"]]
    assert names[-4:] == ["xen-clock", "xenstore", "disk", "mountroot"] and "banner" in names, names
    replies = {r["command"]: r for r in result["debugger"]}
    assert list(replies) == ["set $lines = 0", "bt", "show registers", "ps"]
    assert not any(r.get("unfinished") for r in replies.values())
    assert "pmap_page_wired_mappings" in replies["bt"]["reply"] and "rip" in replies["show registers"]["reply"]


DDB_FRAME = re.compile(r"^(\S+)\(\) at \1\+(0x[0-9a-f]+)/frame ", re.M)
GDB_PC = re.compile(r"^#\d+\s+(0x[0-9a-f]+) in ", re.M)


def test_gdb_reads_the_kernel_at_db_as_amd64_and_unwinds_into_ddb_s_frames(at_128):
    """At db> the vCPU runs ddb itself: gdb's first frames are ddb's own,
    with file:line, down to trap() for the breakpoint kdb_enter took; the
    trap-frame unwinder carries on into the code that trapped, where every
    frame of ddb's `bt` is one of gdb's, by address (the names differ where
    ddb names a static after the global before it)."""
    out, result = at_128
    found = result["gdb"]
    assert any(re.match(r"rip\s+0xffffffff8[0-9a-f]{7}\s", r) for r in found["registers"]), found["registers"]
    frames = "\n".join(found["backtrace"])
    assert re.search(r" db_command_loop \(\) at /usr/src/sys/ddb/db_command\.c:\d+$", frames, re.M), frames
    assert re.search(r" in trap \(frame=0x[0-9a-f]+\) at /usr/src/sys/amd64/amd64/trap\.c:\d+$", frames, re.M), frames
    table = {}
    for line in (out / "share" / "kernel.syms").read_text().splitlines():
        address, _, name = line.split()
        table[name] = int(address, 16)
    ddb = [table[name] + int(offset, 16) for name, offset in
           DDB_FRAME.findall(next(r["reply"] for r in result["debugger"] if r["command"] == "bt"))]
    assert len(ddb) >= 10
    assert set(ddb) <= {int(pc, 16) for pc in GDB_PC.findall(frames)}, frames


def test_xen_s_re_sent_copy_of_the_console_is_judged_once(at_128):
    """The branch's console.c re-sends its backlog through console_io: xen.log
    keeps every copy, the judge saw each line once."""
    out, result = at_128
    xen_lines = [line for line in (out / "xen.log").read_text().splitlines() if line.startswith("(d")]
    judged = [json.loads(line) for line in (out / "console.jsonl").read_text().splitlines()]
    judged = [r for r in judged if r.get("dir") == "recv" and r.get("source") == "xen"]
    assert len(judged) < len(xen_lines)
    assert len({r["text"] for r in judged}) >= len(judged) - 5
    assert sum(1 for f in result["fatal"] if f["line"].startswith("panic: XXX")) <= 2


def test_at_the_default_size_it_crashes_before_its_console_and_xen_says_where(branch_tree, objdir, tmp_path):
    result = branch_boot(branch_tree, objdir, tmp_path / "256M")
    assert result["request"]["memory_mb"] == 256
    assert result["verdict"] == "CRASH", result["message"]
    assert result["message"].startswith("Xen: unhandled #PF"), result["message"]
    assert "noted: Attempt to use unmapped va" in result["message"]
