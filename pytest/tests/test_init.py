"""images/init: a static FreeBSD amd64 program built on Linux.

It cannot run here: its system calls are FreeBSD's, and Linux would read the
same numbers as other calls (4 is stat, 202 is futex), so these tests only
check what the FreeBSD kernel's ELF loader will look at. That it prints its
line and powers the domain off is for a boot on the Xen host to show.
"""
import shutil
import struct
import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from xenboot import paths
from xenboot.kernelcheck import _iter_notes

INIT_DIR = paths.IMAGES / "init"
FREEBSD_10_VERSION = 1000000
NT_FREEBSD_ABI_TAG = 1


def make_init(out_dir, src_dir=INIT_DIR):
    subprocess.run(["make", "-s", "-C", str(src_dir), f"OUT={out_dir}"], check=True,
                   capture_output=True, text=True)
    return out_dir / "init"


@pytest.fixture(scope="module")
def init(tmp_path_factory):
    return make_init(tmp_path_factory.mktemp("init"))


def test_is_a_static_freebsd_amd64_executable(init):
    with open(init, "rb") as f:
        elf = ELFFile(f)
        assert elf.elfclass == 64 and elf["e_machine"] == "EM_X86_64"
        assert elf["e_ident"]["EI_OSABI"] == "ELFOSABI_FREEBSD"
        assert elf["e_type"] == "ET_EXEC"
        kinds = [seg["p_type"] for seg in elf.iter_segments()]
        assert "PT_INTERP" not in kinds and "PT_DYNAMIC" not in kinds
        assert elf.get_section_by_name(".dynsym") is None
        start = elf.get_section_by_name(".symtab").get_symbol_by_name("_start")[0]
        assert elf["e_entry"] == start["st_value"]
        text = [seg for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD" and seg["p_flags"] & 1]
        assert any(s["p_vaddr"] <= elf["e_entry"] < s["p_vaddr"] + s["p_memsz"] for s in text)


def test_carries_the_freebsd_abi_note(init):
    with open(init, "rb") as f:
        elf = ELFFile(f)
        # Parsed raw: pyelftools would read type 1 as GNU's ABI tag.
        tag = list(_iter_notes(elf.get_section_by_name(".note.tag").data()))
        assert "PT_NOTE" in [seg["p_type"] for seg in elf.iter_segments()]
    assert tag == [(b"FreeBSD", NT_FREEBSD_ABI_TAG, struct.pack("<I", FREEBSD_10_VERSION))]


def test_readelf_and_file_call_it_freebsd(init):
    header = subprocess.run(["readelf", "-h", "-n", str(init)], capture_output=True, text=True,
                            check=True).stdout
    assert "UNIX - FreeBSD" in header and "FreeBSD" in header.split("Displaying notes")[1]
    assert "for FreeBSD 10.0" in subprocess.run(["file", str(init)], capture_output=True,
                                                text=True, check=True).stdout


def test_holds_its_line_and_the_console_path(init):
    data = init.read_bytes()
    for text in (b"freebsd-xen-ci init: name=", b" ostype=", b" osrelease=", b"/dev/console\0"):
        assert text in data


def test_two_builds_are_byte_identical(init, tmp_path):
    assert make_init(tmp_path).read_bytes() == init.read_bytes()


def test_warnings_fail_the_build(tmp_path):
    shutil.copy(INIT_DIR / "Makefile", tmp_path / "Makefile")
    source = (INIT_DIR / "init.c").read_text()
    (tmp_path / "init.c").write_text(source.replace("\tsize_t n = 0;", "\tsize_t n = 0, unused;"))
    proc = subprocess.run(["make", "-s", "-C", str(tmp_path), f"OUT={tmp_path}"],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "unused variable 'unused'" in proc.stderr and "-Werror" in proc.stderr
