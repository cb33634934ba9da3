"""Symbolization: every kernel address in a run's text named from the
kernel's own symbols and DWARF, as Linux's scripts/decode_stacktrace.sh
does for an oops: the console (VERBOSE_SYSINIT's raw function pointers,
ddb's `bt`), Xen's crash report (RIP, the guest's stack), xenctx's frames
and ddb's replies.

An address gets function+offset from the kernel's symbol table (`nm -n`)
and, when the kernel carries DWARF, its file:line and the functions inlined
there from `addr2line -f -i`: `0xffffffff800df760 (cpu_startup at
kern/machdep.c:12)`; a name a kernel printed itself (`kdb_enter+0x37`) gets
its file:line, and the symbol table's own name when that differs (ddb's
table is not the kernel's: its `kassert_panic` frames). Only addresses
inside the kernel's code are named: any other number stays as it was, and
a name the kernel's table does not hold (one of Xen's) is left alone.

A return address (a ddb `bt` frame, a word of a stack dump, xenctx's
trace) is looked up one byte back, at the call, as gdb does: the return
address of a noreturn call may be the next function's first byte.
"""
import contextlib
import dataclasses
import os
import re

from elftools.elf.elffile import ELFFile

from xenboot.core import tool
from xenboot.core.text import clean
from xenboot.guest.symbols import Symbols, text_bounds, text_range

DWARF_SECTIONS = (".debug_info", ".debug_line")
# The decoded console's file in the run folder, beside console.log.
DECODED_CONSOLE = "console.decoded.log"
# How many decoded console lines result.json repeats (the file has all).
RESULT_LINES = 200

# A kernel's own name+offset (ddb, Xen naming the guest's RIP), with the
# function's size Linux and Xen add (`/0x177`) or ddb's frame pointer
# (`/frame 0x...`), noted after it; not a path's or Xen's own
# `file#function` name.
_TOKEN = re.compile(r"""
      (?<![\w.#/$])(?P<sym>[A-Za-z_][\w.$]*)\+0x(?P<off>[0-9a-fA-F]+)(?:/0x[0-9a-fA-F]+|/frame\ 0x[0-9a-fA-F]+)?(?![\w])
    | (?<![\w.])0x(?P<hex>[0-9a-fA-F]{4,16})(?![\w])
    | \[<(?P<bracket>[0-9a-fA-F]{8,16})>\]
""", re.X)
# Lines of return addresses: a ddb frame (`brelse() at brelse+0x4a8/frame
# 0x...`), a stack dump's words (Xen's guest stack, xenctx's Stack:), and
# xenctx's trace entries (`<sp>:   [<addr>] name`), whose bare words are
# named too.
_DDB_FRAME = re.compile(r"\S\(\) at \S+\+0x")
_STACK_WORDS = re.compile(r"^\s*(?:[0-9a-f]{8}|[0-9a-f]{16})(?:\s+(?:[0-9a-f]{8}|[0-9a-f]{16}))*\s*$")
_TRACE_ENTRY = re.compile(r"^[0-9a-f]{8,16}:\s+(?:\[<|[0-9a-f]{8,16}\s*$)")
# A name printed right after an address (`[<ffffffff80006bcb>] commands_run_list+0x8b`).
_FOLLOWING_NAME = re.compile(r"\s+([A-Za-z_][\w.$]*(?:\+0x[0-9a-fA-F]+)?)(?=\s|$)")
_WORD = re.compile(r"(?<![\w])([0-9a-f]{16}|[0-9a-f]{8})(?![\w])")


@dataclasses.dataclass
class Location:
    """Where one address is: `name` function+offset from the symbol table;
    `frames` (function, file:line) from DWARF, innermost first (the last is
    the function the address is in, the others inlined into it)."""
    address: int
    name: str
    frames: list

    @property
    def line(self):
        return self.frames[-1][1] if self.frames else None

    def where(self):
        """`at file:line, inlined: f at file:line` (empty without DWARF)."""
        if not self.frames:
            return ""
        text = f"at {self.frames[-1][1]}"
        inlined = [f"{fn} at {line}" for fn, line in reversed(self.frames[:-1])]
        return text + (", inlined: " + " < ".join(inlined) if inlined else "")

    def describe(self):
        return {"address": f"{self.address:#x}", "name": self.name, "line": self.line,
                "inlined": [{"function": fn, "line": line} for fn, line in self.frames[:-1]]}


def debug_file(kernel, staged=None):
    """The file to read a kernel's symbols from: the kernel.debug FreeBSD
    leaves beside a stripped kernel in its object folder, else the kernel
    (`staged`: the ELF the boot staged, a bzImage's unpacked)."""
    debug = kernel + ".debug"
    return debug if os.path.isfile(debug) else (staged or kernel)


class Symbolizer:
    """Names addresses from the ELF at `path`: its symbols (none: nothing
    is named) and, when it has them, its DWARF sections."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            elf = ELFFile(f)
            sections = {s.name for s in elf.iter_sections()}
        self.dwarf = all(s in sections for s in DWARF_SECTIONS)
        self.text = text_range(path)
        listing = tool.run(["nm", "-n", path], "reading the kernel's symbols", check=False)
        # nm says "no symbols" on stderr, and the text's bounds are no names.
        found = listing.stdout if listing.returncode == 0 and listing.stdout.strip() else ""
        self.symbols = Symbols(found and found + text_bounds(path))
        self._cache = {}

    def describe(self):
        """What the names come from, for result.json, and what is missing."""
        data = {"file": os.path.abspath(self.path), "symbols": bool(self.symbols), "dwarf": self.dwarf}
        if not self.symbols:
            data["note"] = f"{self.path} has no symbol table: addresses stay addresses"
        elif not self.dwarf:
            data["note"] = (f"symbols only: {self.path} has no DWARF ({', '.join(DWARF_SECTIONS)}), so no file:line;"
                            " build the kernel with -g (FreeBSD: makeoptions DEBUG=-g, kernel.debug)")
        return data

    def in_text(self, address):
        return self.text is not None and self.text[0] <= address < self.text[1]

    def _key(self, address, call_site):
        """(address, 1 if looked up one byte back): a word of a stack that
        is a function's first byte is a pointer to it far more often than
        the return of a noreturn call just before it."""
        found = call_site and self.symbols.function(address)
        return address, int(bool(found) and found[1] != address)

    def locate(self, address, call_site=False):
        """The Location of an address of the kernel's code, or None."""
        return self.locate_all([(address, call_site)]).get(self._key(address, call_site))

    def locate_all(self, wanted):
        """{(address, call_site): Location} for those of `wanted` in the
        kernel's code, one addr2line run for all that are new."""
        wanted = {self._key(a, c) for a, c in wanted}
        wanted = {w for w in wanted if self.in_text(w[0] - w[1]) and self.symbols.function(w[0] - w[1])}
        new = sorted(w for w in wanted if w not in self._cache)
        lines = self._addr2line(sorted({a - c for a, c in new})) if self.dwarf else {}
        for address, call_site in new:
            fn, start = self.symbols.function(address - call_site)
            name = f"{fn}+{address - start:#x}" if address > start else fn
            self._cache[address, call_site] = Location(address, name, lines.get(address - call_site, []))
        return {w: self._cache[w] for w in wanted}

    def _addr2line(self, addresses):
        """{address: [(function, file:line)]}, innermost first, of the
        addresses DWARF places on a line."""
        if not addresses:
            return {}
        proc = tool.run(["addr2line", "-f", "-i", "-a", "-e", self.path], "reading the kernel's DWARF",
                        input="".join(f"{a:#x}\n" for a in addresses))
        found, current = {}, None
        out = proc.stdout.splitlines()
        i = 0
        while i < len(out):
            if out[i].startswith("0x"):
                current = found.setdefault(int(out[i], 16), [])
                i += 1
                continue
            fn, where = out[i], out[i + 1] if i + 1 < len(out) else "??:0"
            i += 2
            line = _file_line(where)
            if line and current is not None:
                current.append((fn if fn != "??" else "?", line))
        return found

    def decode(self, text):
        """The text with every kernel address named."""
        return "\n".join(self.decode_lines(text.split("\n")))

    def decode_lines(self, lines):
        """decode() of a list of lines, as a list."""
        tokens = [(_call_sites(line), _tokens(line)) for line in lines]
        self.locate_all({(self._address(t), call) for call, found in tokens for t in found
                         if self._address(t) is not None})
        return [self._decode_line(line, call, found) for line, (call, found) in zip(lines, tokens)]

    def _address(self, token):
        kind, value, match = token
        if kind == "sym":
            return self.symbols.address(match.group("sym"), int(match.group("off"), 16))
        return value

    def _names(self, text, address):
        """Whether `text` (name or name+0xoff) is the kernel's name of the
        address: xenctx's, say, not the word after a number."""
        name, _, offset = text.partition("+0x")
        return self.symbols.address(name, int(offset or "0", 16)) == address

    def _decode_line(self, line, call_site, found):
        out, pos = [], 0
        for kind, address, match in found:
            if match.start() < pos:
                continue  # the name that followed an address, noted with it
            address = self._address((kind, address, match))
            location = self._cache.get(self._key(address, call_site)) if address is not None else None
            if location is None:
                continue
            end, given = match.end(), None
            if kind == "sym":
                given = f"{match.group('sym')}+0x{match.group('off')}"
            elif (follow := _FOLLOWING_NAME.match(line, end)) and self._names(follow.group(1), address):
                # xenctx and ddb name an address after it: the note goes after that name.
                end, given = follow.end(), follow.group(1)
            same = given is not None and _lower_name(given) == _lower_name(location.name)
            note = " ".join(filter(None, ["" if same else ("= " if given else "") + location.name,
                                          location.where()]))
            if note:
                out += [line[pos:end], f" ({note})"]
                pos = end
        return "".join(out) + line[pos:]


def _lower_name(name):
    """function+0xoff lowered for comparing spellings; a function's first
    byte is `name+0x0` as ddb prints it."""
    return (name if "+" in name else name + "+0x0").lower()


def _tokens(line):
    """(kind, address or None, match) of each address-like token of a line,
    in order."""
    found = [("sym", None, m) if m.group("sym") else ("hex", int(m.group("hex") or m.group("bracket"), 16), m)
             for m in _TOKEN.finditer(line)]
    if _STACK_WORDS.match(line) or _TRACE_ENTRY.match(line):
        taken = [t[2].span() for t in found]
        found += [("hex", int(m.group(1), 16), m) for m in _WORD.finditer(line)
                  if not any(a <= m.start() < b for a, b in taken)]
    return sorted(found, key=lambda t: t[2].start())


def _call_sites(line):
    """Whether the addresses of a line are return addresses (1) or not (0)."""
    return int(bool(_DDB_FRAME.search(line) or _STACK_WORDS.match(line) or _TRACE_ENTRY.match(line)))


def _file_line(where):
    """file:line of addr2line's answer, or None for `??:0`/`file:?`."""
    where = where.split(" (discriminator")[0]
    path, _, number = where.rpartition(":")
    if not path or path == "??" or not number.isdigit() or number == "0":
        return None
    return f"{path[2:] if path.startswith('./') else path}:{number}"


def decode_run(symbolizer, data, console_log, out):
    """result.json's `symbolized` for a run whose record is `data`: what
    the names come from, and the decoded text of each part that has
    addresses (the raw text stays where it was): the console (all of it in
    out/console.decoded.log, its changed lines here), Xen's messages and
    its RIP's Location, ddb's replies, xenctx."""
    found = symbolizer.describe()
    if not symbolizer.symbols:
        return found
    if console_log and os.path.isfile(console_log):
        with open(console_log, "rb") as f:
            raw = clean(f.read()).split("\n")
        decoded = symbolizer.decode_lines(raw)
        changed = [{"line": n, "raw": a, "decoded": b} for n, (a, b) in enumerate(zip(raw, decoded), 1) if a != b]
        if changed:
            found["console"] = {"lines_decoded": len(changed), "lines": changed[:RESULT_LINES]}
            found["console"].update(_write_decoded(os.path.join(out, DECODED_CONSOLE), decoded))
    xen = data.get("xen") or {}
    if xen.get("messages"):
        found["xen"] = symbolizer.decode_lines(xen["messages"])
    if xen.get("rip") and (rip := symbolizer.locate(int(xen["rip"], 16))):
        found["rip"] = rip.describe()
    replies = [r for r in data.get("debugger") or [] if isinstance(r, dict) and r.get("reply")]
    if replies:
        found["debugger"] = [{"command": r.get("command"), "reply": symbolizer.decode(r["reply"])}
                             for r in replies]
    xenctx = (data.get("diagnosis") or {}).get("xenctx")
    if xenctx:
        found["xenctx"] = symbolizer.decode_lines(xenctx)
    return found


def _write_decoded(path, lines):
    """{"file": its name}, or {"error": why} for a run folder that cannot
    hold it (a full disk): the copy is evidence, the room left is for
    result.json, so a partial one is removed."""
    try:
        with open(path, "w") as f:
            f.write("\n".join(lines))
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(path)
        return {"error": f"{DECODED_CONSOLE}: {e.strerror}"}
    return {"file": DECODED_CONSOLE}
