"""PVH guests (issue 24): the tiny-pvh fixture kernel, built here from C
and Xen's public headers, checked, refused where it cannot boot, and booted
on the lab's hvm CPU profile for real."""
import json
import re
import os
import subprocess

import pytest

from xenboot.core import paths
from xenboot.guest import kernelcheck
from xenboot.host.lab import config as labconfig
from xenboot.pipeline.boot import BootRequest, boot as boot_on, shared_lab_host

XENBOOT = str(paths.REPO / "ci" / "xenboot")
FIXTURE = paths.REPO / "pytest" / "tests" / "fixtures" / "tiny-pvh"
SPEC = str(FIXTURE / "tiny-pvh.toml")
# Freestanding 32-bit code without paging: no PIC, no stack protector, no
# CET notes; the Xen headers' newest interface.
CFLAGS = ["-m32", "-O2", "-Wall", "-Wextra", "-Werror", "-ffreestanding", "-fno-pic", "-fno-pie",
          "-fno-stack-protector", "-fcf-protection=none", "-nostdlib", "-static",
          "-D__XEN_INTERFACE_VERSION__=__XEN_LATEST_INTERFACE_VERSION__"]
LDFLAGS = [f"-Wl,-T,{FIXTURE / 'tiny-pvh.lds'}", "-Wl,--build-id=none", "-Wl,--no-warn-rwx-segments"]


@pytest.fixture(scope="module")
def tiny_pvh(tmp_path_factory):
    kernel = tmp_path_factory.mktemp("tiny-pvh") / "tiny-pvh"
    subprocess.run(["gcc", *CFLAGS, *LDFLAGS, "-o", str(kernel), str(FIXTURE / "tiny-pvh.c")], check=True)
    return str(kernel)


def boot(out, *args, timeout=300):
    proc = subprocess.run([XENBOOT, "boot", "--out", str(out), *args], capture_output=True, text=True,
                          timeout=timeout)
    with open(os.path.join(out, "result.json")) as f:
        return proc, json.load(f)


def test_tiny_pvh_is_a_32bit_pvh_kernel(tiny_pvh):
    info = kernelcheck.check_kernel(tiny_pvh)
    assert (info["guest_type"], info["bits"]) == ("pvh", 32)
    entry = subprocess.run(["nm", tiny_pvh], capture_output=True, text=True, check=True).stdout
    assert f"{int(info['notes']['PHYS32_ENTRY'], 16):08x} T _start" in entry


def test_a_pvh_kernel_on_the_pv_cpu_is_bad_input_before_any_host(tmp_path, tiny_pvh):
    proc, result = boot(tmp_path / "run", "--kernel", tiny_pvh, "--lab-cpu", "pv")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert result["verdict"] == "BAD_INPUT"
    assert result["message"].startswith(f"LAB_CPU=pv: {tiny_pvh} is a PVH kernel")
    assert "use LAB_CPU=hvm" in result["message"]
    assert not (tmp_path / "run" / "host.log").exists()


@pytest.mark.lab
def test_tiny_pvh_boots_as_pvh_on_the_hvm_cpu(tmp_path, tiny_pvh):
    proc, result = boot(tmp_path / "run", "--kernel", tiny_pvh, "--spec", SPEC)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["verdict"] == "PASS", result["message"]
    assert [m["name"] for m in result["milestones"]] == ["hello", "poweroff"]
    assert result["domain"]["end"] == "poweroff"
    lab = labconfig.load()
    assert (result["host"]["cpu_profile"], result["host"]["cpu_model"]) == ("hvm", lab["cpu_profiles"]["hvm"])
    assert 'type = "pvh"' in (tmp_path / "run" / "share" / "guest.cfg").read_text()
    assert "--lab-cpu hvm" in (tmp_path / "run" / "reproduce.sh").read_text()
    assert "tiny-pvh: hello from a PVH guest" in (tmp_path / "run" / "console.log").read_text()


@pytest.mark.lab
def test_a_pvh_kernel_given_a_shared_pv_host_is_bad_input_and_the_host_is_left_as_it_was(tmp_path, tiny_pvh):
    """nightly and bench share hosts per CPU profile; a boot handed one of
    the wrong profile says so instead of booting where it cannot."""
    with shared_lab_host(str(tmp_path), progress=lambda line: None) as host:
        data = boot_on(BootRequest(kernel=tiny_pvh, spec=SPEC, out_dir=str(tmp_path / "run")),
                       progress=lambda line: None, shared_host=host).data
        assert host.run(["xl", "list"]).text.count("\n") == 2  # the header and Domain-0
    assert data["verdict"] == "BAD_INPUT", data["message"]
    assert data["message"] == (f"{tiny_pvh}: this boot needs the lab CPU profile hvm, but the shared host it was "
                               "given runs pv: boot it on a host of hvm (or on its own host)")


@pytest.mark.lab
@pytest.mark.xtf_tree
def test_xtf_hvm64_example_passes_as_pvh(tmp_path, xtf_tree):
    """XTF links hvm64 tests as ELF32 for x86-64, with only the PVH entry note."""
    kernel = str(xtf_tree / "tests" / "example" / "test-hvm64-example")
    proc, result = boot(tmp_path / "run", "--kernel", kernel, "--spec", "xtf")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [m["name"] for m in result["milestones"]] == ["banner", "result"]
    assert result["kernel"]["guest_type"] == "pvh" and result["host"]["cpu_profile"] == "hvm"


# -- the probe's PVH build (images/probe, guest type pvh32) ------------------

PROBE_PVH = str(paths.REPO / "build" / "probe" / "probe-pvh32")
PVH_CHECKS = ["xen-version", "features", "hvm-start-info", "console-ring", "console-io",
              "evtchn-upcall", "timer"]


def test_the_pvh_probe_is_a_32bit_pvh_kernel():
    info = kernelcheck.check_kernel(PROBE_PVH)
    assert (info["guest_type"], info["bits"]) == ("pvh", 32)


# The probe spec's milestones, then the domain's own poweroff (the probe spec
# stops at the prompt, before probe.run's poweroff ends the domain).
PROBE_THEN_POWEROFF = """
description = "probe spec, then the probe.run poweroff"
hang = 30
[[milestone]]
name = "begin"
pattern = '^PROBE begin freebsd-xen-ci probe '
budget = 60
[[milestone]]
name = "result"
pattern = '^PROBE result SUCCESS$'
budget = 60
[[milestone]]
name = "poweroff"
end = ["poweroff"]
budget = 30
"""


@pytest.mark.lab
def test_the_pvh_probe_passes_the_probe_spec(tmp_path):
    proc, result = boot(tmp_path / "run", "--kernel", PROBE_PVH, "--spec", "probe")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["verdict"] == "PASS", result["message"]
    assert [m["name"] for m in result["milestones"]] == ["begin", "result", "prompt"]
    assert result["kernel"]["guest_type"] == "pvh" and result["host"]["cpu_profile"] == "hvm"
    console = (tmp_path / "run" / "console.log").read_text(errors="replace")
    checks = re.findall(r"^PROBE check (\S+) (ok|fail|skip) ", console, re.M)
    assert checks == [(name, "ok") for name in PVH_CHECKS], checks


@pytest.mark.lab
def test_the_pvh_probe_runs_its_commands_and_powers_off(tmp_path):
    spec = tmp_path / "probe-poweroff.toml"
    spec.write_text(PROBE_THEN_POWEROFF)
    proc, result = boot(tmp_path / "run", "--kernel", PROBE_PVH, "--spec", str(spec),
                        "--cmdline", "probe.run=info,echo pvh says hi,badpte,poweroff")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["verdict"] == "PASS", result["message"]
    assert result["domain"]["end"] == "poweroff"
    console = (tmp_path / "run" / "console.log").read_text(errors="replace")
    # The command line came through hvm_start_info into the probe's start_info.
    assert 'cmdline "probe.run=info,echo pvh says hi,badpte,poweroff"' in console
    assert re.search(r"^info nr_pages \d+\r?$", console, re.M)
    assert re.search(r"^pvh says hi\r?$", console, re.M)
    assert "badpte: a PVH guest has no PV page tables" in console
