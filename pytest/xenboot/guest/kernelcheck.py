"""Is this file a Xen kernel Xen's loader will take, booted as PV or PVH,
and of which guest type? Checked before any host starts, so bad input
costs milliseconds and says what is wrong.

The checks are the ones Xen's libelf makes (xen/common/libelf/
libelf-dominfo.c): Xen ELF notes present; for PV, XEN_VERSION "xen-3.0",
LOADER "generic" unless the guest is Linux, entry point inside the loaded
range; for PVH only the PHYS32_ENTRY note, its entry inside the loaded
physical range. The PV guest type is the one libxc's domain builder derives
(xc_dom_x86.c): an x86-64 ELF is xen-3.0-x86_64, an i386 ELF with a
PAE_MODE note other than "no" xen-3.0-x86_32p; Xen 4.x runs no non-PAE
32-bit guest. A PVH kernel may be ELF32 or ELF64 for either machine (XTF
links its 64-bit tests as ELF32 for EM_X86_64): Xen starts it in 32-bit
protected mode at PHYS32_ENTRY whatever its container. Whether the host's
Xen runs that type is for the boot to ask the host.
Note numbers come from Xen's public header, not from this file.
"""
import gzip
import hashlib
import io
import lzma
import os
import struct

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from xenboot.core import inputs
from xenboot.core.errors import BadInput
from xenboot.guest.xenheaders import constants

STRING_NOTES = {"GUEST_OS", "GUEST_VERSION", "XEN_VERSION", "LOADER", "PAE_MODE",
                "FEATURES", "BSD_SYMTAB"}
# A PV kernel with its symbols is tens of MiB (FreeBSD's GENERIC about 30).
KERNEL_FILE = inputs.File("kernel file", "give the path of a Xen PV or PVH kernel (ELF or bzImage), or probe",
                          256 * inputs.MiB)
BZIMAGE_MAGIC_OFFSET = 0x202
# e_ident[EI_CLASS] -> (header size, the machine a PV kernel of that class is for, its guest type)
ELF_CLASSES = {1: (52, "EM_386", "xen-3.0-x86_32p"), 2: (64, "EM_X86_64", "xen-3.0-x86_64")}
# The guest type of a kernel booted as PVH (an HVM container without a device model).
PVH = "pvh"
MACHINE_BITS = {"EM_386": 32, "EM_X86_64": 64}
# PAE_MODE values libelf takes as a PAE kernel (xen_elfnote_pae_mode).
PAE_MODES = {"yes", "bimodal", "extended-cr3"}
COMPRESSED = (
    (b"\x1f\x8b", lambda data: gzip.GzipFile(fileobj=io.BytesIO(data)).read()),
    (b"\xfd7zXZ\x00", lambda data: lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(data)),
)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _bzimage_payload(path, data):
    """The ELF inside a Linux bzImage (Xen's loader unpacks it the same way)."""
    if len(data) < 0x250:
        raise BadInput(f"{path}: truncated bzImage (no complete setup header)")
    setup_sects = data[0x1f1] or 4
    offset, length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sects + 1) * 512 + offset
    payload = data[start:start + length]
    for magic, unpack in COMPRESSED:
        if payload.startswith(magic):
            try:
                return unpack(payload)
            except (OSError, EOFError, lzma.LZMAError) as e:
                raise BadInput(f"{path}: bzImage payload does not decompress ({e}): truncated?") from None
    raise BadInput(f"{path}: bzImage payload compression not supported by the checker "
                   f"(gzip and xz are): rebuild with CONFIG_KERNEL_XZ or pass the vmlinux ELF")


def loadable_elf(path):
    """("elf" | "bzImage", the ELF image Xen's domain builder loads)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[BZIMAGE_MAGIC_OFFSET:BZIMAGE_MAGIC_OFFSET + 4] == b"HdrS":
        return "bzImage", _bzimage_payload(path, data)
    return "elf", data


def check_kernel(path):
    """Return a description of the kernel (for result.json) or raise BadInput."""
    return inspect_kernel(path)[0]


def inspect_kernel(path):
    """(description, the ELF Xen will load): checked once, unpacked once."""
    KERNEL_FILE.check(path, "KERNEL")
    form, data = loadable_elf(path)
    if data[:4] != b"\x7fELF":
        raise BadInput(f"{path}: not an ELF file: pass a Xen PV or PVH kernel (ELF or bzImage)")
    elf_class = data[4] if len(data) > 4 else None
    # An unknown class is checked against the larger header first: it may be truncated.
    header_size, machine, guest_type = ELF_CLASSES.get(elf_class, (64, None, None))
    if len(data) < header_size:
        raise BadInput(f"{path}: truncated ELF: {len(data)} bytes, not even an ELF header")
    if machine is None:
        raise BadInput(f"{path}: ELF class {elf_class} is neither 32- nor 64-bit: not a Xen kernel")
    try:
        elf = ELFFile(io.BytesIO(data))
        elf_machine = elf["e_machine"]
        if elf_machine not in MACHINE_BITS:
            raise BadInput(f"{path}: {elf.elfclass}-bit ELF for {elf_machine}: a Xen kernel is "
                           f"for x86-64 or i386")
        notes = _xen_notes(elf, constants("elfnote.h", "XEN_ELFNOTE_"))
        loads = [s.header for s in elf.iter_segments() if s.header.p_type == "PT_LOAD"]
    except (ELFError, struct.error, ValueError) as e:
        raise BadInput(f"{path}: truncated or corrupt ELF ({e})") from None
    if any(h.p_offset + h.p_filesz > len(data) for h in loads):
        raise BadInput(f"{path}: truncated ELF: a loadable segment runs past the end of the file")
    if not notes:
        raise BadInput(f"{path}: not a Xen kernel: no Xen ELF notes, so neither PV nor PVH "
                       f"(built without `options XEN`?)")
    if not loads:
        raise BadInput(f"{path}: no loadable segment")
    if boots_as_pvh(notes):
        _check_pvh_entry(path, notes["PHYS32_ENTRY"], loads)
        guest_type = PVH
    else:
        if elf_machine != machine:
            raise BadInput(f"{path}: {elf.elfclass}-bit ELF for {elf_machine} without a PVH entry note "
                           f"(XEN_ELFNOTE_PHYS32_ENTRY): Xen boots it neither as PVH nor as PV (a PV "
                           f"kernel is a 64-bit x86-64 or a 32-bit i386 ELF)")
        _check_notes(path, notes, loads, elf["e_entry"])
        if machine == "EM_386" and notes.get("PAE_MODE", "no") not in PAE_MODES:
            raise BadInput(f"{path}: a 32-bit PV kernel without PAE (Xen note PAE_MODE is "
                           f"{notes.get('PAE_MODE')!r}): Xen runs only PAE 32-bit PV guests, "
                           f"build it with PAE (FreeBSD: options PAE)")
    info = {"path": os.path.abspath(path), "sha256": sha256(path), "format": form,
            "guest_type": guest_type, "bits": MACHINE_BITS[elf_machine],
            "notes": {k: (v if isinstance(v, str) else hex(v)) for k, v in notes.items()}}
    return info, data


def _iter_notes(data):
    """(name, type, desc) of each note in a note section's raw bytes.

    Parsed here, not by pyelftools: it decodes descriptors by the GNU
    meaning of their type numbers, which Xen's notes reuse, and chokes."""
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, n_type = struct.unpack_from("<III", data, pos)
        name_at = pos + 12
        desc_at = name_at + (namesz + 3) // 4 * 4
        end = desc_at + (descsz + 3) // 4 * 4
        if desc_at + descsz > len(data):
            raise ValueError("note runs past the end of its section")
        yield data[name_at:name_at + namesz].rstrip(b"\0"), n_type, data[desc_at:desc_at + descsz]
        pos = end


def boots_as_pvh(notes):
    """Whether Xen should start this kernel as PVH: it has the PVH entry
    note and does not need PV's writable page tables. A kernel can carry
    both PV and PVH notes: FreeBSD 13's GENERIC does (FEATURES with
    hvm_callback_vector, no writable_page_tables), and as PV it dies at once
    (hammer_time_xen_legacy is for PVH only); Linux's say
    `!writable_page_tables` (libelf: `!` marks a feature required), a true
    PV kernel that also has a PVH entry."""
    features = {name.lstrip("!") for name in notes.get("FEATURES", "").split("|")}
    return "PHYS32_ENTRY" in notes and "writable_page_tables" not in features


def _xen_notes(elf, names):
    notes = {}
    # Both: Xen's libelf reads PT_NOTE segments, then falls back to
    # sections, and FreeBSD 13's .note.Xen lies outside any PT_NOTE segment.
    containers = [s for s in elf.iter_segments() if s.header.p_type == "PT_NOTE"] + \
                 [s for s in elf.iter_sections() if s.header.sh_type == "SHT_NOTE"]
    for container in containers:
        for owner, n_type, raw in _iter_notes(container.data()):
            if owner != b"Xen":
                continue
            name = names.get(n_type, f"NOTE_{n_type}")
            if name in STRING_NOTES:
                notes[name] = raw.split(b"\0")[0].decode(errors="replace")
            elif len(raw) in (4, 8):
                notes[name] = int.from_bytes(raw, "little")
            else:
                notes[name] = raw.hex()
    return notes


def _check_notes(path, notes, loads, e_entry):
    if notes.get("XEN_VERSION") != "xen-3.0":
        raise BadInput(f"{path}: Xen note XEN_VERSION is {notes.get('XEN_VERSION')!r}, "
                       f"Xen's loader needs \"xen-3.0\"")
    if notes.get("GUEST_OS", "").lower() != "linux" and notes.get("LOADER") != "generic":
        raise BadInput(f"{path}: Xen note LOADER is {notes.get('LOADER')!r}, "
                       f"Xen's loader needs \"generic\"")
    virt_base = notes.get("VIRT_BASE", 0)
    offset = virt_base - notes.get("PADDR_OFFSET", virt_base)
    start = min(h.p_paddr for h in loads) + offset
    end = max(h.p_paddr + h.p_memsz for h in loads) + offset
    entry = notes.get("ENTRY", e_entry)
    if isinstance(entry, int) and not start <= entry <= end:
        raise BadInput(f"{path}: entry point {entry:#x} lies outside the loaded range "
                       f"{start:#x}-{end:#x}")


def _check_pvh_entry(path, entry, loads):
    """Xen's PVH builder loads by physical address and jumps to PHYS32_ENTRY."""
    if not isinstance(entry, int):
        raise BadInput(f"{path}: Xen note PHYS32_ENTRY is not a 32-bit address ({entry})")
    start = min(h.p_paddr for h in loads)
    end = max(h.p_paddr + h.p_memsz for h in loads)
    if not start <= entry < end:
        raise BadInput(f"{path}: PVH entry point (Xen note PHYS32_ENTRY) {entry:#x} lies outside the "
                       f"loaded physical range {start:#x}-{end:#x}")
