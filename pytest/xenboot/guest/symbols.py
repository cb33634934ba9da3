"""A kernel's functions by address, from the `nm -n` listing boot stages in
the share (kernel.syms, with the _stext/_etext bounds xenctx needs): for
naming xenctx's stack frames and the RIP of Xen's crash report."""
import bisect
import os

_TEXT_BOUNDS = ("_stext", "_etext")


class Symbols:
    """The text symbols of an nm listing, or none when there is no listing."""

    def __init__(self, path):
        found = []
        if path and os.path.exists(path):
            with open(path) as f:
                found = [(int(fields[0], 16), fields[2] not in _TEXT_BOUNDS, fields[2])
                         for fields in map(str.split, f) if len(fields) == 3 and fields[1] in "tTwW"]
        # Of symbols at one address the last wins a lookup: a function's own
        # name over the text bounds staged with it.
        found.sort()
        self.starts = [start for start, _, _ in found]
        self.names = [name for _, _, name in found]
        # xenctx also names addresses by section and linker symbols (_etext).
        self.functions = {n for n in self.names if not n.startswith("_")}

    def name(self, address):
        """symbol+0xoffset for an address inside the kernel's text, or None."""
        i = bisect.bisect_right(self.starts, address) - 1
        if i < 0 or i + 1 >= len(self.starts):
            # Past the last symbol (_etext, when staged) is not the kernel's text.
            return None
        offset = address - self.starts[i]
        return f"{self.names[i]}+{offset:#x}" if offset else self.names[i]
