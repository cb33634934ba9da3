"""`xenboot nightly`: the whole pipeline over a matrix of boots, into one run folder.

Stages, timed in summary.json `stages`:
  source   is freebsd-src there, and at the pinned commit?
  kernels  every kernel the matrix names: the probe built, Debian's Linux
           taken from the lab cache, FreeBSD built from the source (and its
           root image made); without the source its rows are "not run"
  boots    the rows, up to --parallel at once, several guests to one
           embedded host; a boot that ends INFRA is tried again on a fresh
           host, at most twice, and stays flagged; guest verdicts are final
  report   summary.json, junit.xml (one suite per row), report.html

The run folder:
  summary.json junit.xml report.html
  kernels/<kernel>/          result.json (+ build.log, image/) of each kernel
  boots/<row>-<attempt>/     each boot's own folder (console.log, result.json,
                             junit.xml, reproduce.sh, host.log)
  hosts/<n>/                 each embedded host's logs (host.log, qemu.*)
The exit status is the contract's: 0 when every row that ran ended as the
matrix expects, else 3 if some boot stayed INFRA, 4 if a kernel did not
build, 2 for bad input, 1 when a guest did not do what was expected.
"""
import contextlib
import dataclasses
import datetime
import functools
import json
import math
import os
import pathlib
import shutil
import threading
import time
import tomllib
import xml.etree.ElementTree as ET
from collections import deque

from xenboot.build import build, source
from xenboot.core import inputs, paths, result, tool
from xenboot.guest import kernelcheck
from xenboot.judge import spec as specs
from xenboot.pipeline import freebsd
from xenboot.report import report
from xenboot.pipeline.boot import CMDLINE, MEMORY, BootRequest, Terminated, sigterm_raises, boot
from xenboot.host.hosts import HOST
from xenboot.core.errors import (EXIT_GUEST_FAILED, EXIT_PASS, BadInput, BuildFailed, HarnessError,
                            InfraError, Verdict)
from xenboot.host.lab import cache as labcache, config as labconfig
from xenboot.host.lab.qemu import lab_host
from xenboot.console.progress import Progress

DEFAULT_MATRIX = paths.CONFIGS / "nightly.toml"
MAX_ATTEMPTS = 3
SCHEMA = 1
# Row and kernel names become folder names and HTML anchors.
NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-"
# Domain names are cut at 60 characters; row names stay well inside that.
MAX_NAME = 48
KERNEL_SOURCES = {"probe": {"file"}, "lab-linux": set(), "freebsd": {"kernconf", "image", "target"},
                  "path": {"path"}, "folder": {"folder", "glob"}}
KERNEL_COMMON = {"from", "cmdline", "memory"}
ROW_KEYS = {"name", "kernel", "spec", "cmdline", "hosts", "expect", "lab", "memory"}
PROBE_FILES = ("probe", "probe-pv32pae", "crash-at-entry")
MATRIX_FILE = inputs.File("matrix", "give a nightly matrix TOML (like configs/nightly.toml)", inputs.TEXT_MAX,
                          text=True)
PARALLEL = inputs.Integer(1, 64, "guests booting at once")
# The order in which an unexpected verdict decides the run's exit status:
# a broken harness or build says more than a guest failure does.
EXIT_PRECEDENCE = (Verdict.INFRA, Verdict.BUILD_FAILED, Verdict.BAD_INPUT)


# -- the matrix ---------------------------------------------------------------

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


# -- stages -------------------------------------------------------------------

class NotRun(Exception):
    """A kernel that cannot be had on this machine, by no fault of the
    harness or the kernel (no FreeBSD source): its rows are marked, not run."""


@dataclasses.dataclass
class Context:
    run_dir: pathlib.Path
    progress: Progress
    lab_config: str = None
    src: pathlib.Path = None
    objdir: str = None
    source_problem: str = None
    parallel: int = 4
    hosts_started: int = 0
    # Set when a signal stops the run: what boots still report afterwards
    # (torn down under them) is not their verdict.
    stopped: str = None

    @property
    def boots_dir(self):
        return self.run_dir / "boots"

    def new_host_dir(self):
        self.hosts_started += 1
        folder = self.run_dir / "hosts" / str(self.hosts_started)
        folder.mkdir(parents=True, mode=0o700)
        return folder


def check_source(explicit=None):
    """(source tree or None, what summary.json says about it)."""
    info = {"pinned": source.pinned()}
    try:
        src = source.find_source(explicit)
    except BadInput as e:
        given = explicit or os.environ.get("FREEBSD_SRC")
        info.update(state="unusable" if given else "not checked out", message=e.message)
        return None, info
    commit, _ = source.source_commit(src)
    state = ("not a git checkout" if commit is None else
             "at the pin" if commit == info["pinned"] else
             "not pinned" if info["pinned"] is None else "differs from the pin")
    info.update(path=str(src), commit=commit, state=state)
    return src, info


def _probe_kernel(kernel, folder, ctx):
    out = paths.REPO / "build" / "probe"
    log = folder / "build.log"
    with open(log, "wb") as f:
        proc = tool.run_to_log(["make", "-C", paths.IMAGES / "probe", f"O={out}"], "building the probe", f)
    if proc.returncode != 0:
        raise BuildFailed(f"probe build failed: {build.first_error(log.read_text(errors='replace'))}"
                          f" (see {log})")
    return out / kernel.options["file"], None


def _lab_linux_kernel(kernel, folder, ctx):
    cache = labcache.LabCache(labconfig.load(ctx.lab_config))
    cache.ensure(log=ctx.progress)
    found = sorted((cache.packages_dir / "root" / "boot").glob("vmlinuz-*"))
    if not found:
        raise InfraError(f"no vmlinuz-* in the lab cache's {cache.packages_dir}/root/boot")
    return found[-1], None


def _freebsd_kernel(kernel, folder, ctx):
    if ctx.src is None:
        raise NotRun(ctx.source_problem)
    info = {}
    try:
        built, disk, _ = freebsd.build_and_image(folder, folder / "image" if kernel.options["image"] else None,
                                                 info, src=ctx.src, kernconf=kernel.options["kernconf"],
                                                 target=kernel.options["target"], objdir=ctx.objdir)
    finally:
        result.write_json(str(folder / "build.json"), info)
    return built, disk


def _path_kernel(kernel, folder, ctx):
    # prepare_kernel's check of the kernel says what is wrong with the file.
    return paths.REPO / kernel.options["path"], None


KERNEL_MAKERS = {"probe": _probe_kernel, "lab-linux": _lab_linux_kernel,
                 "freebsd": _freebsd_kernel, "path": _path_kernel}


def prepare_kernel(kernel, ctx):
    """The kernel as the boots need it: {path, disk} on success, {verdict,
    message} when it could not be had, {not_run} when it cannot be here."""
    folder = ctx.run_dir / "kernels" / kernel.name
    folder.mkdir(parents=True, mode=0o700)
    record = result.RunRecord(str(folder), name=f"kernel {kernel.name}")
    record["source"] = {"from": kernel.source, **kernel.options}
    try:
        with record.stage("build"):
            path, disk = KERNEL_MAKERS[kernel.source](kernel, folder, ctx)
        record["kernel"] = kernelcheck.check_kernel(str(path))
    except NotRun as e:
        return {"not_run": str(e)}
    except HarnessError as e:
        record.finish(e.verdict, e.message)
        return {"verdict": e.verdict.value, "message": e.message}
    record["disk"] = str(disk) if disk else None
    record.finish(Verdict.PASS, f"kernel {path}")
    return {"path": str(path), "disk": str(disk) if disk else None, "verdict": Verdict.PASS.value,
            "sha256": record["kernel"]["sha256"]}


# -- boots ----------------------------------------------------------------------

def _attempt_dir(ctx, row):
    # Flat and unique by name: boot.py names the domain after the folder,
    # and guests on one host need distinct names.
    return ctx.boots_dir / f"{row.id}-{len(row.attempts) + 1}"


def _record_attempt(ctx, row, folder, data):
    if ctx.stopped:
        return
    milestones = data.get("milestones") or []
    row.attempts.append({"folder": os.path.relpath(folder, ctx.run_dir),
                         "verdict": data["verdict"], "message": data.get("message"),
                         "reached": milestones[-1]["name"] if milestones else None,
                         "failed_at": data.get("failed_at"), "share_wait": data.get("share_wait")})


def _unbooted(ctx, row, folder, verdict, message):
    """result.json for an attempt that never reached a boot, so the run
    still aggregates every boot it attempted."""
    # Also over a result.json a crashed boot() left: this one says why.
    os.makedirs(folder, mode=0o700, exist_ok=True)
    record = result.RunRecord(str(folder), name=f"boot {row.id}")
    record["request"] = row.describe()
    record.finish(verdict, message)
    _record_attempt(ctx, row, folder, record.data)


def _boot_row(ctx, row, folder, kernel, host, host_dir):
    # FreeBSD boots as `make boot` boots it: the root device first in its
    # environment.
    cmdline = freebsd.kernel_cmdline(row.cmdline) if row.kernel.source == "freebsd" else row.cmdline
    req = BootRequest(kernel=kernel["path"], spec=row.spec, host=row.host, cmdline=cmdline, memory_mb=row.memory,
                      disk=kernel["disk"], out_dir=str(folder), lab_config=ctx.lab_config, lab=row.lab)
    try:
        data = boot(req, progress=lambda line: ctx.progress(f"{row.id}: {line}"),
                    shared_host=host).data
    except Exception as e:
        # A harness bug in one boot must not take the other rows with it.
        _unbooted(ctx, row, folder, Verdict.INFRA, f"harness error: {e!r}")
        return
    if host_dir is not None and not (folder / "host.log").exists():
        # The host's log is shared by its guests; each boot folder links it.
        os.symlink(os.path.relpath(host_dir / "host.log", folder), folder / "host.log")
    _record_attempt(ctx, row, folder, data)


def next_wave(pending, parallel, ports, capacity):
    """The next rows to boot together and the embedded hosts they share,
    [(flavour, rows)]: at most `parallel` rows; on each host at most `ports`
    guests whose memory together fits in `capacity` MiB (more and Xen
    refuses the next `xl create`: out of memory, an INFRA of our own
    making). A row that fits no host, when the wave has as many hosts of
    its flavour as `parallel` rows need, waits for the next wave."""
    wave, hosts, waiting = [], [], deque()
    while pending and len(wave) < parallel:
        row = pending.popleft()
        if row.host == "lab":
            mine = [h for h in hosts if h[0] == row.lab]
            host = next((h for h in mine if len(h[1]) < ports
                         and sum(r.memory for r in h[1]) + row.memory <= capacity), None)
            if host is None and len(mine) >= math.ceil(parallel / ports):
                waiting.append(row)
                continue
            if host is None:
                host = (row.lab, [])
                hosts.append(host)
            host[1].append(row)
        wave.append(row)
    pending.extendleft(reversed(waiting))
    return wave, hosts


def _run_wave(ctx, wave, kernels, lab_hosts):
    """The embedded hosts `lab_hosts` ([(flavour, rows)], next_wave), the
    xl rows on this machine, all guests at once; hosts stop when the wave
    is over."""
    folders = {row.id: _attempt_dir(ctx, row) for row in wave}
    placed = [(row, None, None) for row in wave if row.host != "lab"]
    with contextlib.ExitStack() as hosts:
        for flavour, chunk in lab_hosts:
            host_dir = ctx.new_host_dir()
            try:
                # Started on this thread: QEMU dies with the thread that
                # started it (PR_SET_PDEATHSIG), and this one outlives the wave.
                host = hosts.enter_context(lab_host(str(host_dir), str(ctx.boots_dir),
                                                    ctx.lab_config, ctx.progress, flavour=flavour))
            except Exception as e:
                # A host that cannot start fails its guests' attempts, which
                # are INFRA (retried) unless the input was bad.
                verdict = e.verdict if isinstance(e, HarnessError) else Verdict.INFRA
                message = e.message if isinstance(e, HarnessError) else f"{e!r} ({host_dir}/qemu.stderr)"
                for row in chunk:
                    _unbooted(ctx, row, folders[row.id], verdict, f"embedded host: {message}")
                continue
            placed += [(row, host, host_dir) for row in chunk]
        ctx.progress.watch([folders[row.id] / "console.log" for row, _, _ in placed])
        finished = set()

        def boot_and_mark(row, *args):
            try:
                _boot_row(ctx, row, *args)
            finally:
                finished.add(row.id)

        workers = [threading.Thread(target=boot_and_mark, name=f"boot-{row.id}", daemon=True,
                                    args=(row, folders[row.id], kernels[row.kernel.name], host, host_dir))
                   for row, host, host_dir in placed]
        for worker in workers:
            worker.start()
        try:
            for worker in workers:
                worker.join()
        except (KeyboardInterrupt, Terminated) as e:
            # Not Thread.is_alive(): a join interrupted by a signal marks the
            # thread it waited for as stopped (CPython bpo-45274's fix).
            what = "SIGINT" if isinstance(e, KeyboardInterrupt) else "SIGTERM"
            for row, _, _ in placed:
                if row.id not in finished:
                    _record_attempt(ctx, row, folders[row.id],
                                    {"verdict": Verdict.INFRA.value, "message": f"interrupted by {what}"})
            ctx.stopped = what
            raise


def assign_flavours(rows, lab_config=None):
    """Each lab row's flavour: its `lab`, else lab.toml's default for its
    kind of kernel (FreeBSD's own); a typo fails here, before any boot.
    The lab config, or None without lab rows."""
    lab_rows = [r for r in rows if r.host == "lab"]
    if not lab_rows:
        return None
    config = labconfig.load(lab_config)
    room = config["qemu"]["guest_memory_mb"]
    for row in lab_rows:
        row.lab = labconfig.flavour(config, row.lab, freebsd=row.kernel.source == "freebsd")[0]
        if row.memory > room:
            raise BadInput(f"row {row.id}: memory {row.memory} MiB: an embedded host has room for {room} MiB "
                           f"of guests (lab.toml [qemu] guest_memory_mb); give a smaller size")
    return config


def run_boots(ctx, rows, kernels):
    config = assign_flavours(rows, ctx.lab_config)
    ports, room = (config["qemu"]["console_ports"], config["qemu"]["guest_memory_mb"]) if config else (1, 0)
    pending = deque(rows)
    waves = 0
    while pending:
        wave, lab_hosts = next_wave(pending, ctx.parallel, ports, room)
        waves += 1
        ctx.progress.stage(f"boots, wave {waves}: {', '.join(row.id for row in wave)}")
        _run_wave(ctx, wave, kernels, lab_hosts)
        pending.extend(row for row in wave if Verdict(row.attempts[-1]["verdict"]).retryable
                       and len(row.attempts) < MAX_ATTEMPTS)


# -- the summary --------------------------------------------------------------

def row_summary(row):
    data = row.describe()
    if row.not_run:
        return data | {"outcome": "not-run", "reason": row.not_run, "verdict": None,
                       "attempts": [], "retried": 0, "flag": None, "folder": None,
                       "reached": None, "failed_at": None}
    final = row.attempts[-1]
    retried = len(row.attempts) - 1
    verdict = Verdict(final["verdict"])
    flag = None
    if retried:
        # The first fault's words: what to look into when a lab flakes.
        flag = (f"{'passed' if verdict is Verdict.PASS else 'ended ' + verdict.value} after "
                f"{retried} INFRA retr{'y' if retried == 1 else 'ies'} (first: {row.attempts[0]['message']})")
    return data | {"outcome": "as-expected" if verdict is row.expect else "unexpected",
                   "verdict": verdict.value, "message": final["message"],
                   "attempts": row.attempts, "retried": retried, "flag": flag,
                   "folder": final["folder"], "reached": final.get("reached"),
                   "failed_at": final.get("failed_at")}


def exit_status(rows):
    unexpected = {Verdict(r["verdict"]) for r in rows if r["outcome"] == "unexpected"}
    if not unexpected:
        return EXIT_PASS
    for verdict in EXIT_PRECEDENCE:
        if verdict in unexpected:
            return verdict.exit_status
    return EXIT_GUEST_FAILED


def counts(rows):
    found = {"rows": len(rows), "as-expected": 0, "unexpected": 0, "not-run": 0}
    for r in rows:
        found[r["outcome"]] += 1
    found["retried"] = sum(1 for r in rows if r["retried"])
    return found


def write_junit(path, summary):
    """One testsuite per row: its milestones, and a `verdict` case judged
    against what the matrix expects (a row not run is skipped)."""
    suites = ET.Element("testsuites", name="nightly")
    run_dir = pathlib.Path(path).parent
    for row in summary["rows"]:
        suite = ET.SubElement(suites, "testsuite", name=row["id"])
        props = ET.SubElement(suite, "properties")
        for key in ("kernel", "spec", "host", "memory", "cmdline", "expect", "verdict", "retried", "flag", "folder"):
            if row.get(key) not in (None, ""):
                ET.SubElement(props, "property", name=key, value=str(row[key]))
        classname = f"nightly.{row['kernel']}"
        data = {}
        if row["folder"]:
            with contextlib.suppress(OSError, ValueError):
                data = json.loads((run_dir / row["folder"] / "result.json").read_text())
        for m in data.get("milestones") or []:
            ET.SubElement(suite, "testcase", classname=classname, name=f"{row['id']} milestone {m['name']}",
                          time=f"{m.get('seconds') or 0:.3f}")
        case = ET.SubElement(suite, "testcase", classname=classname, name=f"{row['id']} verdict",
                             time=f"{sum((data.get('durations') or {}).values()):.3f}")
        if row["outcome"] == "not-run":
            ET.SubElement(case, "skipped", message=row["reason"])
        elif row["outcome"] == "unexpected":
            tag = "error" if Verdict(row["verdict"]) in EXIT_PRECEDENCE else "failure"
            ET.SubElement(case, tag, type=row["verdict"],
                          message=f"expected {row['expect']}, got {row['verdict']}: {row.get('message') or ''}")
        if row["flag"]:
            ET.SubElement(case, "system-out").text = f"flagged: {row['flag']}"
        cases = suite.findall("testcase")
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(len(case.findall("failure"))))
        suite.set("errors", str(len(case.findall("error"))))
        suite.set("skipped", str(len(case.findall("skipped"))))
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def bench_history(bench_dir, keep=30):
    """The last `keep` bench runs (bench.py's history.jsonl), for the report's plots."""
    entries = []
    path = pathlib.Path(bench_dir) / "history.jsonl"
    # Not a file: no history (opening a FIFO would block).
    if not path.is_file():
        return entries
    with contextlib.suppress(OSError):
        with open(path) as f:
            for line in f:
                with contextlib.suppress(ValueError):
                    entries.append(json.loads(line))
    return entries[-keep:]


# -- the pipeline ---------------------------------------------------------------

def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_nightly(matrix=None, out=None, parallel=4, host=None, src=None, lab_config=None,
                bench_dir=None, progress=None, objdir=None):
    """Runs every stage into one run folder; returns the summary (also in
    summary.json). The report is written even when a stage is interrupted."""
    kernels, rows = load_matrix(matrix, host)
    PARALLEL(parallel, "--parallel", None)
    run_dir = pathlib.Path(result.run_dir(out, "nightly"))
    # Every embedded host shares boots/ with dom0, so it exists before any host.
    (run_dir / "boots").mkdir(mode=0o700, exist_ok=True)
    ctx = Context(run_dir, progress or Progress(), lab_config=lab_config, parallel=parallel, objdir=objdir)
    matrix_path = pathlib.Path(matrix or DEFAULT_MATRIX)
    summary = {"schema": SCHEMA, "kind": "nightly", "run_dir": str(run_dir), "started": _now(),
               "matrix": {"path": str(matrix_path.resolve()), "sha256": kernelcheck.sha256(matrix_path)},
               "parallel": parallel, "stages": {}, "interrupted": False}
    # The matrix as run, next to what it produced (--kernels wrote it there).
    with contextlib.suppress(shutil.SameFileError):
        shutil.copyfile(matrix_path, run_dir / "matrix.toml")
    started = time.monotonic()

    @contextlib.contextmanager
    def stage(name):
        t0 = time.monotonic()
        try:
            yield
        finally:
            summary["stages"][name] = {"seconds": round(time.monotonic() - t0, 3)}

    try:
        with stage("source"):
            ctx.progress.stage("source")
            ctx.src, summary["source"] = check_source(src)
            if ctx.src is None:
                ctx.source_problem = f"source {summary['source']['state']}: {summary['source']['message']}"
        needed = {row.kernel.name: row.kernel for row in rows}
        with stage("kernels"):
            products = summary["kernels"] = {}
            for name, kernel in needed.items():
                ctx.progress.stage(f"kernel {name}")
                ctx.progress.watch([run_dir / "kernels" / name / "build.log"])
                products[name] = prepare_kernel(kernel, ctx)
        runnable = []
        for row in rows:
            product = products[row.kernel.name]
            if "not_run" in product:
                row.not_run = product["not_run"]
            elif product["verdict"] != Verdict.PASS.value:
                _unbooted(ctx, row, _attempt_dir(ctx, row), Verdict(product["verdict"]),
                          f"kernel {row.kernel.name}: {product['message']}")
            else:
                runnable.append(row)
        with stage("boots"):
            run_boots(ctx, runnable, products)
    except (KeyboardInterrupt, Terminated) as e:
        summary["interrupted"] = type(e).__name__
        raise
    finally:
        with stage("report"):
            ctx.progress.stage("report")
            # Rows a stopped run never reached are left out rather than guessed at.
            summary["rows"] = [row_summary(r) for r in rows if r.not_run or r.attempts]
            summary["counts"] = counts(summary["rows"])
            summary["exit_status"] = exit_status(summary["rows"])
            summary["bench"] = bench_history(bench_dir or paths.out_root() / "bench")
            summary["finished"] = _now()
            summary["seconds"] = round(time.monotonic() - started, 3)
            result.write_json(str(run_dir / "summary.json"), summary)
            write_junit(str(run_dir / "junit.xml"), summary)
            report.write_report(run_dir)
    return summary


def _command(args):
    folder_options = [f"--{key}" for key in ("spec", "glob", "lab") if getattr(args, key) is not None]
    if folder_options and not args.kernels:
        raise BadInput(f"{' '.join(folder_options)}: only with --kernels DIR (a matrix names each row's own)")
    out = args.out
    matrix = args.matrix
    if args.kernels:
        matrix = os.path.join(out, "matrix.toml")
        pathlib.Path(matrix).write_text(folder_matrix(args.kernels, args.spec or "generic", args.glob or "*",
                                                      args.lab))
    try:
        with sigterm_raises(), Progress() as progress:
            summary = run_nightly(matrix, out, args.parallel, args.host, args.src,
                                  args.lab_config, args.bench_dir, progress, args.objdir)
    except (KeyboardInterrupt, Terminated) as e:
        what = "SIGINT" if isinstance(e, KeyboardInterrupt) else "SIGTERM"
        print(f"xenboot: INFRA: nightly interrupted by {what}; what it did is in {out}/report.html",
              flush=True)
        return Verdict.INFRA.exit_status
    for row in summary["rows"]:
        shown = row["verdict"] or "NOT RUN"
        extra = row.get("reason") if row["outcome"] == "not-run" else row.get("message")
        flag = f" [{row['flag']}]" if row["flag"] else ""
        print(f"  {row['outcome']:<11} {shown:<17} {row['id']}{flag}: {extra or ''}")
    c = summary["counts"]
    print(f"xenboot: nightly: {c['rows']} rows: {c['as-expected']} as expected, {c['unexpected']} "
          f"unexpected, {c['not-run']} not run, {c['retried']} retried; "
          f"report {summary['run_dir']}/report.html", flush=True)
    return summary["exit_status"]


def add_parser(sub):
    p = sub.add_parser("nightly", help="the nightly pipeline: build, boot a matrix, report",
                       description=__doc__.splitlines()[0])
    option = functools.partial(inputs.option, p)
    option("--matrix", default=str(DEFAULT_MATRIX), help="matrix TOML (default configs/nightly.toml)",
           check=MATRIX_FILE)
    option("--kernels", metavar="DIR", help="instead of the matrix, one row per kernel file (ELF "
           "executable) in DIR, booted with --spec", check=inputs.Folder("name the folder that holds the kernel files"))
    option("--glob", help="with --kernels: which files of DIR (default *)", check=GLOB)
    option("--spec", help="with --kernels: the rows' spec (default generic)", check=specs.SPEC_INPUT)
    option("--lab-config", help="lab config (default configs/lab.toml)", check=labconfig.CONFIG_INPUT)
    option("--lab", help="with --kernels: the rows' lab flavour (default: lab.toml's)",
           check=labconfig.FLAVOUR_INPUT)
    option("--out", help="run folder (default out/nightly/<UTC time>-<id>)", check=result.out_input("nightly"))
    option("--parallel", default=4, help="guests booting at once (default 4)", check=PARALLEL)
    option("--host", help="boot every row on this host kind (lab or xl)", check=HOST)
    option("--src", help="FreeBSD source tree (default: $FREEBSD_SRC, else freebsd-src)", check=source.SRC)
    option("--objdir", help="MAKEOBJDIRPREFIX for the FreeBSD kernels (default: build/obj)", check=build.OBJDIR)
    option("--bench-dir", help="where bench history.jsonl is (default out/bench)",
           check=inputs.Folder("give the folder `xenboot bench` writes to (out/bench)", missing_ok=True))
    p.set_defaults(func=_command)
