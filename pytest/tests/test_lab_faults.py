"""Real lab boots made to fail in the infrastructure (issue 19): each ends
with the verdict that says so, names the step that failed, keeps dom0's
side of it in the run folder, and leaves no QEMU or xl process behind."""
import copy
import json
import os
import signal
import subprocess
import threading

import pytest

from test_lab_boot import qemu_processes_for
from xenboot.core import paths
from xenboot.core.errors import InfraError
from xenboot.guest import xl
from xenboot.host.lab import config as labconfig
from xenboot.host.lab.qemu import lab_host
from xenboot.pipeline.boot import BootRequest, boot, shared_lab_host

pytestmark = [pytest.mark.lab, pytest.mark.own_host]

XENBOOT = str(paths.REPO / "ci" / "xenboot")
PROBE = str(paths.REPO / "build" / "probe" / "probe")
DOM0_XL = "/usr/lib/xen-4.17/bin/xl"
# What every failed boot keeps of dom0 (xl.dom0_side).
DOM0_FILES = {"xl-list.txt", "xl-dmesg.txt", "dmesg.txt", "ps.txt", "messages"}


def quiet(line):
    pass


def begin_then_wait(tmp_path):
    """A spec that sees the probe begin, then waits: time to break something
    mid-boot; HANG (the probe at its prompt is silent) if nothing breaks."""
    path = tmp_path / "begin-then-wait.toml"
    path.write_text("hang = 30\n[[milestone]]\nname = \"begin\"\npattern = '^PROBE begin'\nbudget = 60\n"
                    "[[milestone]]\nname = \"never\"\npattern = '^this line never comes$'\nbudget = 60\n")
    return str(path)


def xl_processes(host, name):
    """dom0's xl processes for the domain `name` (its config is in its share)."""
    ps = host.run(["ps", "-o", "pid,args"]).text
    return [line for line in ps.splitlines() if " xl" in line and name in line]


def shell_in_dom0(host, tmp_path, name, script):
    """`script` as a dom0 file (via the share), for faults xl cannot be told to make."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return host.stage_file(str(path))


def refuse_xl(host, tmp_path, verb):
    """From now on dom0's xl refuses `verb` (xl create -F, unpause, destroy),
    as a broken toolstack would; everything else reaches the real xl."""
    host.run(["mv", DOM0_XL, DOM0_XL + ".real"])
    wrapper = shell_in_dom0(host, tmp_path, "xl", f'case " $* " in *" {verb} "*)\n'
                            f'  echo "libxl: error: xl {verb} refused by the test" >&2; exit 1;;\nesac\n'
                            f'exec {DOM0_XL}.real "$@"\n')
    host.run(["cp", wrapper, DOM0_XL])


def hide_relay(host, tmp_path):
    """The console relay cannot start: the agent's program is gone from PATH
    (the agent itself runs on)."""
    host.run(["mv", "/usr/bin/xenboot-agent", "/usr/bin/xenboot-agent.hidden"])


def stop_xenconsoled(host, tmp_path):
    host.run([shell_in_dom0(host, tmp_path, "stop", "kill $(cat /run/xenconsoled.pid)\n")])


def check_dom0_side(run, folder="dom0"):
    kept = set(os.listdir(run / folder))
    assert DOM0_FILES <= kept, kept
    assert "Domain-0" in (run / folder / "xl-list.txt").read_text()
    assert "Xen version 4.17" in (run / folder / "xl-dmesg.txt").read_text()
    assert "xenstored" in (run / folder / "messages").read_text()


@pytest.mark.parametrize("step, fault, words", [
    ("create", lambda host, tmp: refuse_xl(host, tmp, "create"),
     "create: xl create exited 1 after "),
    # libxl itself waits for xenconsoled to give the guest its console.
    ("create", stop_xenconsoled, "create: xl create exited 3 after "),
    ("console relay", hide_relay, "console relay: console relay for /dev/pts/"),
    ("unpause", lambda host, tmp: refuse_xl(host, tmp, "unpause"),
     "unpause: host command xl unpause "),
])
def test_a_failing_step_is_infra_naming_it_with_dom0_s_side_kept(tmp_path, step, fault, words):
    run = tmp_path / "run"
    with shared_lab_host(str(tmp_path), progress=quiet) as host:
        fault(host, tmp_path)
        data = boot(BootRequest(kernel=PROBE, spec="probe", out_dir=str(run)), progress=quiet,
                    shared_host=host).data
        name = data["domain"]["name"]
        assert xl_processes(host, name) == []
        # Cleaned up however far it got: no domain of the boot is left.
        assert name not in host.run(["xl", "list"]).text
    assert (data["verdict"], data["failed_step"]) == ("INFRA", step), data["message"]
    assert data["message"].startswith(words), data["message"]
    assert (run / "xl-create.log").stat().st_size > 0
    check_dom0_side(run)
    if step == "create":
        # How dom0 saw the config xl could not create from: there, readable.
        seen = (run / "dom0" / "config-seen-by-dom0.txt").read_text()
        assert "guest.cfg" in seen and f'name = "{name}"' in seen, seen
    if fault is stop_xenconsoled:
        assert "console tty: timed out" in data["message"]
        assert "xenconsoled" not in (run / "dom0" / "ps.txt").read_text()
    elif step == "create":
        assert "xl create refused by the test" in data["message"]


def test_a_failing_destroy_keeps_the_verdict_and_says_why(tmp_path):
    run = tmp_path / "run"
    with shared_lab_host(str(tmp_path), progress=quiet) as host:
        refuse_xl(host, tmp_path, "destroy")
        data = boot(BootRequest(kernel=PROBE, spec="probe", out_dir=str(run)), progress=quiet,
                    shared_host=host).data
        assert xl_processes(host, data["domain"]["name"]) == []
    # The guest did pass; the host is left with its domain, and says so.
    assert data["verdict"] == "PASS"
    assert data["domain"]["destroy_error"].startswith(f"xl destroy {data['domain']['domid']} exited 1: "
                                                      "libxl: error: xl destroy refused by the test")
    check_dom0_side(run, "dom0-after-destroy")
    assert data["domain"]["name"] in (run / "dom0-after-destroy" / "xl-list.txt").read_text()
    assert (run / "xl-destroy.log").exists()


def test_xl_create_s_first_error_is_the_message_not_its_clean_up(tmp_path):
    """libxl ends a failed create with its clean-up's words; the message
    quotes what failed first: here the disk's hotplug script."""
    run = tmp_path / "run"
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(1 << 20))
    with shared_lab_host(str(tmp_path), progress=quiet) as host:
        host.run(["cp", shell_in_dom0(host, tmp_path, "block", 'echo "block: refused by the test" >&2\nexit 1\n'),
                  "/etc/xen/scripts/block"])
        data = boot(BootRequest(kernel=PROBE, spec="probe", disk=str(disk), out_dir=str(run)),
                    progress=quiet, shared_host=host).data
        assert data["domain"]["name"] not in host.run(["xl", "list"]).text
    assert (data["verdict"], data["failed_step"]) == ("INFRA", "create"), data["message"]
    errors = [line for line in data["domain"]["xl_create"] if ": error: " in line]
    assert len(errors) > 1 and data["message"].startswith("create: xl create exited ")
    assert errors[0] in data["message"] and "block" in errors[0], errors
    # libxl had given the domain an id: the harness knew which one to clean up.
    assert data["domain"]["domid"] is not None
    check_dom0_side(run)


def test_qemu_killed_mid_boot_is_infra_and_leaves_no_qemu(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([XENBOOT, "boot", "--out", str(run), "--kernel", PROBE,
                             "--spec", begin_then_wait(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if "milestone begin" in line:
            break
    (qemu,) = qemu_processes_for(run)
    os.kill(qemu, signal.SIGKILL)
    rest = proc.stdout.read()
    assert proc.wait(120) == 3, rest
    assert qemu_processes_for(run) == []
    data = json.loads((run / "result.json").read_text())
    assert data["verdict"] == "INFRA"
    assert "QEMU killed by SIGKILL" in data["message"], data["message"]
    assert data["failed_step"] == "console"
    assert b"PROBE begin" in (run / "console.log").read_bytes()
    assert (run / "host.log").stat().st_size > 0 and (run / "xl-create.log").exists()
    # dom0 went with QEMU: what could not be had says why.
    assert "QEMU killed by SIGKILL" in json.dumps(data["dom0"])


def test_xenconsoled_killed_mid_boot_is_infra(tmp_path):
    run = tmp_path / "run"
    with shared_lab_host(str(tmp_path), progress=quiet) as host:
        def break_it(line):
            if "milestone begin" in line:
                stop_xenconsoled(host, tmp_path)

        data = boot(BootRequest(kernel=PROBE, spec=begin_then_wait(tmp_path), out_dir=str(run)),
                    progress=break_it, shared_host=host).data
        assert xl_processes(host, data["domain"]["name"]) == []
        assert data["domain"]["name"] not in host.run(["xl", "list"]).text
    assert qemu_processes_for(tmp_path) == []
    assert (data["verdict"], data["failed_step"]) == ("INFRA", "console"), data["message"]
    assert data["message"] == "the console relay in dom0 ended (exit status 0) while the domain ran"
    assert [m["name"] for m in data["milestones"]] == ["begin"]
    check_dom0_side(run)
    assert "xenconsoled" not in (run / "dom0" / "ps.txt").read_text()


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs: a run folder that fills up."""
    where = tmp_path / "small"
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)]).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=True)


def test_a_full_run_folder_is_infra_and_still_writes_the_result(small_disk, tmp_path):
    run = small_disk / "run"
    # The flood goes on until the folder is full (TIMEOUT if it never fills).
    spec = tmp_path / "never.toml"
    spec.write_text("hang = 20\n[[milestone]]\nname = \"never\"\npattern = '^this line never comes$'\n"
                    "budget = 120\n")
    proc = subprocess.run([XENBOOT, "boot", "--out", str(run), "--kernel", PROBE, "--spec", str(spec),
                           "--cmdline", "probe.run=flood"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert qemu_processes_for(run) == []
    data = json.loads((run / "result.json").read_text())
    assert data["verdict"] == "INFRA" and data["failed_step"] == "console"
    assert "the run folder cannot keep the console: console" in data["message"]
    assert "No space left on device" in data["message"]
    assert b"PROBE begin" in (run / "console.log").read_bytes()
    assert (run / "junit.xml").exists() and (run / "reproduce.sh").exists()
    # No later stage's copy takes the room the record needed (the decoded
    # console once did: "internal error", no result.json).
    assert not (run / "console.decoded.log").exists()
    assert proc.stdout.strip().splitlines()[-1].startswith("xenboot: INFRA: the run folder cannot keep")


def test_a_share_file_dom0_does_not_see_yet_is_waited_for_and_measured(tmp_path):
    """wait_visible, which runs before every xl create: a file that appears
    late is a measured wait; one that never does is INFRA naming it."""
    late = tmp_path / "late.cfg"
    with shared_lab_host(str(tmp_path), progress=quiet) as host:
        timer = threading.Timer(0.5, late.write_text, args=("name = 1\n",))
        timer.start()
        try:
            waited = host.wait_visible(str(late))
        finally:
            timer.join()
        assert waited["enoent"] >= 1 and waited["seconds"] >= 0.5, waited
        assert host.wait_visible(str(late)) is None
        with pytest.raises(InfraError, match=r"dom0 does not see /share/never\.cfg in the share: .*No such file"):
            host.wait_visible(str(tmp_path / "never.cfg"), timeout=0.5)


def test_a_console_pty_xenconsoled_writes_late_is_watched_for(tmp_path):
    """console_tty reads the key once (libxl 4.17 waits for it before xl
    reports the domain) and watches it when it is not there yet, as with a
    toolstack that does not wait; a pty that never comes is INFRA."""
    with shared_lab_host(str(tmp_path), progress=quiet) as host:
        domain = xl.Domain(host, "late-console", cfg=None)
        # No such domain: xenstored keeps the key all the same.
        domain.domid = 4242
        key = "/local/domain/4242/console/tty"
        timer = threading.Timer(0.5, host.run, args=(["xenstore-write", key, "/dev/pts/42"],))
        timer.start()
        try:
            assert domain.console_tty(timeout=30) == "/dev/pts/42"
        finally:
            timer.join()
            host.run(["xenstore-rm", "/local/domain/4242"])
        with pytest.raises(InfraError, match="xenconsoled gave domain late-console no console pty in 1 s"):
            domain.console_tty(timeout=1)


def test_a_snapshot_qemu_cannot_load_is_removed_and_the_next_start_boots_cold(tmp_path):
    """A truncated snapshot (a disk that filled, a killed save) must not
    break every later start: the failed restore says which file, removes
    it, leaves no QEMU, and the next start boots cold and saves a new one."""
    config = labconfig.load()
    raw = copy.deepcopy(config.raw)
    # A word dom0's kernel ignores gives this test a snapshot of its own.
    raw["dom0"]["cmdline"].append("xenboot_test=broken_snapshot")
    config = labconfig.LabConfig(config.path, raw)
    share = tmp_path / "share"
    share.mkdir()

    def start(name):
        return lab_host(str(tmp_path / name), str(share), lab_config=config, progress=quiet)

    (tmp_path / "cold").mkdir()
    with start("cold") as host:
        snapshot = host.snapshot
        assert not host.timings["from_snapshot"] and snapshot.is_file()
    try:
        with open(snapshot, "r+b") as f:
            f.truncate(snapshot.stat().st_size // 2)
        (tmp_path / "broken").mkdir()
        host = start("broken")
        with pytest.raises(InfraError, match=f"restoring the lab snapshot {snapshot} failed, so it is removed"):
            with host:
                pass
        assert not snapshot.exists() and not snapshot.with_suffix(".host.log").exists()
        assert qemu_processes_for(tmp_path) == []
        (tmp_path / "again").mkdir()
        with start("again") as host:
            assert not host.timings["from_snapshot"]
            assert host.run(["true"]).status == 0
        assert snapshot.is_file()
    finally:
        for path in snapshot.parent.glob(snapshot.stem + ".*"):
            path.unlink()


def test_xen_facts_without_dom0_s_sysfs_come_from_xl_info(tmp_path):
    """A dom0 kernel without /sys/hypervisor (CONFIG_XEN_SYS_HYPERVISOR=n)
    still gives Xen's version and capabilities, through `xl info`."""
    with shared_lab_host(str(tmp_path), progress=quiet) as host:
        from_sysfs = xl.xen_facts(host)
        assert from_sysfs.version.startswith("4.17") and "xen-3.0-x86_64" in from_sysfs.caps
        host.run(["mkdir", "-p", "/tmp/no-hypervisor"])
        host.run(["mount", "--bind", "/tmp/no-hypervisor", "/sys/hypervisor"])
        try:
            assert host.read_file(xl.SYSFS_FACTS[0]) is None
            assert xl.xen_facts(host) == from_sysfs
        finally:
            host.run(["umount", "/sys/hypervisor"])
