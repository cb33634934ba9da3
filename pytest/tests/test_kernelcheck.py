"""Bad kernels are refused before any host starts, with one line that names
the file (issue 2: missing, not ELF, no Xen notes, 32-bit, truncated)."""
import json
import os
import struct
import subprocess

import pytest

from xenboot.core import paths
from xenboot.guest import kernelcheck
from xenboot.core.errors import BadInput

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
    assert "not a Xen kernel: no Xen ELF notes, so neither PV nor PVH" in refuse("/bin/true")


def test_32bit_elf_without_xen_notes(tmp_path):
    src = tmp_path / "x.c"
    src.write_text("int x;\n")
    obj64 = tmp_path / "x.o"
    subprocess.run(["gcc", "-c", "-o", obj64, src], check=True)
    obj32 = tmp_path / "x32.o"
    subprocess.run(["objcopy", "-O", "elf32-i386", obj64, obj32], check=True)
    assert "not a Xen kernel: no Xen ELF notes, so neither PV nor PVH" in refuse(obj32)


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


def test_probe_sha256_is_the_files(tmp_path):
    info = kernelcheck.check_kernel(str(PROBE))
    listed = subprocess.run(["sha256sum", str(PROBE)], capture_output=True, text=True, check=True)
    assert info["sha256"] == listed.stdout.split()[0]
    changed = tmp_path / "probe"
    changed.write_bytes(PROBE.read_bytes() + b"\0")
    assert kernelcheck.check_kernel(str(changed))["sha256"] != info["sha256"]


# A minimal 64-bit PV kernel with the Xen notes libelf reads, each one
# settable, so that a refusal is about the one note a test changes.
TINY_KERNEL = """
#define ELFNOTE(type, desctype, descdata) \\
    .pushsection .note.Xen, "a", @note; .p2align 2; \\
    .long 4; .long 1f - 0f; .long type; .asciz "Xen"; \\
0:  desctype descdata; 1: .p2align 2; .popsection

ELFNOTE(6, .asciz, "{guest_os}")
ELFNOTE(5, .asciz, "{xen_version}")
ELFNOTE(8, .asciz, "{loader}")
ELFNOTE(3, .quad, 0xffffffff80000000)
ELFNOTE(4, .quad, 0xffffffff80000000)
ELFNOTE(1, .quad, {entry})
ELFNOTE(2, .quad, hypercall_page)
{extra_notes}

    .text
    .globl _start
_start:
    hlt
    .p2align 12
hypercall_page:
    .skip 4096
"""
GOOD_NOTES = {"guest_os": "tiny", "xen_version": "xen-3.0", "loader": "generic", "entry": "_start",
              "extra_notes": ""}
# Xen's public elfnote.h: the notes a PVH kernel adds.
FEATURES, PHYS32_ENTRY = 10, 18
# FreeBSD 13's layout: .note.Xen loaded with the text, no PT_NOTE segment.
NO_NOTE_SEGMENT = """
PHDRS { text PT_LOAD FILEHDR PHDRS; }
SECTIONS { . = 0x100000 + SIZEOF_HEADERS; .text : { *(.text) } :text .note.Xen : { *(.note.Xen) } :text }
"""


def tiny_kernel(tmp_path, text="0xffffffff80001000", script=None, **notes):
    src = tmp_path / "tiny.S"
    src.write_text(TINY_KERNEL.format(**(GOOD_NOTES | notes)))
    kernel = tmp_path / "tiny"
    link = [f"-Wl,-Ttext={text}"]
    if script:
        (tmp_path / "tiny.lds").write_text(script)
        link = [f"-Wl,-T,{tmp_path / 'tiny.lds'}"]
    subprocess.run(["gcc", "-nostdlib", "-static", *link, "-Wl,--build-id=none", "-o", kernel, src], check=True)
    return kernel


def pvh_kernel(tmp_path, features=None, entry="_start", **kwargs):
    """A tiny kernel below 4 GiB with the PVH entry note (and FEATURES)."""
    extra = f"ELFNOTE({PHYS32_ENTRY}, .long, {entry})"
    if features is not None:
        extra += f'\nELFNOTE({FEATURES}, .asciz, "{features}")'
    return tiny_kernel(tmp_path, text="0x100000", extra_notes=extra, **kwargs)


def test_tiny_kernel_with_good_notes_is_accepted(tmp_path):
    notes = kernelcheck.check_kernel(str(tiny_kernel(tmp_path)))["notes"]
    assert (notes["GUEST_OS"], notes["XEN_VERSION"], notes["LOADER"]) == ("tiny", "xen-3.0", "generic")


@pytest.mark.parametrize("note, value, complaint", [
    ("xen_version", "xen-2.0", "Xen note XEN_VERSION is 'xen-2.0', Xen's loader needs \"xen-3.0\""),
    ("loader", "elf", "Xen note LOADER is 'elf', Xen's loader needs \"generic\""),
    ("entry", "0xffffffff90000000", "entry point 0xffffffff90000000 lies outside the loaded range"),
], ids=["xen-version", "loader", "entry"])
def test_notes_libelf_refuses_are_refused(tmp_path, note, value, complaint):
    assert complaint in refuse(tiny_kernel(tmp_path, **{note: value}))


def test_a_linux_guest_needs_no_loader_note(tmp_path):
    kernel = tiny_kernel(tmp_path, guest_os="linux", loader="")
    assert kernelcheck.check_kernel(str(kernel))["notes"]["GUEST_OS"] == "linux"


@pytest.mark.parametrize("features, guest_type", [
    # FreeBSD 13 GENERIC's: it has PV notes too, and as PV it dies at once.
    ("writable_descriptor_tables|auto_translated_physmap|supervisor_mode_kernel|hvm_callback_vector", "pvh"),
    # Linux's: a PV kernel that also has a PVH entry (`!`: required).
    ("!writable_page_tables|pae_pgdir_above_4gb", "xen-3.0-x86_64"),
    ("writable_page_tables", "xen-3.0-x86_64"),
    (None, "pvh"),
], ids=["freebsd13", "linux", "writable-page-tables", "no-features"])
def test_a_kernel_with_pv_and_pvh_notes_boots_as_its_features_say(tmp_path, features, guest_type):
    info = kernelcheck.check_kernel(str(pvh_kernel(tmp_path, features)))
    assert info["guest_type"] == guest_type and info["bits"] == 64
    assert info["notes"]["PHYS32_ENTRY"] == info["notes"]["ENTRY"]


def test_pvh_needs_none_of_pvs_notes(tmp_path):
    """libelf takes a PVH kernel on its PHYS32_ENTRY note alone."""
    info = kernelcheck.check_kernel(str(pvh_kernel(tmp_path, xen_version="xen-2.0", loader="elf")))
    assert info["guest_type"] == "pvh"


def test_notes_outside_any_note_segment_are_read(tmp_path):
    kernel = pvh_kernel(tmp_path, features="hvm_callback_vector", script=NO_NOTE_SEGMENT)
    segments = subprocess.run(["readelf", "-lW", kernel], capture_output=True, text=True, check=True).stdout
    assert " LOAD " in segments and " NOTE " not in segments
    assert kernelcheck.check_kernel(str(kernel))["guest_type"] == "pvh"


def test_an_elf32_container_of_x86_64_code_boots_as_pvh(tmp_path):
    """How XTF links its hvm64 tests: objcopy -O elf32-x86-64."""
    elf32 = tmp_path / "tiny32"
    subprocess.run(["objcopy", "-O", "elf32-x86-64", pvh_kernel(tmp_path), elf32], check=True)
    assert elf32.read_bytes()[4] == 1  # ELFCLASS32
    info = kernelcheck.check_kernel(str(elf32))
    assert (info["guest_type"], info["bits"]) == ("pvh", 64)


def test_an_elf32_container_of_x86_64_code_without_pvh_entry_is_refused(tmp_path):
    elf32 = tmp_path / "tiny32"
    subprocess.run(["objcopy", "-O", "elf32-x86-64", tiny_kernel(tmp_path, text="0x100000"), elf32], check=True)
    assert "without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): Xen boots it neither as PVH nor as PV" \
        in refuse(elf32)


def test_a_pvh_entry_outside_the_image_is_refused(tmp_path):
    assert "PVH entry point (Xen note PHYS32_ENTRY) 0x9000000 lies outside the loaded physical range" \
        in refuse(pvh_kernel(tmp_path, entry="0x9000000"))
