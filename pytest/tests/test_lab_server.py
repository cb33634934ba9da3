"""`xenboot lab serve`: one embedded host kept running for other processes'
boots (host/lab/server.py, remote.py), for real: each test starts its own
server on a share in its tmp_path (the suite's own servers, conftest's
LabServers, are not used here)."""
import contextlib
import json
import os
import pathlib
import signal
import subprocess

import pytest

from xenboot.core import paths
from xenboot.host.lab import config as labconfig, remote, server as labserver

pytestmark = [pytest.mark.lab, pytest.mark.own_host]

XENBOOT = str(paths.REPO / "ci" / "xenboot")
PROBE = str(paths.REPO / "build" / "probe" / "probe")


@contextlib.contextmanager
def lab_server(share, flavour):
    """A running `xenboot lab serve --share share --lab flavour`: (its process, its first line)."""
    with labserver.ServerProcess(share, flavour) as server:
        yield server.proc, server.line


def boot(out, share, *args):
    proc = subprocess.run([XENBOOT, "boot", "--out", str(out), "--kernel", PROBE, *args],
                          capture_output=True, text=True, timeout=300,
                          env=os.environ | {remote.SERVER_ENV: str(share)})
    with open(out / "result.json") as f:
        return proc, json.load(f)


def boot_under_way(out, share, cmdline):
    """A probe boot on the debian server of `share` whose guest has printed its first line."""
    proc = subprocess.Popen([XENBOOT, "boot", "--out", str(out), "--kernel", PROBE, "--lab", "debian",
                             "--cmdline", cmdline], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=os.environ | {remote.SERVER_ENV: str(share)})
    for line in proc.stdout:
        if "milestone first-output" in line:
            return proc
    raise AssertionError(f"{out}: the boot ended before its guest printed a line")


def served_dom0(share, flavour="debian"):
    """This test's own client of the server: dom0 as the server's host has it now."""
    (share / "look").mkdir(exist_ok=True)
    os.environ[remote.SERVER_ENV] = str(share)
    try:
        host = remote.attach(str(share / "look"), flavour, "pv", progress=lambda line: None)
    finally:
        del os.environ[remote.SERVER_ENV]
    assert host is not None
    return host


def server_log(share, flavour="debian"):
    return pathlib.Path(labserver.folder_for(str(share), flavour, "pv")) / "server.log"


def test_boots_in_the_share_run_on_the_server_and_keep_their_host_log(tmp_path):
    with lab_server(tmp_path, "debian") as (server, line):
        sock = labserver.folder_for(str(tmp_path), "debian", "pv") + "/" + labserver.SOCKET
        assert sock in line and f"{remote.SERVER_ENV}={tmp_path}" in line
        for name in ("one", "two"):
            proc, result = boot(tmp_path / name, tmp_path, "--spec", "probe", "--lab", "debian")
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert result["host"]["server"] == sock
            # No QEMU of its own: the server's logs are in its folder.
            assert not (tmp_path / name / "qemu.argv").exists()
            host_log = (tmp_path / name / "host.log").read_bytes()
            assert b"Xen version 4.17" in host_log
            assert f"the lab server {sock}'s host".encode() in host_log
        # reproduce.sh reruns on a fresh host, server or not.
        again = subprocess.run([str(tmp_path / "one" / "reproduce.sh"), "--out", str(tmp_path / "again")],
                               capture_output=True, text=True, timeout=300,
                               env=os.environ | {remote.SERVER_ENV: str(tmp_path)})
        assert again.returncode == 0, again.stdout + again.stderr
        assert "server" not in json.loads((tmp_path / "again" / "result.json").read_text())["host"]
        assert server.poll() is None
    assert not os.path.exists(sock), "the socket outlived its server"
    # Boots that tore their domain down left the server nothing to redo.
    assert "left without tearing down" not in server_log(tmp_path).read_text()


def test_a_boot_outside_the_share_or_of_another_lab_config_gets_its_own_host(tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    with lab_server(share, "debian"):
        proc, result = boot(tmp_path / "outside", share, "--spec", "probe", "--lab", "debian")
        assert proc.returncode == 0 and "server" not in result["host"]
        assert (tmp_path / "outside" / "qemu.argv").exists()
        changed = tmp_path / "lab.toml"
        changed.write_text((paths.CONFIGS / "lab.toml").read_text() + "\n# changed\n")
        proc, result = boot(share / "other-config", share, "--spec", "probe", "--lab", "debian",
                            "--lab-config", str(changed))
        assert proc.returncode == 0 and "server" not in result["host"]
        assert "cannot take this boot (this server runs lab_config" in proc.stderr, proc.stderr
        # No server of that flavour there: its own host, nothing said.
        proc, result = boot(share / "debug", share, "--spec", "probe", "--lab", "debug")
        assert proc.returncode == 0 and "server" not in result["host"]
        assert "lab server" not in proc.stderr


def test_a_killed_boot_leaves_no_domain_or_job_and_the_next_console_starts_clean(tmp_path):
    with lab_server(tmp_path, "debian"):
        # A flood, then the boot killed mid-flood: its relay wrote on into
        # its console port, its domain and xl jobs were still there.
        out = tmp_path / "killed"
        proc = boot_under_way(out, tmp_path, "probe.run=flood")
        proc.kill()
        proc.wait(30)
        with served_dom0(tmp_path) as dom0:
            domains = dom0.run(["xl", "list"]).stdout.decode().splitlines()[1:]
            assert [d.split()[0] for d in domains] == ["Domain-0"]
            ps = dom0.run(["ps", "-o", "args"]).stdout.decode()
            assert "xl create" not in ps and "xenboot-agent relay" not in ps, ps
            # Nor its flood's console log in dom0's RAM (18 MB of 140).
            assert dom0.run(["ls", "/var/log/xen/console"]).stdout == b""
        proc, result = boot(tmp_path / "next", tmp_path, "--spec", "probe", "--lab", "debian")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (tmp_path / "next" / "console.log").read_bytes().startswith(b"PROBE begin")
        assert b"PROBE begin" in (tmp_path / "next" / "console.xenconsoled.log").read_bytes()
        with served_dom0(tmp_path) as dom0:
            assert dom0.run(["ls", "/var/log/xen/console"]).stdout == b""
    left = [line for line in server_log(tmp_path).read_text().splitlines() if "left without tearing down" in line]
    assert len(left) == 1 and "destroyed xenboot-killed-" in left[0], left


def test_a_second_server_on_the_same_folder_is_bad_input_and_a_stale_socket_is_replaced(tmp_path):
    with lab_server(tmp_path, "debian") as (first, line):
        again = subprocess.run([XENBOOT, "lab", "serve", "--share", str(tmp_path), "--lab", "debian"],
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 2, again.stdout + again.stderr
        assert "a lab server already serves there: stop it first" in again.stderr + again.stdout
        first.kill()  # no chance to remove its socket
        first.wait(30)
    sock = labserver.folder_for(str(tmp_path), "debian", "pv") + "/" + labserver.SOCKET
    assert os.path.exists(sock)
    # A boot meanwhile: the dead socket is no server.
    proc, result = boot(tmp_path / "meanwhile", tmp_path, "--spec", "probe", "--lab", "debian")
    assert proc.returncode == 0 and "server" not in result["host"]
    assert "does not answer" in proc.stderr
    with lab_server(tmp_path, "debian"):
        proc, result = boot(tmp_path / "after", tmp_path, "--spec", "probe", "--lab", "debian")
        assert result["host"]["server"] == sock


def test_a_server_whose_qemu_dies_is_infra_and_so_is_its_boot(tmp_path):
    with lab_server(tmp_path, "debian") as (server, line):
        out = tmp_path / "run"
        proc = boot_under_way(out, tmp_path, "probe.run=hang")
        qemu = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                if "qemu-system" in _cmdline(pid) and str(tmp_path) in _cmdline(pid)]
        assert len(qemu) == 1
        os.kill(qemu[0], signal.SIGKILL)
        assert proc.wait(120) == 3
        assert server.wait(60) == 3
    log = server_log(tmp_path)
    assert "its QEMU was killed by SIGKILL" in log.read_text()
    result = json.loads((out / "result.json").read_text())
    assert result["verdict"] == "INFRA"


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_a_gdb_session_leaves_every_port_usable_for_the_boots_after_it(tmp_path):
    """A failed boot's gdb record (gdbsx relayed to a lent port), then more
    boots than the host has ports: each port was given back open."""
    with lab_server(tmp_path, "debug"):
        proc, result = boot(tmp_path / "fault", tmp_path, "--lab", "debug", "--cmdline", "probe.run=fault")
        assert result["verdict"] == "CRASH" and result["gdb"].get("backtrace"), result.get("gdb")
        for i in range(labconfig.load()["qemu"]["console_ports"] + 1):
            proc, result = boot(tmp_path / f"after-{i}", tmp_path, "--spec", "probe", "--lab", "debug")
            assert result["verdict"] == "PASS", (i, result["message"])
