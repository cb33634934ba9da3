"""What an ELF program or kernel module needs, read from its own headers.

A bare `dpkg -x` tree has no ld.so cache and no modules.dep, so the dom0
builder resolves shared libraries from DT_NEEDED and module load order from
each module's `.modinfo` `depends=` field.
"""
import os

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from xenboot.core.errors import InfraError

LIBRARY_DIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "usr/lib")


def resolve_in_tree(tree, rel):
    """`rel`'s real file inside `tree`: an unpacked package's absolute
    symlinks (/lib64/ld-linux-x86-64.so.2 -> /lib/...) point into the tree,
    not into the machine running the harness."""
    parts, seen = rel.strip("/").split("/"), 0
    resolved = []
    while parts:
        part = parts.pop(0)
        candidate = os.path.join(tree, *resolved, part)
        if os.path.islink(candidate):
            seen += 1
            if seen > 40:
                raise InfraError(f"symlink loop at {rel} in {tree}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.strip("/").split("/") if p] + parts
        elif part == "..":
            resolved = resolved[:-1]
        elif part not in ("", "."):
            resolved.append(part)
    return os.path.join(tree, *resolved)


def _needed(path):
    with open(path, "rb") as f:
        elf = ELFFile(f)
        interp = None
        for seg in elf.iter_segments():
            if seg.header.p_type == "PT_INTERP":
                interp = seg.get_interp_name()
        needed = []
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                needed += [t.needed for t in section.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
        return interp, needed


def find_library(tree, name):
    for d in LIBRARY_DIRS:
        if os.path.exists(resolve_in_tree(tree, os.path.join(d, name))):
            return os.path.join(d, name)
    raise InfraError(f"library {name} is not in the unpacked packages under {tree}: "
                     f"add the Debian package that ships it to [packages] names in configs/lab.toml")


def library_closure(tree, programs, extra=()):
    """Relative paths of every library `programs` load, and the ELF interpreter."""
    found = {find_library(tree, name) for name in extra}
    todo = [resolve_in_tree(tree, rel) for rel in [*programs, *found]]
    interps = set()
    while todo:
        interp, needed = _needed(todo.pop())
        if interp:
            interps.add(interp.lstrip("/"))
        for name in needed:
            rel = find_library(tree, name)
            if rel not in found:
                found.add(rel)
                todo.append(resolve_in_tree(tree, rel))
    return sorted(found), sorted(interps)


def _modinfo(path):
    with open(path, "rb") as f:
        section = ELFFile(f).get_section_by_name(".modinfo")
        data = section.data() if section else b""
    info = {}
    for item in data.split(b"\0"):
        key, sep, value = item.decode(errors="replace").partition("=")
        if sep:
            info.setdefault(key, value)
    return info


def _module_key(name):
    return name.replace("-", "_")


def module_load_order(modules_dir, wanted):
    """Paths (relative to modules_dir) of `wanted` and their dependencies,
    each after everything it depends on."""
    by_name = {}
    for dirpath, _, files in os.walk(modules_dir):
        for f in files:
            if f.endswith(".ko"):
                by_name[_module_key(f[:-3])] = os.path.relpath(os.path.join(dirpath, f), modules_dir)
    order, visiting = [], set()

    def visit(name):
        key = _module_key(name)
        if key not in by_name:
            raise InfraError(f"kernel module {name} is not in {modules_dir}: "
                             f"fix [dom0] modules in configs/lab.toml")
        rel = by_name[key]
        if rel in order or key in visiting:
            return
        visiting.add(key)
        for dep in filter(None, _modinfo(os.path.join(modules_dir, rel)).get("depends", "").split(",")):
            visit(dep)
        order.append(rel)

    for name in wanted:
        visit(name)
    return order
