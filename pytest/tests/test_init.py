"""images/init: a static FreeBSD program built on Linux for amd64 and i386.

It cannot run here: its system calls are FreeBSD's, and Linux would read the
same numbers as other calls (4 is stat, 202 is futex), so these tests only
check what the FreeBSD kernel's ELF loader will look at, and that each
target's system call stub follows that target's convention (disassembled).
That it prints its line and powers the domain off is for a boot on the Xen
host to show.
"""
import re
import shutil
import struct
import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from xenboot.core import paths
from xenboot.guest.kernelcheck import _iter_notes

INIT_DIR = paths.IMAGES / "init"
FREEBSD_10_VERSION = 1000000
NT_FREEBSD_ABI_TAG = 1
TARGETS = {"amd64": (64, "EM_X86_64", "x86-64"), "i386": (32, "EM_386", "Intel 80386")}


def make_init(out_dir, src_dir=INIT_DIR, targets=None):
    argv = ["make", "-s", "-C", str(src_dir), f"OUT={out_dir}"]
    subprocess.run(argv + ([f"TARGETS={targets}"] if targets else []), check=True,
                   capture_output=True, text=True)
    return {t: out_dir / t / "init" for t in TARGETS}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One `make` with no TARGETS: every target."""
    return make_init(tmp_path_factory.mktemp("init"))


@pytest.fixture(params=sorted(TARGETS))
def target(request):
    return request.param


def disassemble(path, function):
    listing = subprocess.run(["llvm-objdump", "-d", "--no-show-raw-insn", str(path)],
                             capture_output=True, text=True, check=True).stdout
    body = listing.split(f"<{function}>:\n", 1)[1].split("\n\n", 1)[0]
    return [re.sub(r"\s+", " ", line.split(":", 1)[1].split("#")[0]).strip() for line in body.splitlines()]


def test_one_make_builds_every_target(built):
    assert all(path.is_file() for path in built.values())


def test_is_a_static_freebsd_executable_of_its_target(built, target):
    bits, machine, _ = TARGETS[target]
    with open(built[target], "rb") as f:
        elf = ELFFile(f)
        assert elf.elfclass == bits and elf["e_machine"] == machine
        assert elf["e_ident"]["EI_OSABI"] == "ELFOSABI_FREEBSD"
        assert elf["e_type"] == "ET_EXEC"
        kinds = [seg["p_type"] for seg in elf.iter_segments()]
        assert "PT_INTERP" not in kinds and "PT_DYNAMIC" not in kinds
        assert elf.get_section_by_name(".dynsym") is None
        symbols = elf.get_section_by_name(".symtab")
        start = symbols.get_symbol_by_name("_start")[0]
        assert elf["e_entry"] == start["st_value"]
        assert symbols.get_symbol_by_name("sys_call") and symbols.get_symbol_by_name("init_main")
        text = [seg for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD" and seg["p_flags"] & 1]
        assert any(s["p_vaddr"] <= elf["e_entry"] < s["p_vaddr"] + s["p_memsz"] for s in text)


def test_carries_the_freebsd_abi_note(built, target):
    with open(built[target], "rb") as f:
        elf = ELFFile(f)
        # Parsed raw: pyelftools would read type 1 as GNU's ABI tag.
        tag = list(_iter_notes(elf.get_section_by_name(".note.tag").data()))
        assert "PT_NOTE" in [seg["p_type"] for seg in elf.iter_segments()]
    assert tag == [(b"FreeBSD", NT_FREEBSD_ABI_TAG, struct.pack("<I", FREEBSD_10_VERSION))]


def test_readelf_and_file_call_it_freebsd(built, target):
    header = subprocess.run(["readelf", "-h", "-n", str(built[target])], capture_output=True, text=True,
                            check=True).stdout
    assert "UNIX - FreeBSD" in header and "FreeBSD" in header.split("Displaying notes")[1]
    described = subprocess.run(["file", str(built[target])], capture_output=True, text=True,
                               check=True).stdout
    bits, _, machine = TARGETS[target]
    assert f"ELF {bits}-bit LSB executable, {machine}" in described
    assert "statically linked, for FreeBSD 10.0" in described


def test_amd64_system_calls_use_syscall_and_r10(built):
    stub = disassemble(built["amd64"], "sys_call")
    assert stub[:7] == ["movq %rdi, %rax", "movq %rsi, %rdi", "movq %rdx, %rsi", "movq %rcx, %rdx",
                        "movq %r8, %r10", "movq %r9, %r8", "movq 8(%rsp), %r9"]
    assert stub[7] == "syscall" and stub[8].startswith("jae ") and stub[9] == "negq %rax"


def test_i386_system_calls_put_the_arguments_above_a_dummy_slot(built):
    stub = disassemble(built["i386"], "sys_call")
    # number into %eax, a6..a1 copied down, one more word under them, int 0x80,
    # carry set means minus the errno, the copies dropped.
    assert stub[0] == "movl 4(%esp), %eax"
    assert stub[1:7] == ["pushl 28(%esp)"] * 6
    assert stub[7:10] == ["pushl %eax", "int $128", stub[9]] and stub[9].startswith("jae ")
    assert stub[10:] == ["negl %eax", "addl $28, %esp", "retl"]
    assert "int $128" not in "\n".join(disassemble(built["i386"], "init_main"))


def test_i386_init_powers_off_and_syncs_only_when_the_kernel_environment_asks(built):
    calls = "\n".join(disassemble(built["i386"], "init_main"))
    # kenv(KENV_GET, "init_sync", ...) is system call 390; then reboot (55)
    # with RB_POWEROFF|RB_HALT (0x4008), plus RB_NOSYNC (4) unless the
    # kenv call said "1": 0x4008 + 4 * (not asked), pushed above the 55.
    kenv, reboot = calls.index("pushl $390\ncalll"), calls.index("pushl $55\ncalll")
    assert kenv < reboot
    assert "leal 16392(,%eax,4), %eax" in calls[kenv:reboot]
    assert calls[:reboot].endswith("pushl %eax\n")
    assert b"init_sync\0" in built["i386"].read_bytes()


def test_holds_its_line_and_the_console_path(built, target):
    data = built[target].read_bytes()
    for text in (b"freebsd-xen-ci init: name=", b" ostype=", b" osrelease=", b"/dev/console\0"):
        assert text in data


def test_two_builds_are_byte_identical(built, target, tmp_path):
    again = make_init(tmp_path, targets=target)[target]
    assert again.read_bytes() == built[target].read_bytes()
    assert not make_init(tmp_path, targets=target)[{"amd64": "i386", "i386": "amd64"}[target]].exists()


def test_an_unknown_target_is_refused(tmp_path):
    proc = subprocess.run(["make", "-s", "-C", str(INIT_DIR), f"OUT={tmp_path}", "TARGETS=arm64"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "TARGETS: arm64 unknown; use amd64 i386" in proc.stderr


def test_warnings_fail_the_build(tmp_path):
    shutil.copytree(INIT_DIR, tmp_path / "src")
    source = (INIT_DIR / "init.c").read_text()
    assert "    size_t n = 0;" in source
    (tmp_path / "src" / "init.c").write_text(source.replace("    size_t n = 0;", "    size_t n = 0, unused;"))
    proc = subprocess.run(["make", "-s", "-C", str(tmp_path / "src"), f"OUT={tmp_path}"],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "unused variable 'unused'" in proc.stderr and "-Werror" in proc.stderr
