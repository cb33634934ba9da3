"""`make boot` without KERNEL: build, image and boot in one run folder. The
real branch cannot be fetched here; the sequencing is tested on the source
FIXTURE (a toy tree, labelled so in every result), never as FreeBSD."""
import json
import shutil
import subprocess

import pytest

from xenboot.core import paths

pytestmark = pytest.mark.lab

XENBOOT = str(paths.REPO / "ci" / "xenboot")
FIXTURE = paths.REPO / "pytest" / "tests" / "fixtures" / "freebsd-src-fixture"


def test_without_the_source_it_says_how_to_fetch_it(tmp_path):
    empty = tmp_path / "freebsd-src"
    empty.mkdir()
    proc = subprocess.run([XENBOOT, "freebsd", "--src", str(empty), "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "git submodule update --init freebsd-src" in line
    assert json.loads((tmp_path / "run" / "result.json").read_text())["verdict"] == "BAD_INPUT"


@pytest.mark.own_host  # its host starts while the kernel builds
def test_fixture_tree_goes_through_build_image_and_boot(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(FIXTURE, src)
    out = tmp_path / "run"
    proc = subprocess.run([XENBOOT, "freebsd", "--src", str(src), "--objdir", str(tmp_path / "obj"),
                           "--memory", "96", "--out", str(out)], capture_output=True, text=True, timeout=600)
    result = json.loads((out / "result.json").read_text())
    # The size decides how far a PV pmap gets: recorded, and reproduced.
    assert result["request"]["memory_mb"] == 96 and " --memory 96 " in (out / "reproduce.sh").read_text()
    assert result["fixture"] is True and result["message"].startswith("FIXTURE kernel")
    assert "FIXTURE kernel (a test tree, not FreeBSD)" in proc.stdout
    # It ran in the guest: the fixture's locore executes `hlt` once initxen
    # returns, a #GP for a PV guest with no trap table, so Xen crashes it
    # (a domain never unpaused would be HANG instead).
    assert proc.returncode == 1
    assert (result["verdict"], result["failed_at"], result["domain"]["end"]) == \
        ("CRASH", "kdb-backends", "crash"), result["message"]
    domid = result["domain"]["domid"]
    assert f"d{domid}v0 Unhandled: vec 13, #GP" in (out / "host.log").read_text(errors="replace")
    assert {"build", "image", "check", "lab", "create", "console"} <= set(result["durations"])
    assert result["request"]["cmdline"].startswith("vfs.root.mountfrom=ufs:/dev/xbd0")
    assert (out / "kernel" / "build.log").exists() and (out / "image" / "rootfs.img").exists()
    assert (out / "share" / "disk.img").exists()
    # The lab started while the kernel was built (host/lab/background.py):
    # QEMU's command line was written before the build's log was done.
    assert (out / "qemu.argv").stat().st_mtime < (out / "kernel" / "build.log").stat().st_mtime


def test_target_reaches_the_build(tmp_path):
    """`make boot TARGET=i386` builds the i386 kernel; whether it boots is
    the kernel check's and the host's to say, not asserted here."""
    dry = subprocess.run(["make", "-n", "boot", "TARGET=i386", f"FREEBSD_SRC={FIXTURE}", "MEMORY=96",
                          "INTERACTIVE=1"], cwd=paths.REPO, capture_output=True, text=True, timeout=60)
    assert "--target 'i386'" in dry.stdout and "--memory '96'" in dry.stdout and "--interactive" in dry.stdout
    out = tmp_path / "run"
    proc = subprocess.run([XENBOOT, "freebsd", "--src", str(FIXTURE), "--target", "i386",
                           "--objdir", str(tmp_path / "obj"), "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    result = json.loads((out / "result.json").read_text())
    assert result["build"]["target"] == "i386", proc.stderr
    assert f"/i386.i386{FIXTURE}/sys/XEN/kernel" in result["build"]["built"]["path"]
    # The image holds the i386 init, and the i386 spec judges the boot.
    assert result["image"]["target"] == "i386" and result["spec"]["name"] == "freebsd-xen-pv-i386"
