"""What every kernel build driver shares: the targets, where
MAKEOBJDIRPREFIX puts a kernel, the fixed build identity and environment,
running a step into build.log (timed), the first error of a failed step,
and the check that the source tree was only read.

The drivers themselves: freebsd10.py (FreeBSD 10 trees, on Linux and
FreeBSD) and makepy.py (FreeBSD 12.2-14.x on Linux, through the tree's own
tools/build/make.py); build.py picks one from the tree's era.
"""
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

from xenboot.core import paths, tool
from xenboot.core.errors import BuildFailed, InfraError

DEFAULT_OBJDIR = paths.REPO / "build" / "obj"
STEP_MARK = "==> xenboot: "
BUILD_USER, BUILD_HOST = "freebsd-xen-ci", "freebsd-xen-ci.invalid"
JOBS = f"-j{os.cpu_count() or 1}"


@dataclass(frozen=True)
class Target:
    """A FreeBSD TARGET: its config folder is sys/<name>/conf."""
    name: str
    arch: str       # TARGET_ARCH, MACHINE_ARCH
    cpuarch: str    # MACHINE_CPUARCH
    triple: str     # clang --target of the 10.x driver: the FreeBSD 10.0 ABI of the 2013 tree


TARGETS = {t.name: t for t in (Target("amd64", "amd64", "amd64", "x86_64-unknown-freebsd10.0"),
                               Target("i386", "i386", "i386", "i386-unknown-freebsd10.0"))}
# First line of a compiler or linker diagnostic that stops the build (the
# tool named with or without its folder: make.py's are /usr/lib/llvm-14/bin/...).
ERROR_PATTERNS = (
    re.compile(r"^\S+:\d+(?::\d+)?: (?:fatal )?error: .*"),
    re.compile(r"^(?:\S*/)?(?:ld(?:\.lld)?|clang|cc|config|bmake|make)(?:\[\d+\])?: (?:error|fatal)\b.*", re.I),
    re.compile(r".*\*\*\* .*Error \d+.*"),
    # Not a compiler's -Wno-error=... flag.
    re.compile(r".*(?<!-)\berror\b.*", re.I),
)
# Not part of the source: git may refresh its own files when newvers.sh asks
# it for the commit.
UNTRACKED_IN_TREE = {".git"}


def kernel_dir(objdir, src, kernconf, objtree_suffix=""):
    """MAKEOBJDIRPREFIX's rule up to FreeBSD 11: <prefix>[/<target>.<arch>]<abs src>/sys/<KERNCONF>."""
    return pathlib.Path(f"{objdir}{objtree_suffix}{src}") / "sys" / kernconf


def cross_suffix(target):
    """The object tree level FreeBSD 10's Makefile.inc1 adds for a cross build."""
    return f"/{target.name}.{target.arch}"


def objtop_kernel_dir(objdir, src, kernconf, target):
    """MAKEOBJDIRPREFIX's rule from FreeBSD 12 on, native or cross: OBJTOP is
    <prefix><abs src>/<target>.<arch>, the kernel OBJTOP/sys/<KERNCONF>."""
    return pathlib.Path(f"{objdir}{src}") / f"{target.name}.{target.arch}" / "sys" / kernconf


def first_error(log_text):
    """The first error of the last step in build.log (the steps before it succeeded), or its last line."""
    lines = log_text.rsplit(STEP_MARK, 1)[-1].splitlines()[1:] if STEP_MARK in log_text else log_text.splitlines()
    for pattern in ERROR_PATTERNS:
        for line in lines:
            if pattern.match(line):
                return line.strip()
    return (lines or ["(build.log is empty)"])[-1].strip()


TOOLCHAIN_CACHE = ".xenboot-toolchain.json"


def tool_versions(tools, system, objdir):
    """{name: first line of its version output}; InfraError naming the package when absent.
    A tool's answer is kept in objdir, keyed by its argv and the program file it
    resolves to: each rebuild would otherwise spend ~0.3 s running them all."""
    cache_path = pathlib.Path(objdir) / TOOLCHAIN_CACHE
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    versions, kept = {}, {}
    kernel_release = os.uname().release
    for name, argv in tools.items():
        found = shutil.which(argv[0])
        if not found:
            if system == "FreeBSD":
                raise InfraError(f"{argv[0]} not found: this FreeBSD host lacks its base system tools")
            raise tool.missing(argv[0], "kernel build")
        program = os.path.realpath(found)
        st = os.stat(program)
        # uname answers for the running kernel, not for its program file.
        key = json.dumps([argv, program, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, kernel_release])
        if key in cache:
            kept[key] = cache[key]
        else:
            proc = subprocess.run(argv, capture_output=True, text=True)
            kept[key] = ((proc.stdout or proc.stderr).strip().splitlines() or ["?"])[0]
        versions[name] = kept[key]
    if kept != cache:
        tmp = cache_path.with_name(f"{TOOLCHAIN_CACHE}.{os.getpid()}")
        tmp.write_text(json.dumps(kept, indent=1))
        os.replace(tmp, cache_path)
    return versions


def stale(target, inputs):
    """True when target is missing or older than any input that exists."""
    if not target.exists():
        return True
    mtime = target.stat().st_mtime
    return any(p.exists() and p.stat().st_mtime > mtime for p in inputs)


def tree_entries(src):
    """(path under src, its lstat) for src itself (".") and all in it but UNTRACKED_IN_TREE."""
    yield ".", os.lstat(src)
    folders = [""]
    while folders:
        rel = folders.pop()
        with os.scandir(os.path.join(src, rel)) as entries:
            for entry in entries:
                if not rel and entry.name in UNTRACKED_IN_TREE:
                    continue
                path = f"{rel}/{entry.name}" if rel else entry.name
                yield path, entry.stat(follow_symlinks=False)
                if entry.is_dir(follow_symlinks=False):
                    folders.append(path)


def tree_state(src):
    """{path under src: (mode, size, mtime)} of every file and folder: a write shows,
    a root build's too (root ignores a read-only tree's permissions)."""
    return {path: (st.st_mode, st.st_size, st.st_mtime_ns) for path, st in tree_entries(src)}


def tree_writes(before, after):
    """The paths added, removed or changed between two tree_state()s, sorted."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


CTIME_TICK_WAIT = 3.0     # seconds: above the coarsest timestamp granularity, FAT's 2 s


def change_clock(src, scratch):
    """A ctime the filesystem of src stamped on a file in scratch, returned once
    its clock has moved past it: a change under src before this call has a
    ctime at most this, one after a later ctime. None when scratch is on
    another filesystem, whose clock and granularity need not be src's, or
    when the filesystem's ctime does not move."""
    if os.stat(scratch).st_dev != os.stat(src).st_dev:
        return None
    fd, name = tempfile.mkstemp(dir=scratch, prefix=".xenboot-clock-")
    try:
        stamp = os.fstat(fd).st_ctime_ns
        # The clock ticks coarsely (a jiffy; FAT's is 2 s) and nothing signals
        # a tick: a change in this tick could still get stamp. A filesystem
        # whose ctime does not move gets the two walks.
        deadline = time.monotonic() + CTIME_TICK_WAIT
        while time.monotonic() < deadline:
            os.utime(fd)
            if os.fstat(fd).st_ctime_ns > stamp:
                return stamp
            time.sleep(0.001)
        return None
    finally:
        os.close(fd)
        os.unlink(name)


def changed_since(src, clock):
    """The paths under src ("." itself) whose inode changed after clock, sorted:
    a write, create, chmod or link changes a file's ctime, a remove or rename
    its folder's, and no one can set a ctime back."""
    return sorted(path for path, st in tree_entries(src) if st.st_ctime_ns > clock)


class SourceWatch:
    """What a build changed under src: one walk after it, against a ctime
    stamped before it (scratch: a folder of the build on src's filesystem);
    two full walks compared when change_clock() has no clock to give."""

    def __init__(self, src, scratch):
        self.src = src
        self.clock = change_clock(src, scratch)
        self.before = tree_state(src) if self.clock is None else None

    def written(self):
        if self.clock is None:
            return tree_writes(self.before, tree_state(self.src))
        return changed_since(self.src, self.clock)


class Build:
    """One kernel build: runs steps into build.log, says which ran and how long each took."""

    tools = {}
    what = "buildkernel"     # how `xenboot kernel` names the build
    experimental = False

    def __init__(self, src, kernconf, objdir, out_dir, epoch, target="amd64"):
        self.src, self.kernconf, self.objdir = src, kernconf, objdir
        self.target = TARGETS[target]
        self.conf_dir = src / "sys" / target / "conf"
        self.log_path = pathlib.Path(out_dir) / "build.log"
        self.steps = []
        self.seconds = {}
        # The source's own date, so the kernel's banner names the commit, not the day it was built.
        self.epoch = str(epoch or 0)
        self.env = self.base_env()

    def base_env(self):
        """The host's settings cannot leak in: no make.conf, src.conf or make flags."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MFLAGS", "MAKEOBJDIR", "MAKEOBJDIRPREFIX", "MAKESYSPATH",
                            "CC", "CXX", "CPP", "CFLAGS", "LD", "LDFLAGS", "CPPFLAGS")}
        env.update(__MAKE_CONF="/dev/null", SRCCONF="/dev/null", USER=BUILD_USER,
                   HOSTNAME=BUILD_HOST, SOURCE_DATE_EPOCH=self.epoch, TZ="UTC", LC_ALL="C")
        return env

    def identity(self):
        """What result.json records of the fixed build identity."""
        return {"user": BUILD_USER, "host": BUILD_HOST, "source_date_epoch": self.env.get("SOURCE_DATE_EPOCH")}

    def run(self, step, argv, cwd, env=None):
        self.steps.append(step)
        start = time.monotonic()
        with open(self.log_path, "a") as log:
            log.write(f"{STEP_MARK}{step}: {' '.join(map(str, argv))} (in {cwd})\n")
            log.flush()
            try:
                proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env or self.env,
                                      stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            except OSError as e:
                raise BuildFailed(f"kernel build step {step} could not start {argv[0]}: {e.strerror}",
                                  step=step, error=str(e))
            finally:
                self.seconds[step] = round(time.monotonic() - start, 1)
        if proc.returncode != 0:
            error = first_error(self.log_path.read_text(errors="replace"))
            raise BuildFailed(f"kernel build failed in step {step}: {error} (see {self.log_path})",
                              step=step, error=error)
