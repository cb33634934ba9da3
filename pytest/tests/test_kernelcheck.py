"""Bad kernels are refused before any host starts, with one line that names
the file (issue 2: missing, not ELF, no Xen notes, 32-bit, truncated)."""
import json
import os
import struct
import subprocess

import pytest

from xenboot import kernelcheck, paths
from xenboot.errors import BadInput

XENBOOT = str(paths.REPO / "ci" / "xenboot")
PROBE = paths.REPO / "build" / "probe" / "probe"
PROBE32 = paths.REPO / "build" / "probe" / "probe-pv32pae"
PAE_MODE = 9  # xen/elfnote.h


def refuse(path):
    with pytest.raises(BadInput) as e:
        kernelcheck.check_kernel(str(path))
    assert "\n" not in e.value.message
    assert str(path) in e.value.message
    return e.value.message


def test_missing_file(tmp_path):
    assert "no such kernel file" in refuse(tmp_path / "nope")


def test_not_elf(tmp_path):
    f = tmp_path / "text"
    f.write_text("hello\n")
    assert "not an ELF file" in refuse(f)


def test_elf_without_xen_notes():
    assert "not a Xen PV kernel: no Xen ELF notes" in refuse("/bin/true")


def test_32bit_elf_without_xen_notes(tmp_path):
    src = tmp_path / "x.c"
    src.write_text("int x;\n")
    obj64 = tmp_path / "x.o"
    subprocess.run(["gcc", "-c", "-o", obj64, src], check=True)
    obj32 = tmp_path / "x32.o"
    subprocess.run(["objcopy", "-O", "elf32-i386", obj64, obj32], check=True)
    assert "not a Xen PV kernel: no Xen ELF notes" in refuse(obj32)


def test_guest_type_of_each_probe():
    assert kernelcheck.check_kernel(str(PROBE))["guest_type"] == "xen-3.0-x86_64"
    info = kernelcheck.check_kernel(str(PROBE32))
    assert info["guest_type"] == "xen-3.0-x86_32p"
    assert info["notes"]["PAE_MODE"] == "yes"


def test_32bit_without_pae_is_refused(tmp_path):
    # The probe's PAE_MODE note ("yes") made to say "no".
    note = struct.pack("<III", 4, 4, PAE_MODE) + b"Xen\0"
    image = PROBE32.read_bytes()
    assert image.count(note + b"yes\0") == 1
    nopae = tmp_path / "probe-nopae"
    nopae.write_bytes(image.replace(note + b"yes\0", note + b"no\0\0"))
    assert "32-bit PV kernel without PAE" in refuse(nopae)


def test_truncated_elf(tmp_path):
    cut = tmp_path / "probe-cut"
    with open(PROBE, "rb") as f:
        cut.write_bytes(f.read()[: os.path.getsize(PROBE) // 2])
    assert "truncated" in refuse(cut)


def test_probe_notes_and_sha():
    info = kernelcheck.check_kernel(str(PROBE))
    assert info["format"] == "elf"
    assert info["notes"]["XEN_VERSION"] == "xen-3.0"
    assert info["notes"]["LOADER"] == "generic"
    assert len(info["sha256"]) == 64


def test_debian_bzimage_is_unpacked_and_checked(debian_vmlinuz):
    info = kernelcheck.check_kernel(debian_vmlinuz)
    assert info["format"] == "bzImage"
    assert info["notes"]["GUEST_OS"] == "linux"


@pytest.mark.parametrize("make_input", ["missing", "text", "true"])
def test_boot_refuses_before_qemu_starts(tmp_path, make_input):
    kernel = {"missing": str(tmp_path / "nope"), "true": "/bin/true",
              "text": str(tmp_path / "text")}[make_input]
    (tmp_path / "text").write_text("not a kernel\n")
    out = tmp_path / "run"
    proc = subprocess.run([XENBOOT, "boot", "--kernel", kernel, "--out", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert kernel in proc.stdout.splitlines()[-1]
    assert not (out / "qemu.argv").exists() and not (out / "host.log").exists()
    result = json.loads((out / "result.json").read_text())
    assert result["verdict"] == "BAD_INPUT"
    assert (out / "junit.xml").exists() and (out / "reproduce.sh").exists()


def test_a_bare_elf_magic_is_truncated(tmp_path):
    f = tmp_path / "tiny"
    f.write_bytes(b"\x7fELF")
    assert "truncated ELF" in refuse(f)
