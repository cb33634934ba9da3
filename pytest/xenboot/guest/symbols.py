"""A kernel's functions by address, from an `nm -n` listing (kernel.syms in
the share, with the _stext/_etext bounds xenctx needs): for naming xenctx's
stack frames and the RIP of Xen's crash report, and, both ways (name+offset
to address too), for the symbolizer."""
import bisect
import os

from elftools.elf.constants import P_FLAGS, SH_FLAGS
from elftools.elf.elffile import ELFFile

_TEXT_BOUNDS = ("_stext", "_etext")


class Symbols:
    """The text symbols of an nm listing (its text), or none for ""."""

    def __init__(self, listing=""):
        found = [(int(fields[0], 16), fields[2] not in _TEXT_BOUNDS, fields[2])
                 for fields in map(str.split, listing.splitlines())
                 if len(fields) == 3 and fields[1] in "tTwW"]
        # Of symbols at one address the last wins a lookup: a function's own
        # name over the text bounds staged with it.
        found.sort()
        self.starts = [start for start, _, _ in found]
        self.names = [name for _, _, name in found]
        # xenctx also names addresses by section and linker symbols (_etext).
        self.functions = {n for n in self.names if not n.startswith("_")}
        # Two static functions may share a name: such a name gives no address.
        self._by_name = {}
        for start, name in zip(self.starts, self.names):
            self._by_name[name] = None if name in self._by_name else start

    @classmethod
    def read(cls, path):
        """The listing at `path`, or no symbols when there is none."""
        if not path or not os.path.exists(path):
            return cls()
        with open(path) as f:
            return cls(f.read())

    def __bool__(self):
        return bool(self.starts)

    def function(self, address):
        """(name, start) of the symbol an address of the kernel's text lies
        in, or None."""
        i = bisect.bisect_right(self.starts, address) - 1
        if i < 0 or i + 1 >= len(self.starts):
            # Past the last symbol (_etext, when staged) is not the kernel's text.
            return None
        return self.names[i], self.starts[i]

    def name(self, address):
        """symbol+0xoffset for an address inside the kernel's text, or None."""
        found = self.function(address)
        if found is None:
            return None
        name, start = found
        return f"{name}+{address - start:#x}" if address > start else name

    def address(self, name, offset=0):
        """The address of name+offset when the name is one function's and the
        address lies in the text, else None."""
        start = self._by_name.get(name)
        if start is None or not self.starts or not start + offset < self.starts[-1]:
            return None
        return start + offset


def text_range(elf_path):
    """(start, end) of the kernel's code: its executable sections, else (a
    stripped image without section headers) its executable segments, which
    in a small kernel like the probe's one RWX segment hold data and stacks
    too; None without code."""
    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        spans = [(s["sh_addr"], s["sh_addr"] + s["sh_size"]) for s in elf.iter_sections()
                 if s["sh_flags"] & SH_FLAGS.SHF_EXECINSTR and s["sh_size"]]
        spans = spans or [(s["p_vaddr"], s["p_vaddr"] + s["p_memsz"]) for s in elf.iter_segments()
                          if s["p_type"] == "PT_LOAD" and s["p_flags"] & P_FLAGS.PF_X]
    return (min(a for a, _ in spans), max(b for _, b in spans)) if spans else None


def text_bounds(elf_path):
    """`_stext`/`_etext` lines for an nm listing of the ELF at elf_path:
    xenctx names only addresses between them (Linux's names; FreeBSD and
    the probe have others), and Symbols none past the end."""
    span = text_range(elf_path)
    return f"{span[0]:016x} T _stext\n{span[1]:016x} T _etext\n" if span else ""
