"""Boots on the embedded Xen host, for real: Xen 4.17 and a Linux dom0 in
QEMU, xl creating the guest, the judge reading its console (issue 2)."""
import json
import os
import signal
import subprocess

import pytest

from xenboot.core import paths
from xenboot.image import image
from xenboot.guest import xl
from xenboot.pipeline.boot import BootRequest, boot as boot_on, booted, shared_lab_host
from xenboot.host.lab import config as labconfig
from xenboot.host.lab.background import BackgroundStart
from xenboot.host.lab.qemu import lab_host

pytestmark = pytest.mark.lab

XENBOOT = str(paths.REPO / "ci" / "xenboot")
PROBE = str(paths.REPO / "build" / "probe" / "probe")
CRASH_AT_ENTRY = str(paths.REPO / "build" / "probe" / "crash-at-entry")


def boot(out, *args, timeout=300):
    proc = subprocess.run([XENBOOT, "boot", "--out", str(out), *args],
                          capture_output=True, text=True, timeout=timeout)
    with open(os.path.join(out, "result.json")) as f:
        return proc, json.load(f)


def never_spec(tmp_path, hang, budget):
    """A spec waiting for a line that never comes: how a guest fails shows."""
    path = tmp_path / "never.toml"
    path.write_text(f"hang = {hang}\n[[milestone]]\nname = \"never\"\n"
                    f"pattern = '^this line never comes$'\nbudget = {budget}\n")
    return str(path)


def qemu_processes_for(out):
    """QEMU processes whose command line names this run folder."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in argv and str(out) in argv:
            found.append(int(pid))
    return found


@pytest.mark.parametrize("flavour", ["debian", "debug"])
def test_debian_linux_guest_boots_and_panics_without_root(tmp_path, debian_vmlinuz, flavour):
    # No core: xl dump-core takes 20 s of TCG for its 128 MiB (test_gdb checks the core).
    proc, result = boot(tmp_path / "run", "--kernel", debian_vmlinuz, "--cmdline", "console=hvc0",
                        "--lab", flavour, "--no-core")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert result["verdict"] == "PANIC"
    assert "VFS: Unable to mount root fs" in result["message"]
    assert [m["name"] for m in result["milestones"]] == ["first-output"]
    log = (tmp_path / "run" / "console.log").read_bytes()
    assert b"Linux version" in log and b"Kernel panic - not syncing" in log
    # Guest bytes only: nothing of Xen's or dom0's own console in it.
    assert b"(XEN)" not in log
    assert b"Xen version 4.17" in (tmp_path / "run" / "host.log").read_bytes()
    assert b"Linux version" in (tmp_path / "run" / "console.xenconsoled.log").read_bytes()
    assert result["host"]["kind"] == "lab" and result["host"]["accelerator"] == "tcg"
    assert result["host"]["xen_version"].startswith("4.17")
    lab = labconfig.load()
    assert result["host"]["flavour"] == flavour
    assert result["host"]["qemu_version"].startswith("QEMU emulator version 10.0.2 ")
    # Linux's PVH entry note does not make it PVH: it needs writable page tables.
    assert result["kernel"]["guest_type"] == "xen-3.0-x86_64"
    assert (result["host"]["cpu_profile"], result["host"]["cpu_model"]) == ("pv", lab["cpu_profiles"]["pv"])
    assert f"--lab {flavour} --lab-cpu pv" in (tmp_path / "run" / "reproduce.sh").read_text()
    assert set(result["durations"]) >= {"check", "lab", "create", "console", "teardown"}
    steps = result["create_steps"]
    assert list(steps) == ["share", "create", "console pty", "console relay", "unpause"]
    # Each figure is rounded to the millisecond: the steps' sum may pass
    # the stage's by half a millisecond for each of them and the stage.
    assert sum(steps.values()) <= result["durations"]["create"] + 0.0005 * (len(steps) + 1)
    # What `make boot` shows (progress on stderr): the guest's banner and
    # its panic, then the verdict.
    # A debug Xen lets the guest's early console (console_io) through, and
    # Linux's first words go there before its banner reaches hvc0.
    first = {"debian": "milestone first-output: [    0.000000] Linux version",
             "debug": "milestone first-output (from Xen's console): mapping kernel into physical memory"}
    assert first[flavour] in proc.stderr, proc.stderr
    assert "Kernel panic - not syncing: VFS: Unable to mount root fs" in proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("xenboot: PANIC")
    for name in ("console.jsonl", "junit.xml", "reproduce.sh"):
        assert (tmp_path / "run" / name).exists()
    assert "core" not in result and not (tmp_path / "run" / "core.xen").exists()
    assert "--no-core" in (tmp_path / "run" / "reproduce.sh").read_text()


def test_probe_passes_its_spec(tmp_path):
    proc, result = boot(tmp_path / "run", "--kernel", PROBE, "--spec", "probe")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["verdict"] == "PASS"
    assert [m["name"] for m in result["milestones"]] == ["begin", "result", "prompt"]
    log = (tmp_path / "run" / "console.log").read_text()
    for check in ("xen-version", "features", "start-info", "console-io", "linear-pt",
                  "evtchn-upcall", "timer"):
        assert f"PROBE check {check} ok" in log


@pytest.mark.parametrize("command,end", [("poweroff", "poweroff"), ("reboot", "reboot")])
def test_domain_that_ends_by_itself_passes_the_generic_spec(tmp_path, command, end):
    proc, result = boot(tmp_path / "run", "--kernel", PROBE, "--cmdline", f"probe.run={command}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["verdict"] == "PASS"
    assert result["domain"]["end"] == end


def test_guest_that_faults_at_its_first_instruction_is_crash(tmp_path):
    proc, result = boot(tmp_path / "run", "--kernel", CRASH_AT_ENTRY)
    assert proc.returncode == 1
    assert result["verdict"] == "CRASH"
    assert result["domain"]["end"] == "crash"
    assert (tmp_path / "run" / "console.log").exists()


def test_silent_hang_is_hang_with_registers_and_stack(tmp_path):
    spec = never_spec(tmp_path, hang=5, budget=60)
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(1 << 20))
    proc, result = boot(tmp_path / "run", "--kernel", PROBE, "--spec", spec, "--cmdline", "probe.run=hang",
                        "--disk", str(disk))
    assert proc.returncode == 1
    assert result["verdict"] == "HANG"
    assert result["failed_at"] == "never"
    # xenctx resolved the guest's RIP with the kernel's own symbols.
    assert result["diagnosis"]["frames"][0].startswith("probe_hang_loop+")
    assert any(f.startswith("probe_main+") for f in result["diagnosis"]["frames"])
    assert "where the guest was (xenctx): probe_hang_loop+" in proc.stdout
    assert (tmp_path / "run" / "diagnosis" / "xl-dmesg.txt").read_text().strip()
    # Xen's 'q' and 'e' dumps, read: the probe spins (not blocked), and its
    # console port, pending or not, is nothing it lost.
    events = result["diagnosis"]["events"]
    assert [v["vcpu"] for v in events["vcpus"]] == [0] and events["lost"] == [], events
    assert "console" in [p["name"] for p in events["ports"]], events
    assert b"\nPROBE result " in (tmp_path / "run" / "console.log").read_bytes()
    # dom0's side of a stalled guest includes its devices' backends: here
    # blkback waiting for a frontend the probe never starts (InitWait).
    backends = (tmp_path / "run" / "dom0" / "xenstore-backends.txt").read_text()
    assert f'/local/domain/0/backend/vbd/{result["domain"]["domid"]}/51712/state = "2"' in backends, backends


def test_flood_is_capped_and_still_judged(tmp_path):
    # A line far past the cap must still be matched, and then the flood must
    # still count as output: silence for `hang` would be HANG before the
    # budget ends (TIMEOUT).
    cap = 64 * 1024
    past_cap = 4 * cap // len("flood 0000000000 " + "x" * 63)
    spec = tmp_path / "flood.toml"
    spec.write_text(f"hang = 6\n[[milestone]]\nname = \"past-the-cap\"\n"
                    f"pattern = '^flood {past_cap:010d} '\nbudget = 30\n"
                    f"[[milestone]]\nname = \"never\"\npattern = '^this line never comes$'\nbudget = 10\n")
    proc, result = boot(tmp_path / "run", "--kernel", PROBE, "--spec", str(spec),
                        "--cmdline", "probe.run=flood", "--log-cap", str(cap))
    assert proc.returncode == 1
    assert (result["verdict"], result["failed_at"]) == ("TIMEOUT", "never"), result["message"]
    assert [m["name"] for m in result["milestones"]] == ["past-the-cap"]
    assert result["log_truncated"] is True
    log = (tmp_path / "run" / "console.log").read_bytes()
    assert cap <= len(log) <= cap + 4096
    assert f"flood {past_cap:010d} ".encode() not in log


@pytest.mark.own_host
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_leaves_no_qemu_and_keeps_the_logs(tmp_path, signum):
    out = tmp_path / "run"
    # A Ctrl-C reaches it even when this test runs in a background job,
    # whose children inherit SIGINT ignored.
    proc = subprocess.Popen([XENBOOT, "boot", "--out", str(out), "--kernel", PROBE,
                             "--cmdline", "probe.run=hang"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:  # the guest has printed its first line
        if "milestone first-output" in line:
            break
    assert qemu_processes_for(out)
    proc.send_signal(signum)
    assert proc.wait(60) == 3
    assert qemu_processes_for(out) == []
    result = json.loads((out / "result.json").read_text())
    assert result["verdict"] == "INFRA" and signal.Signals(signum).name in result["message"]
    assert (out / "host.log").stat().st_size > 0
    assert b"PROBE begin" in (out / "console.log").read_bytes()


def test_two_boots_at_once_both_pass_in_their_own_folders(tmp_path):
    procs = [subprocess.Popen([XENBOOT, "boot", "--out", str(tmp_path / name), "--kernel", PROBE,
                               "--spec", "probe"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for name in ("a", "b")]
    assert [p.wait(300) for p in procs] == [0, 0]
    for name in ("a", "b"):
        result = json.loads((tmp_path / name / "result.json").read_text())
        assert result["verdict"] == "PASS"
        assert b"\nPROBE result " in (tmp_path / name / "console.log").read_bytes()


def test_probe_on_debug_xen_may_use_console_io_and_32bit_pv(tmp_path):
    req = BootRequest(kernel=PROBE, spec="probe", lab="debug", out_dir=str(tmp_path / "run"))
    with booted(req, progress=lambda line: None) as target:
        assert target.verdict.value == "PASS", target.message
        caps = target.host.xen_facts.caps
    assert "xen-3.0-x86_32p" in caps and "xen-3.0-x86_64" in caps
    log = (tmp_path / "run" / "console.log").read_text()
    assert "PROBE check console-io ok permitted" in log
    assert "xen-3.0-x86_32p" in next(line for line in log.splitlines() if "check xen-version" in line)


@pytest.mark.parametrize("args, words", [
    (["--lab", "nope"], "LAB=nope: no such lab flavour in "),
    (["--lab", "debug", "--host", "xl"], "LAB=debug picks the embedded host's Xen: HOST=xl runs this machine's"),
    (["--lab-cpu", "nope"], "LAB_CPU=nope: no such lab CPU profile in "),
    (["--lab-cpu", "hvm", "--host", "xl"], "LAB_CPU=hvm picks the embedded host's CPU: HOST=xl runs this machine's"),
])
def test_bad_flavour_is_bad_input_before_any_host(tmp_path, args, words):
    proc, result = boot(tmp_path / "run", "--kernel", PROBE, *args)
    assert proc.returncode == 2
    assert result["verdict"] == "BAD_INPUT" and words in result["message"]
    assert not (tmp_path / "run" / "host.log").exists()


def test_release_xen_has_no_32bit_pv(tmp_path):
    os.makedirs(tmp_path / "share")
    with lab_host(str(tmp_path), str(tmp_path / "share"), flavour="debian") as host:
        caps = host.xen_facts.caps
    assert "xen-3.0-x86_64" in caps and "xen-3.0-x86_32p" not in caps


@pytest.mark.own_host
def test_own_qemu_binary_runs_the_lab(tmp_path, monkeypatch):
    """XENBOOT_QEMU names a QEMU of one's own: Debian 12's 7.2 here."""
    monkeypatch.setenv("XENBOOT_QEMU", "/usr/bin/qemu-system-x86_64")
    proc, result = boot(tmp_path / "run", "--kernel", PROBE, "--spec", "probe")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["host"]["qemu_version"].startswith("QEMU emulator version 7.2")
    assert " -L " not in (tmp_path / "run" / "qemu.argv").read_text()


@pytest.mark.own_host
@pytest.mark.parametrize("threads", labconfig.TCG_THREADS)
def test_tcg_threads_are_lab_toml_s_or_the_variable_s(tmp_path, monkeypatch, threads):
    """`make test`'s workers run several hosts at once and set single; the
    run says which it had, and QEMU was given it."""
    monkeypatch.setenv(labconfig.TCG_THREADS_ENV, threads)
    proc, result = boot(tmp_path / "run", "--kernel", PROBE, "--spec", "probe")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["host"]["tcg_threads"] == threads
    assert f" -accel tcg,thread={threads} " in (tmp_path / "run" / "qemu.argv").read_text()


@pytest.mark.own_host
def test_missing_qemu_is_infra_saying_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("XENBOOT_QEMU", "qemu-system-x86_64-not-installed")
    proc, result = boot(tmp_path / "run", "--kernel", PROBE)
    assert proc.returncode == 3
    assert result["verdict"] == "INFRA"
    assert "QEMU qemu-system-x86_64-not-installed not found" in result["message"]
    assert "XENBOOT_QEMU" in result["message"]


def test_disk_image_attaches_as_xvda_through_blkback(tmp_path):
    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * (4 << 20))
    req = BootRequest(kernel=PROBE, spec="probe", disk=str(image), out_dir=str(tmp_path / "run"))
    with booted(req, progress=lambda line: None) as target:
        assert target.verdict.value == "PASS", target.message
        blocks = target.host.run(["xl", "block-list", str(target.domain.domid)]).text
        # Vdev 51712 is xvda; the backend is set up and waits for a frontend.
        assert "51712" in blocks.split("\n", 1)[1]
        loops = target.host.run(["losetup", "-a"]).text
        assert "disk.img" in loops
        # What dom0's block hotplug program (images/dom0/block.c) told blkback.
        backend = f"/local/domain/0/backend/vbd/{target.domain.domid}/51712"
        device = target.host.run(["xenstore-read", f"{backend}/physical-device-path",
                                  f"{backend}/physical-device", f"{backend}/hotplug-status"]).text.split()
        loop = next(line.split(":")[0] for line in loops.splitlines() if "disk.img" in line)
        assert device[0] == loop and device[2] == "connected"
        numbers = target.host.run(["stat", "-c", "%t:%T", loop]).text.strip()
        assert device[1] == numbers


def test_a_disk_s_loop_device_is_freed_with_its_domain(tmp_path):
    """The hotplug program's `remove`: a shared host runs guest after guest."""
    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * (1 << 20))
    with shared_lab_host(str(tmp_path), progress=lambda line: None) as host:
        data = boot_on(BootRequest(kernel=PROBE, spec="probe", disk=str(image), out_dir=str(tmp_path / "run")),
                       progress=lambda line: None, shared_host=host).data
        assert data["verdict"] == "PASS", data["message"]
        assert "disk.img" not in host.run(["losetup", "-a"]).text


DOM0_REPO = "/hostroot" + str(paths.REPO)


def boot_in_dom0(host, *args):
    """`xenboot boot --host xl ARGS` run by the harness itself inside the
    embedded host's dom0 (host_root: this machine's / shared read-only)."""
    libs = "/hostroot/lib/x86_64-linux-gnu:/hostroot/usr/lib/x86_64-linux-gnu"
    return host.run(["env", f"LD_LIBRARY_PATH={libs}", "PYTHONHOME=/hostroot/usr",
                     f"PYTHONPATH={DOM0_REPO}/pytest", "XENBOOT_XEN_INCLUDE=/hostroot/usr/include/xen",
                     "PATH=/usr/lib/xen-4.17/bin:/usr/sbin:/usr/bin:/sbin:/bin:/hostroot/usr/bin",
                     "/hostroot/usr/bin/python3", "-m", "xenboot", "boot", "--host", "xl", *args],
                    timeout=300, check=False)


def test_host_xl_runs_the_same_xl_flow_on_a_real_dom0(tmp_path):
    """HOST=xl for real: the harness itself runs inside the embedded host's
    dom0, where xl is local."""
    os.makedirs(tmp_path / "share")
    with lab_host(str(tmp_path), str(tmp_path / "share"), host_root=True) as host:
        job = boot_in_dom0(host, "--kernel", f"{DOM0_REPO}/build/probe/probe", "--spec", "probe",
                           "--out", "/tmp/xl-run")
        assert job.status == 0, job.text
        result = json.loads(host.read_file("/tmp/xl-run/result.json"))
        console = host.read_file("/tmp/xl-run/console.log")
    assert result["verdict"] == "PASS"
    assert result["host"]["kind"] == "xl"
    assert b"\nPROBE result " in console


def test_writes_to_the_disk_backend_land_in_the_run_copy_not_the_image(tmp_path):
    """Written in dom0 to the loop device blkback serves xvda from (the guest
    itself writes nothing here): the run copy changes, the input image not."""
    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * (1 << 20))
    req = BootRequest(kernel=PROBE, spec="probe", disk=str(image), out_dir=str(tmp_path / "run"))
    with booted(req, progress=lambda line: None) as target:
        loop = next(line.split(":")[0] for line in target.host.run(["losetup", "-a"]).text.splitlines()
                    if "disk.img" in line)
        target.host.run(["sh", "-c", f"echo written-through-blkback-loop | dd of={loop} conv=fsync"])
    assert b"written-through-blkback-loop" in (tmp_path / "run" / "share" / "disk.img").read_bytes()
    assert image.read_bytes() == b"\0" * (1 << 20)


def test_dom0_linux_mounts_the_root_image_and_lists_it(tmp_path):
    """An independent reader for `make image`: Linux's ufs driver."""
    share = tmp_path / "share"
    built = image.make_image(share / "image")
    with lab_host(str(tmp_path), str(share)) as host:
        listing = host.run(["sh", "-c",
                            "mkdir -p /mnt/root && loop=$(losetup -f) && "
                            "losetup -r $loop /share/image/rootfs.img && "
                            "mount -t ufs -o ro,ufstype=44bsd $loop /mnt/root && "
                            "ls -ln /mnt/root /mnt/root/sbin && cat /mnt/root/etc/fstab && "
                            "sha256sum /mnt/root/sbin/init"]).text
    init = next(e for e in built["entries"] if e["path"] == "/sbin/init")
    assert init["sha256"] in listing
    for name in ("dev", "etc", "sbin"):
        assert f" {name}\n" in listing


def test_reproduce_sh_reruns_the_same_boot_and_refuses_changed_inputs(tmp_path):
    kernel = tmp_path / "probe"
    kernel.write_bytes(open(PROBE, "rb").read())
    proc, first = boot(tmp_path / "run", "--kernel", str(kernel), "--spec", "probe")
    assert proc.returncode == 0
    again = subprocess.run([str(tmp_path / "run" / "reproduce.sh"), "--out", str(tmp_path / "again")],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    second = json.loads((tmp_path / "again" / "result.json").read_text())
    assert [m["name"] for m in second["milestones"]] == [m["name"] for m in first["milestones"]]
    assert second["kernel"]["sha256"] == first["kernel"]["sha256"]
    kernel.write_bytes(kernel.read_bytes() + b"\0")
    refused = subprocess.run([str(tmp_path / "run" / "reproduce.sh")], capture_output=True, text=True)
    assert refused.returncode == 2
    assert f"reproduce: {kernel} changed since this run" in refused.stderr


def test_make_passes_a_hostile_command_line_verbatim(tmp_path):
    planted = tmp_path / "planted"
    cmdline = f"probe.run=echo it's `touch {planted}` \"quoted\""
    # The probe runs probe.run's commands after its prompt, where the probe
    # spec ends: this one waits for the echo too.
    spec = tmp_path / "echoed.toml"
    spec.write_text('include = "probe"\n[[milestone]]\nname = "echoed"\npattern = "^it\'s `touch "\nbudget = 30\n')
    proc = subprocess.run(["make", "--no-print-directory", "boot", "KERNEL=probe", f"SPEC={spec}",
                           f"CMDLINE={cmdline}", f"OUT={tmp_path / 'run'}"],
                          cwd=paths.REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not planted.exists()
    assert json.loads((tmp_path / "run" / "result.json").read_text())["milestones"][-1]["name"] == "echoed"
    assert f"\n{cmdline.split('echo ', 1)[1]}\r\n".encode() in (tmp_path / "run" / "console.log").read_bytes()


@pytest.mark.parametrize("flavour", ["debian", "debug"])
def test_the_guest_memory_the_nightly_plans_with_is_free_in_the_lab_s_xen(tmp_path, flavour):
    """lab.toml's guest_memory_mb, what the nightly packs a host's guests
    into, is no more than the host's Xen has free with dom0 running."""
    with shared_lab_host(str(tmp_path), progress=lambda line: None, flavour=flavour) as host:
        free = int(xl.xl_info(host)["free_memory"])
    assert labconfig.load()["qemu"]["guest_memory_mb"] <= free


def test_an_early_host_of_another_cpu_profile_is_stopped_and_the_boot_starts_its_own(tmp_path):
    """The FreeBSD pipeline starts the lab for a PV kernel while it builds;
    a kernel that needs the other CPU profile gets a host of its own, and
    the early one is gone before that starts (both would use the run folder)."""
    out = tmp_path / "run"
    running = []

    def count_qemus(line):
        if "running; judging" in line:
            running.append(len(qemu_processes_for(out)))

    with BackgroundStart(str(out), str(out / "share"), progress=count_qemus, cpu_profile="hvm") as early:
        data = boot_on(BootRequest(kernel=PROBE, spec="probe", out_dir=str(out)), progress=count_qemus,
                       early_host=early).data
    assert data["verdict"] == "PASS", data["message"]
    assert data["host"]["cpu_profile"] == labconfig.PV_PROFILE and running == [1]
    assert qemu_processes_for(out) == []


def test_an_early_host_that_fails_to_start_is_the_boot_s_infra(tmp_path, monkeypatch):
    monkeypatch.setenv("XENBOOT_QEMU", "qemu-system-x86_64-not-installed")
    out = tmp_path / "run"
    with BackgroundStart(str(out), str(out / "share"), progress=lambda line: None) as early:
        data = boot_on(BootRequest(kernel=PROBE, spec="probe", out_dir=str(out)), progress=lambda line: None,
                       early_host=early).data
    assert data["verdict"] == "INFRA"
    assert "QEMU qemu-system-x86_64-not-installed not found" in data["message"]
    # Raised in the boot's lab stage, where its own start would have failed.
    assert "lab" in data["durations"] and "create" not in data["durations"]
