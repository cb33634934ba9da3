"""The symbolize stage (issue 22): kernel addresses named from the kernel's
own symbols and DWARF with the real binutils, on the probe (built with -g
for both guest types), and on a real boot of it that Xen crashes."""
import json
import re
import shutil
import subprocess

import pytest

from xenboot.core import paths
from xenboot.guest.symbolize import DECODED_CONSOLE, Symbolizer, debug_file

PROBE_DIR = paths.REPO / "build" / "probe"
PROBES = {"pv64": PROBE_DIR / "probe", "pv32pae": PROBE_DIR / "probe-pv32pae"}
SOURCE = paths.REPO / "images" / "probe"
XENBOOT = str(paths.REPO / "ci" / "xenboot")


def source_line(where):
    """The text of `file:line` in the probe's source."""
    path, _, number = where.rpartition(":")
    return (SOURCE / path).read_text().splitlines()[int(number) - 1]


def nm(kernel, name):
    out = subprocess.run(["nm", str(kernel)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[0] for line in out.splitlines() if line.endswith(f" {name}")), 16)


def disassembly(kernel, function):
    """objdump's lines of one function."""
    dump = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(kernel)], capture_output=True,
                          text=True, check=True).stdout
    return dump.split(f"<{function}>:", 1)[1].split("\n\n", 1)[0].strip().splitlines()


def after_call(kernel, function, callee):
    """The address of the instruction after `function`'s call of `callee`."""
    body = disassembly(kernel, function)
    call = next(i for i, line in enumerate(body) if "call" in line and f"<{callee}>" in line)
    return int(body[call + 1].split(":")[0], 16)


def fault_rip(kernel):
    """The address of probe_fault's read of the unmapped page: right after
    its console_flush."""
    return after_call(kernel, "probe_fault", "console_flush")


@pytest.mark.parametrize("guest", sorted(PROBES))
def test_xen_rip_names_the_faulting_source_line(guest):
    kernel = PROBES[guest]
    rip = fault_rip(kernel)
    width = 16 if guest == "pv64" else 8
    symbolizer = Symbolizer(str(kernel))
    assert symbolizer.describe()["dwarf"] is True
    line = f"RIP:    e033:[<{rip:0{width}x}>]"
    decoded = symbolizer.decode_lines([line])[0]
    m = re.fullmatch(re.escape(line) + r" \((probe_fault\+0x[0-9a-f]+) at (common/commands\.c:\d+)\)", decoded)
    assert m, decoded
    assert "PROBE_UNMAPPED_VA;" in source_line(m.group(2))
    assert symbolizer.locate(rip).line == m.group(2)


def test_inlined_functions_are_named_with_their_lines():
    symbolizer = Symbolizer(str(PROBES["pv64"]))
    # probe_hang_loop's spin is cpu_relax's pause, inlined.
    start = nm(PROBES["pv64"], "probe_hang_loop")
    frames = [symbolizer.locate(start + off) for off in range(0, 0x20)]
    inlined = [f for f in frames if f and len(f.frames) > 1]
    assert inlined, frames
    assert inlined[0].frames[0][0] == "cpu_relax" and inlined[0].frames[-1][1].startswith("common/commands.c:")
    assert "cpu_relax at arch/x86/include/arch/cpu.h:" in inlined[0].where()


def test_ddb_frames_are_named_at_the_call():
    """A ddb bt frame's address is a return address: its line is the call's."""
    kernel = PROBES["pv64"]
    symbolizer = Symbolizer(str(kernel))
    ret = after_call(kernel, "probe_main", "commands_run_list")
    line = f"probe_main() at probe_main+{ret - nm(kernel, 'probe_main'):#x}/frame 0xffffffff8001c370"
    decoded = symbolizer.decode_lines([line])[0]
    where = re.search(r"\(at (common/main\.c:\d+)\)$", decoded)
    assert where, decoded
    assert "commands_run_list(" in source_line(where.group(1))


def test_only_the_kernels_code_is_named():
    symbolizer = Symbolizer(str(PROBES["pv64"]))
    bss = nm(PROBES["pv64"], "boot_stack")
    lines = ["fault: reading unmapped address 0xdeadb000",  # not the kernel's
             f"boot stack at {bss:#x}",  # the kernel's data, not its code
             "fault at ffff82d040204bd8 x86_64/entry.S#create_bounce_frame+0x14f/0x177",  # Xen's own
             "no_such_function+0x10 and 12345678 and 0xffffffff80000000ab",  # no name, a number, too long
             ""]
    assert symbolizer.decode_lines(lines) == lines


def test_a_name_the_kernel_printed_gets_the_tables_name_when_they_differ():
    """ddb's symbol table may not be the kernel's (the branch's
    kassert_panic frames): the address is named from the kernel's."""
    kernel = PROBES["pv64"]
    symbolizer = Symbolizer(str(kernel))
    # The function before probe_fault in the table: before+<the distance + 4> is probe_fault+0x4.
    table = subprocess.run(["nm", "-n", str(kernel)], capture_output=True, text=True, check=True).stdout.split()
    before = table[table.index("probe_fault") - 3]
    distance = nm(kernel, "probe_fault") - nm(kernel, before) + 4
    decoded = symbolizer.decode_lines([f"Stopped at {before}+{distance:#x}: movq"])[0]
    assert re.search(re.escape(before) + r"\+0x[0-9a-f]+ \(= probe_fault\+0x4 at common/commands\.c:\d+\):", decoded), decoded


def test_without_dwarf_names_are_symbols_only_and_it_says_so(tmp_path):
    stripped = tmp_path / "probe"
    subprocess.run(["objcopy", "--strip-debug", str(PROBES["pv64"]), str(stripped)], check=True)
    symbolizer = Symbolizer(str(stripped))
    described = symbolizer.describe()
    assert described["dwarf"] is False and "symbols only" in described["note"] and "-g" in described["note"]
    rip = fault_rip(stripped)
    assert symbolizer.decode_lines([f"RIP:    e033:[<{rip:016x}>]"])[0].endswith(
        f"[<{rip:016x}>] (probe_fault+{rip - nm(stripped, 'probe_fault'):#x})")


def test_a_kernel_without_symbols_names_nothing(tmp_path):
    stripped = tmp_path / "probe"
    subprocess.run(["objcopy", "--strip-all", str(PROBES["pv64"]), str(stripped)], check=True)
    symbolizer = Symbolizer(str(stripped))
    assert "no symbol table" in symbolizer.describe()["note"]
    line = f"RIP:    e033:[<{fault_rip(PROBES['pv64']):016x}>]"
    assert symbolizer.decode_lines([line]) == [line]


def test_kernel_debug_beside_the_kernel_is_read(tmp_path):
    """FreeBSD's object folder: a stripped kernel, kernel.debug beside it."""
    kernel = tmp_path / "kernel"
    subprocess.run(["objcopy", "--strip-debug", str(PROBES["pv64"]), str(kernel)], check=True)
    shutil.copy(PROBES["pv64"], tmp_path / "kernel.debug")
    assert debug_file(str(kernel)) == str(kernel) + ".debug"
    assert Symbolizer(debug_file(str(kernel))).dwarf
    assert debug_file(str(PROBES["pv64"]), "staged") == "staged"


def test_check_log_decodes_an_old_log(tmp_path):
    kernel = PROBES["pv64"]
    rip = fault_rip(kernel)
    log = tmp_path / "run" / "console.log"
    log.parent.mkdir()
    log.write_bytes(f"PROBE begin\r\nsysinit {nm(kernel, 'probe_main'):#x}(0)... done.\r\n".encode())
    proc = subprocess.run([XENBOOT, "check-log", str(log), "--spec", "generic", "--kernel", str(kernel),
                           "--end-reason", "crash"], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = tmp_path / "run" / "check-log"
    result = json.loads((out / "result.json").read_text())
    decoded = (out / DECODED_CONSOLE).read_text()
    assert re.search(r"sysinit 0x[0-9a-f]+ \(probe_main at common/main\.c:\d+\)\(0\)\.\.\. done\.", decoded), decoded
    assert result["symbolized"]["console"]["lines_decoded"] == 1
    assert result["symbolized"]["console"]["lines"][0]["raw"].startswith("sysinit 0x")
    assert rip  # the fault's address exists in this build
    proc = subprocess.run([XENBOOT, "check-log", str(log), "--spec", "generic", "--kernel", str(tmp_path),
                           "--out", str(tmp_path / "bad")], capture_output=True, text=True)
    assert proc.returncode == 2 and "--kernel=" in proc.stdout and "is a directory" in proc.stdout


@pytest.mark.lab
def test_crash_of_the_probe_names_its_faulting_line(tmp_path):
    """A real boot: Xen crashes the probe on its `fault` read; result.json
    and the verdict's summary name the source line of the RIP."""
    out = tmp_path / "run"
    proc = subprocess.run([XENBOOT, "boot", "--kernel", "probe", "--cmdline", "probe.run=fault", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["verdict"] == "CRASH"
    symbolized = result["symbolized"]
    rip = symbolized["rip"]
    assert rip["name"] == result["xen"]["rip_symbol"] and rip["name"].startswith("probe_fault+")
    assert "PROBE_UNMAPPED_VA;" in source_line(rip["line"]), rip
    assert f"where Xen stopped it (RIP): {rip['name']} at {rip['line']}" in proc.stdout
    # Xen's report, raw and decoded; the guest stack's return addresses too.
    assert any(line.startswith("RIP:") and f"({rip['name']} at {rip['line']})" in line for line in symbolized["xen"])
    assert any("(probe_main+" in line for line in symbolized["xen"])
    assert not any(" at " in line for line in result["xen"]["messages"] if line.startswith("RIP:"))
    assert (out / DECODED_CONSOLE).is_file() and symbolized["console"]["lines_decoded"] >= 1


def test_the_report_shows_the_decoded_text(tmp_path):
    """report.html's boot section: the decoded console, Xen's messages,
    ddb's replies and gdb's frames, where the run has them."""
    from xenboot.report import report
    folder = tmp_path / "boots" / "probe-1"
    folder.mkdir(parents=True)
    (folder / "console.log").write_text("raw 0xffffffff80006869\n")
    (folder / DECODED_CONSOLE).write_text("raw 0xffffffff80006869 (probe_fault+0x29 at common/commands.c:87)\n")
    (folder / "result.json").write_text(json.dumps({
        "verdict": "CRASH", "message": "m", "xen": {"messages": ["RIP:    e033:[<ffffffff80006869>]"]},
        "debugger": [{"command": "bt", "reply": "probe_fault() at probe_fault+0x29/frame 0x1"}],
        "symbolized": {"console": {"file": DECODED_CONSOLE}, "dwarf": False, "note": "symbols only: no DWARF",
                       "xen": ["RIP:    e033:[<ffffffff80006869>] (probe_fault+0x29)"],
                       "debugger": [{"command": "bt", "reply": "probe_fault() at probe_fault+0x29/frame 0x1 (at x.c:1)"}]},
        "gdb": {"backtrace": ["#0  probe_fault () at common/commands.c:87"], "instruction": ["=> 0x1"]}}))
    row = {"id": "probe-1", "verdict": "CRASH", "outcome": "expected", "kernel": "probe", "spec": "generic",
           "host": "lab", "cmdline": "", "expect": "CRASH", "folder": "boots/probe-1", "attempts": [{}]}
    page = report.boot_section(tmp_path, row)
    for shown in ("(probe_fault+0x29 at common/commands.c:87)", "symbols only: no DWARF",
                  "[&lt;ffffffff80006869&gt;] (probe_fault+0x29)", "/frame 0x1 (at x.c:1)",
                  "#0  probe_fault () at common/commands.c:87", "console.decoded.log"):
        assert shown in page, shown
