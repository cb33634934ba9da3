"""gdb on a PV domain through Xen (issue 22): Xen's gdbsx in the lab's dom0
(debug Xen: gdbsx's hypercalls need CONFIG_DEBUG), relayed over
virtio-serial, Debian's gdb on this side, the probe (built with -g) as the
guest. All real: Xen, QEMU, gdbsx, gdb."""
import contextlib
import json
import os
import re
import shutil
import subprocess
import threading

import pexpect
import pytest

from xenboot.console import mirror
from xenboot.core import paths
from xenboot.guest import gdb as guest_gdb

pytestmark = pytest.mark.lab

XENBOOT = str(paths.REPO / "ci" / "xenboot")
BUILT = paths.REPO / "build" / "probe"


def freebsd_branded(tmp_path):
    """The probe branded as FreeBSD's kernels are (ELF OS ABI FreeBSD),
    for which Debian's gdb has no x86-64 ABI: gdb must still read gdbsx's
    64-bit registers (the branch's amd64 kernel read as i386 did not)."""
    copy = tmp_path / "probe-freebsd-abi"
    shutil.copy(BUILT / "probe", copy)
    subprocess.run(["elfedit", "--output-osabi=FreeBSD", str(copy)], check=True)
    assert "FreeBSD" in subprocess.run(["readelf", "-h", str(copy)], capture_output=True, text=True).stdout
    return str(copy)


PROBES = {"pv64": lambda tmp_path: "probe", "pv32pae": lambda tmp_path: str(BUILT / "probe-pv32pae"),
          "pv64-freebsd-abi": freebsd_branded}
COMMANDS = paths.REPO / "images" / "probe" / "common" / "commands.c"


def line_of(text):
    """The line number of `text` in the probe's common/commands.c."""
    return next(n for n, line in enumerate(COMMANDS.read_text().splitlines(), 1) if text in line)


def boot(out, *args):
    proc = subprocess.run([XENBOOT, "boot", "--out", str(out), *args], capture_output=True, text=True, timeout=300)
    return proc, json.loads((out / "result.json").read_text())


@pytest.mark.parametrize("guest", sorted(PROBES))
def test_a_crashed_domain_gets_gdbs_registers_backtrace_and_instruction(tmp_path, guest):
    proc, result = boot(tmp_path / "run", "--kernel", PROBES[guest](tmp_path), "--lab", "debug",
                        "--cmdline", "probe.run=fault")
    assert result["verdict"] == "CRASH", proc.stdout + proc.stderr
    found = result["gdb"]
    assert "error" not in found, found
    fault = line_of("PROBE_UNMAPPED_VA;")
    assert re.match(rf"#0  probe_fault \(.*\) at common/commands\.c:{fault}$", found["backtrace"][0]), found
    assert any(" in probe_main " in frame and "common/main.c:" in frame for frame in found["backtrace"])
    pc = "eip" if guest == "pv32pae" else "rip"
    assert any(re.match(rf"{pc}\s+0x[0-9a-f]+\s+0x[0-9a-f]+ <probe_fault\+\d+>", r) for r in found["registers"])
    assert found["instruction"][0].startswith("=> ") and "<probe_fault+" in found["instruction"][0]
    # The same RIP Xen reported, named the same way by the symbolize stage.
    assert result["symbolized"]["rip"]["line"] == f"common/commands.c:{fault}"
    assert f"gdb's innermost frame: {found['backtrace'][0]}" in proc.stdout


def test_a_silent_domain_gets_gdbs_backtrace_agreeing_with_xenctx(tmp_path):
    """HANG: the guest still runs; gdb's frames are xenctx's, decoded."""
    spec = tmp_path / "never.toml"
    spec.write_text("hang = 5\n[[milestone]]\nname = \"never\"\npattern = '^never$'\nbudget = 60\n")
    _, result = boot(tmp_path / "run", "--kernel", "probe", "--lab", "debug", "--spec", str(spec),
                     "--cmdline", "probe.run=hang")
    assert result["verdict"] == "HANG"
    frames = result["gdb"]["backtrace"]
    spin = line_of("cpu_relax();")
    # cpu_relax is inlined into probe_hang_loop: gdb shows both frames, the
    # symbolize stage the same inlining on xenctx's RIP line.
    assert "in cpu_relax () at arch/x86/include/arch/cpu.h:" in frames[0], frames
    assert frames[1].startswith("#1  probe_hang_loop (") and frames[1].endswith(f"common/commands.c:{spin}")
    rip = next(line for line in result["symbolized"]["xenctx"] if line.startswith("rip:"))
    assert f"at common/commands.c:{spin}, inlined: cpu_relax at arch/x86/include/arch/cpu.h:" in rip, rip


def test_without_gdbsx_in_xen_the_record_says_which_lab_has_it(tmp_path):
    """Debian's release Xen is built without CONFIG_GDBSX."""
    _, result = boot(tmp_path / "run", "--kernel", "probe", "--cmdline", "probe.run=fault")
    assert result["verdict"] == "CRASH"
    assert "has no gdbsx support" in result["gdb"]["error"] and "LAB=debug" in result["gdb"]["error"]


PVH = str(BUILT / "probe-pvh32")


@contextlib.contextmanager
def gdb_at_the_prompt(tmp_path, kernel, *args):
    """A boot of `kernel` on the debug lab waiting at probe> for "after gdb",
    and `make gdb` on it, driven through a pty: (the boot, gdb, run folder)."""
    out = tmp_path / "run"
    spec = tmp_path / "after-gdb.toml"
    spec.write_text("hang = 240\n[[milestone]]\nname = \"prompt\"\npattern = '^probe> '\npartial = true\n"
                    "budget = 60\n[[milestone]]\nname = \"after-gdb\"\npattern = '^after gdb$'\nbudget = 240\n")
    booting = subprocess.Popen([XENBOOT, "boot", "--out", str(out), "--kernel", kernel, "--lab", "debug",
                                "--spec", str(spec), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # The boot says when probe> came; its gdb.sock is there before the
        # console is judged. A boot that ends first ends the output; one
        # that says neither in 120 s fails the test.
        said, prompted = [], threading.Event()

        def listen():
            for line in booting.stdout:
                said.append(line)
                if "milestone prompt" in line:
                    break
            prompted.set()
        threading.Thread(target=listen, daemon=True).start()
        assert prompted.wait(120), "no probe> in 120 s:\n" + "".join(said)
        assert said and "milestone prompt" in said[-1], "the boot ended before probe>:\n" + "".join(said)
        assert (out / "gdb.sock").exists()
        gdb = pexpect.spawn(XENBOOT, ["gdb", str(out)], encoding="utf-8", timeout=60,
                            env=dict(os.environ, TERM="dumb"))
        try:
            yield booting, gdb, out
        finally:
            gdb.close(force=True)
    finally:
        if booting.poll() is None:
            booting.terminate()
            booting.wait(60)


@contextlib.contextmanager
def echo_typed_at_a_breakpoint(gdb, out):
    """break cmd_echo, continue, `echo after gdb` at probe>: the
    breakpoint's address, and the live console it was typed on (what the
    guest prints from then on comes there as it is printed)."""
    gdb.expect_exact("(gdb) ")
    gdb.sendline("break cmd_echo")
    gdb.expect(r"Breakpoint 1 at (0x[0-9a-f]+): file common/commands\.c, line (\d+)\.")
    address = int(gdb.match.group(1), 16)
    gdb.expect_exact("(gdb) ")
    gdb.sendline("continue")
    gdb.expect_exact("Continuing.")
    with mirror.connect(str(out)) as console:
        console.sendall(b"echo after gdb\r")
        yield address, console


def console_until(console, pattern, seconds):
    """What the live console prints until `pattern` matches it (the match
    and all it read), or until it ends or is quiet for `seconds`."""
    console.settimeout(seconds)
    seen = b""
    with contextlib.suppress(TimeoutError):
        while not pattern.search(seen) and (data := console.recv(4096)):
            seen += data
    return pattern.search(seen), seen


def test_make_gdb_stops_the_probe_at_a_breakpoint_and_continues_it(tmp_path):
    """A developer's session: gdb on a running boot, a breakpoint on a probe
    command, hit when the command is typed at probe>, continued; the probe
    finishes the command and the boot passes."""
    with gdb_at_the_prompt(tmp_path, "probe") as (booting, gdb, out), echo_typed_at_a_breakpoint(gdb, out):
        gdb.expect(r"Breakpoint 1, cmd_echo \(arg=[^)]*\)\s+at common/commands\.c:(\d+)")
        assert int(gdb.match.group(1)) == line_of("static void cmd_echo") + 2
        gdb.expect_exact("(gdb) ")
        # Stopped: the echo has not happened yet.
        assert b"\nafter gdb" not in _read(out / "console.log")
        gdb.sendline("continue")
        assert booting.wait(120) == 0
        gdb.sendline("quit")
        gdb.expect(pexpect.EOF)
    result = json.loads((out / "result.json").read_text())
    assert result["verdict"] == "PASS" and [m["name"] for m in result["milestones"]] == ["prompt", "after-gdb"]
    assert not (out / "gdb.sock").exists()


def test_make_gdb_on_the_pvh_probe_says_its_breakpoints_go_to_the_guest(tmp_path):
    """gdbsx attaches to the PVH probe (an HVM container) and gdb sets its
    breakpoint, but on this TCG lab the int3 reaches the guest's own IDT,
    not Xen: `make gdb` says so first, and the probe reports the #BP at the
    breakpoint (vector 3, the address after the int3)."""
    # --no-core: dumping the crashed 128 MiB HVM domain took 5 minutes.
    with gdb_at_the_prompt(tmp_path, PVH, "--no-core") as (booting, gdb, out):
        gdb.expect_exact("gdb: " + guest_gdb.PVH_TCG_BREAKPOINTS)
        fatal = re.compile(rb"PROBE fatal: unexpected trap: vector 3 error code 0x0 at (0x[0-9a-f]+) ")
        with echo_typed_at_a_breakpoint(gdb, out) as (address, console):
            found, seen = console_until(console, fatal, 60)
        assert found, seen[-400:]
        assert int(found.group(1), 16) == address + 1
        assert b"\nafter gdb" not in _read(out / "console.log")
        # The probe crashed its domain over the stray #BP; gdb goes, and the
        # boot ends by itself with that crash on record.
        gdb.close(force=True)
        booting.wait(180)
    result = json.loads((out / "result.json").read_text())
    assert result["verdict"] == "CRASH" and result["domain"]["end"] == "crash", result["message"]
    assert result["gdb"]["limits"] == [guest_gdb.PVH_TCG_BREAKPOINTS]
    assert "internal error" not in json.dumps(result)
    assert (out / "gdb.limits").read_text() == guest_gdb.PVH_TCG_BREAKPOINTS + "\n"


def test_a_hung_pvh_probe_gets_gdbs_registers_and_backtrace_with_the_limit(tmp_path):
    """What gdb reads of a PVH domain works: registers (32-bit, the probe's
    flat GDT selectors) and a backtrace from the busy loop to entry_pvh32.S."""
    spec = tmp_path / "never.toml"
    spec.write_text("hang = 5\n[[milestone]]\nname = \"never\"\npattern = '^never$'\nbudget = 60\n")
    _, result = boot(tmp_path / "run", "--kernel", PVH, "--lab", "debug", "--spec", str(spec),
                     "--cmdline", "probe.run=hang")
    assert result["verdict"] == "HANG" and result["host"]["cpu_profile"] == "hvm"
    found = result["gdb"]
    assert "error" not in found, found
    assert found["limits"] == [guest_gdb.PVH_TCG_BREAKPOINTS]
    assert any(re.match(r"eip\s+0x[0-9a-f]+\s+0x[0-9a-f]+ <probe_hang_loop\+\d+>", r) for r in found["registers"])
    assert any(re.match(r"cs\s+0x8\s", r) for r in found["registers"])
    frames = found["backtrace"]
    assert frames[1].startswith("#1  probe_hang_loop (") and \
        frames[1].endswith(f"common/commands.c:{line_of('cpu_relax();')}"), frames
    assert " pvh_start (" in frames[-2] and "arch/x86/pvh.c:" in frames[-2], frames
    assert frames[-1].endswith("_start () at arch/x86/entry_pvh32.S:" + frames[-1].rsplit(":", 1)[1]), frames


def _read(path):
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def test_a_crashed_domain_leaves_its_core_and_no_core_keeps_none(tmp_path, debian_vmlinuz):
    """Linux publishes its p2m list, which xl dump-core walks; with
    xen_legacy_crash its panic crashes the domain (on_crash preserve)."""
    proc, result = boot(tmp_path / "run", "--kernel", debian_vmlinuz, "--cmdline", "console=hvc0 xen_legacy_crash")
    assert result["domain"]["end"] == "crash", proc.stdout + proc.stderr
    core = tmp_path / "run" / "core.xen"
    assert result["core"] == {"file": "core.xen", "bytes": core.stat().st_size}, result["core"]
    sections = subprocess.run(["readelf", "-SW", str(core)], capture_output=True, text=True, check=True).stdout
    pages = re.search(r"\.xen_pages\s+PROGBITS\s+\S+\s+\S+\s+(\S+)", sections)
    assert ".xen_prstatus" in sections and ".xen_p2m" in sections and pages, sections
    assert int(pages.group(1), 16) == 128 << 20  # the guest's memory, every page
    assert not (tmp_path / "run" / "share" / "core.xen").exists()


def test_a_guest_without_a_p2m_list_gets_why_and_no_core_is_opt_out(tmp_path):
    _, result = boot(tmp_path / "run", "--kernel", "probe", "--cmdline", "probe.run=fault")
    assert "had not published its p2m list" in result["core"]["error"]
    assert not (tmp_path / "run" / "core.xen").exists()
    _, result = boot(tmp_path / "quiet", "--kernel", "probe", "--cmdline", "probe.run=fault", "--no-core")
    assert result["domain"]["end"] == "crash" and "core" not in result
    assert "--no-core" in (tmp_path / "quiet" / "reproduce.sh").read_text()
