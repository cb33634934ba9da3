"""The nightly matrix file (configs/nightly.toml) and the rows it stands for:
kernels x specs x hosts x memory sizes, each row naming the verdict it
expects. Everything is checked here, specs loaded too, so a typo fails
before any build or boot."""
import dataclasses
import json
import os
import pathlib
import tomllib

from xenboot.build import build
from xenboot.core import inputs, paths
from xenboot.core.errors import BadInput, Verdict
from xenboot.host.hosts import HOST
from xenboot.judge import spec as specs
from xenboot.pipeline.boot import CMDLINE, MEMORY

DEFAULT_MATRIX = paths.CONFIGS / "nightly.toml"
# Row and kernel names become folder names and HTML anchors.
NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-"
# Domain names are cut at 60 characters; row names stay well inside that.
MAX_NAME = 48
KERNEL_SOURCES = {"probe": {"file"}, "lab-linux": set(), "freebsd": {"kernconf", "image", "target"},
                  "path": {"path"}, "folder": {"folder", "glob"}}
KERNEL_COMMON = {"from", "cmdline", "memory"}
ROW_KEYS = {"name", "kernel", "spec", "cmdline", "hosts", "expect", "lab", "memory"}
PROBE_FILES = ("probe", "probe-pv32pae", "probe-pvh32", "crash-at-entry")
MATRIX_FILE = inputs.File("matrix", "give a nightly matrix TOML (like configs/nightly.toml)", inputs.TEXT_MAX,
                          text=True)


@dataclasses.dataclass(frozen=True)
class Kernel:
    name: str
    source: str
    options: dict
    cmdline: str = ""
    memory: int = 128


@dataclasses.dataclass
class Row:
    id: str
    kernel: Kernel
    spec: str
    cmdline: str
    host: str
    expect: Verdict
    attempts: list = dataclasses.field(default_factory=list)
    not_run: str = None
    # The lab flavour of a lab row (lab.toml [flavours]); run_boots fills in
    # the default for the row's kind of kernel.
    lab: str = None
    # The lab CPU profile its kernel needs (lab.toml [cpu_profiles]), which
    # run_boots fills in once the kernel is checked: a PVH row's host is hvm.
    cpu_profile: str = None
    memory: int = 128

    def describe(self):
        return {"id": self.id, "kernel": self.kernel.name, "spec": self.spec,
                "cmdline": self.cmdline, "host": self.host, "expect": self.expect.value,
                "lab": self.lab, "memory": self.memory}


def _name(value, where):
    if not isinstance(value, str) or not value or set(value) - set(NAME_CHARS) or len(value) > MAX_NAME:
        raise BadInput(f"{where}: {value!r} is not a name (up to {MAX_NAME} letters, digits, _ . @ -)")
    return value


def _typed(table, key, kind, where, default=None):
    value = table.get(key, default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadInput(f"{where}: {key} must be a {kind.__name__}")
    return value


def _unknown(table, allowed, where):
    extra = sorted(set(table) - set(allowed))
    if extra:
        raise BadInput(f"{where}: unknown key(s) {', '.join(extra)}")


def _glob_problem(pattern):
    try:
        # What Path.glob refuses, it refuses before it reads a folder.
        next(pathlib.Path(os.devnull).glob(pattern), None)
    except (ValueError, NotImplementedError) as e:
        return f"is not a pattern of file names in the folder ({e})"
    return None


GLOB = inputs.Text("give a pattern of kernel file names in the folder, like '*/test-pv64-*'",
                   problem=_glob_problem)


def _load_kernel(name, table, where):
    _name(name, where)
    source_kind = table.get("from")
    if source_kind not in KERNEL_SOURCES:
        raise BadInput(f"{where}: from must be one of {', '.join(KERNEL_SOURCES)}")
    _unknown(table, KERNEL_COMMON | KERNEL_SOURCES[source_kind], where)
    options = {k: table[k] for k in KERNEL_SOURCES[source_kind] if k in table}
    if source_kind == "probe" and options.setdefault("file", "probe") not in PROBE_FILES:
        raise BadInput(f"{where}: file must be one of {', '.join(PROBE_FILES)}")
    if source_kind == "path":
        _typed(table, "path", str, where)
    if source_kind == "folder":
        _typed(table, "folder", str, where)
        options["glob"] = GLOB.check(_typed(table, "glob", str, where, "*"), f"{where}: glob")
    if source_kind == "freebsd":
        options["kernconf"] = build.KERNCONF.check(_typed(table, "kernconf", str, where, "XEN"), f"{where}: kernconf")
        options["image"] = _typed(table, "image", bool, where, False)
        options["target"] = _typed(table, "target", str, where, "amd64")
        if options["target"] not in build.TARGETS:
            raise BadInput(f"{where}: target must be one of {', '.join(build.TARGETS)}")
    memory = MEMORY(_typed(table, "memory", int, where, 128), f"{where}: memory", None)
    cmdline = CMDLINE.check(_typed(table, "cmdline", str, where, ""), f"{where}: cmdline")
    return Kernel(name, source_kind, options, cmdline, memory)


def _is_executable_elf(path):
    try:
        with open(path, "rb") as f:
            head = f.read(18)
    except (IsADirectoryError, PermissionError):
        return False
    # e_type ET_EXEC (2), in the byte order e_ident[EI_DATA] names.
    return len(head) == 18 and head[:4] == b"\x7fELF" and \
        int.from_bytes(head[16:18], "little" if head[5] == 1 else "big") == 2


def folder_kernels(kernel, where):
    """A `from = "folder"` kernel as the kernels it stands for: every ELF
    executable its glob matches in the folder, in name order, each a `path`
    kernel named <kernel>.<file>. What else a build leaves there (objects,
    xl configs, notes) is not a kernel."""
    folder = paths.REPO / kernel.options["folder"]
    if not folder.is_dir():
        raise BadInput(f"{where}: folder {folder} is not a folder; build the kernels into it or fix `folder`")
    files = sorted((p for p in folder.glob(kernel.options["glob"]) if _is_executable_elf(p)),
                   key=lambda p: p.name)
    if not files:
        raise BadInput(f"{where}: no ELF executable in {folder} matches {kernel.options['glob']!r}")
    return [dataclasses.replace(kernel, name=_name(f"{kernel.name}.{p.name}", where), source="path",
                                options={"path": str(p)}) for p in files]


def folder_matrix(folder, spec, glob="*", lab=None):
    """The matrix `xenboot nightly --kernels` runs: one row per kernel file
    in `folder`, booted with `spec` (on lab flavour `lab`), named
    <folder name>.<file>."""
    name = pathlib.Path(folder).resolve().name
    if not name or set(name) - set(NAME_CHARS) or len(name) > MAX_NAME // 2:
        name = "kernels"
    # JSON strings are TOML basic strings (same escapes).
    return (f'[kernel.{name}]\nfrom = "folder"\nfolder = {json.dumps(str(pathlib.Path(folder).resolve()))}\n'
            f'glob = {json.dumps(glob)}\n\n[[boot]]\nkernel = "{name}"\nspec = {json.dumps(spec)}\n'
            + (f'lab = {json.dumps(lab)}\n' if lab else ""))


def load_matrix(path=None, host=None):
    """The validated matrix: ({name: Kernel}, [Row]); `host` replaces every
    row's hosts. Every spec is loaded here, so a typo fails before any boot;
    a row of a folder kernel becomes one row per kernel file in it."""
    path = pathlib.Path(path or DEFAULT_MATRIX)
    try:
        raw = tomllib.loads(MATRIX_FILE.read_text(path, "matrix"))
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{path}: not a readable TOML matrix: {e}") from None
    _unknown(raw, {"hosts", "kernel", "boot"}, str(path))
    default_hosts = _typed(raw, "hosts", list, f"{path}", ["lab"])
    kernels = {name: _load_kernel(name, table, f"{path} [kernel.{name}]")
               for name, table in _typed(raw, "kernel", dict, str(path), {}).items()}
    rows = []
    # A folder is listed once however many rows name it.
    folders = {}
    for i, table in enumerate(_typed(raw, "boot", list, str(path), [])):
        where = f"{path} [[boot]] #{i + 1}"
        _unknown(table, ROW_KEYS, where)
        kernel = kernels.get(table.get("kernel"))
        if kernel is None:
            raise BadInput(f"{where}: kernel {table.get('kernel')!r} is not one of "
                           f"[kernel.*]: {', '.join(kernels) or 'none'}")
        spec_names = table.get("spec", "generic")
        spec_names = [spec_names] if isinstance(spec_names, str) else spec_names
        hosts = [host] if host else [HOST(h, f"{where}: hosts", None)
                                     for h in _typed(table, "hosts", list, where, default_hosts)]
        sizes = _memory_sweep(table, kernel, where)
        cmdline = CMDLINE.check(_typed(table, "cmdline", str, where, kernel.cmdline), f"{where}: cmdline")
        lab = _typed(table, "lab", str, where, "") or None
        base = _name(table.get("name", kernel.name), where)
        if kernel.source == "folder":
            files = folders.setdefault(kernel.name, folder_kernels(kernel, f"{path} [kernel.{kernel.name}]"))
            members = [(f"{base}.{pathlib.Path(k.options['path']).name}", k) for k in files]
        else:
            members = [(base, kernel)]
        for spec_name in spec_names:
            specs.load_spec(spec_name)
            for member, member_kernel in members:
                for host_kind in hosts:
                    for memory, expect in sizes:
                        row_id = member + (f".{spec_name}" if len(spec_names) > 1 else "") \
                            + (f".{memory}M" if len(sizes) > 1 else "") \
                            + (f"@{host_kind}" if len(hosts) > 1 else "")
                        rows.append(Row(_name(row_id, where), member_kernel, spec_name, cmdline, host_kind,
                                        expect, lab=lab if host_kind == "lab" else None, memory=memory))
    ids = [r.id for r in rows]
    if dupes := sorted({i for i in ids if ids.count(i) > 1}):
        raise BadInput(f"{path}: row names must be unique; give [[boot]] rows a name: {', '.join(dupes)}")
    return kernels, rows


def _memory_sweep(table, kernel, where):
    """[(guest MiB, expected verdict)] of a row: `memory` one size (default
    the kernel's) or a list of them, a sweep that becomes one row a size
    (named <row>.<N>M); `expect` one verdict for all, or a list, one a size."""
    memory = table.get("memory", kernel.memory)
    if memory == []:
        raise BadInput(f"{where}: memory lists no size; give guest MiB, or a list of them")
    sizes = [MEMORY(m, f"{where}: memory", None) for m in (memory if isinstance(memory, list) else [memory])]
    if len(set(sizes)) != len(sizes):
        raise BadInput(f"{where}: memory lists a size twice")
    expect = table.get("expect", "PASS")
    expects = expect if isinstance(expect, list) else [expect] * len(sizes)
    if len(expects) != len(sizes):
        raise BadInput(f"{where}: expect lists {len(expects)} verdicts for {len(sizes)} memory sizes")
    try:
        return [(m, Verdict(e)) for m, e in zip(sizes, expects)]
    except ValueError:
        raise BadInput(f"{where}: expect must be one of {', '.join(v.value for v in Verdict)}"
                       " (or a list of them, one a memory size)") from None
