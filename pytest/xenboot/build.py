"""`xenboot kernel`: build the FreeBSD XEN kernel from freebsd-src.

On a FreeBSD host it is the branch's own `make buildkernel` (with
`kernel-toolchain` first when the object tree has none). On Linux it is a
cross-build driver for the 2013 tree, EXPERIMENTAL until it has built the
real branch: config(8) is built from the tree with the shims in
ci/freebsd-compat, then config and the kernel's own Makefiles run under
Debian's bmake with clang targeting FreeBSD 10 and ld.lld.

Either way the kernel lands where MAKEOBJDIRPREFIX puts it,
<objdir><absolute src>/sys/<KERNCONF>/kernel; the driver checks it is there
and copies it into the run folder with build.log, the source commit, the
toolchain versions and sha256s. A second run with nothing changed does no
work: config and depend run only when their inputs are newer than the
compile folder. The build identity (user, host, date) is fixed, so a rebuild
of one commit in the same object folder gives the same bytes where the tree
allows it.
"""
import os
import pathlib
import platform
import re
import shutil
import subprocess

from xenboot import kernelcheck, paths, source
from xenboot.errors import BadInput, BuildFailed, HarnessError, InfraError, Verdict
from xenboot.result import recorded

COMPAT = paths.REPO / "ci" / "freebsd-compat"
DEFAULT_OBJDIR = paths.REPO / "build" / "obj"
KERNCONF_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
FIXTURE_MARKER = "XENBOOT-FIXTURE"
STEP_MARK = "==> xenboot: "
TARGET_TRIPLE = "x86_64-unknown-freebsd10.0"
BUILD_USER, BUILD_HOST = "freebsd-xen-ci", "freebsd-xen-ci.invalid"
JOBS = f"-j{os.cpu_count() or 1}"
# What config(8) reads: when none is newer than the compile folder's
# Makefile, config (and the depend pass after it) are skipped.
CONFIG_INPUTS = ("sys/conf/files", "sys/conf/files.amd64", "sys/conf/options",
                 "sys/conf/options.amd64", "sys/conf/Makefile.amd64")
# First line of a compiler or linker diagnostic that stops the build.
ERROR_PATTERNS = (
    re.compile(r"^\S+:\d+(?::\d+)?: (?:fatal )?error: .*"),
    re.compile(r"^(?:ld(?:\.lld)?|clang|cc|config|bmake|make)(?:\[\d+\])?: (?:error|fatal)\b.*", re.I),
    re.compile(r".*\*\*\* .*Error \d+.*"),
    re.compile(r".*\berror\b.*", re.I),
)


def cross_cc(src, objdir):
    """The compiler command the Linux driver hands to the tree's Makefiles.

    -fcommon: genassym reads constants from common symbols, which clang no
    longer makes by default (the tree strips -fno-common for genassym.o only).
    -fuse-ld=lld: the few links the kernel build does through the compiler.
    -Wno-error: the 2013 sources warn under a 2022 compiler. The prefix maps
    keep the build's folders out of the debug info.
    """
    return (f"clang --target={TARGET_TRIPLE} -fcommon -fuse-ld=lld -Qunused-arguments -Wno-error "
            f"-fdebug-prefix-map={src}=/usr/src -fdebug-prefix-map={objdir}=/usr/obj")


# name: (version command, Debian package); the first word is the tool itself.
LINUX_TOOLS = {
    "bmake": (["bmake", "-r", "-f", "/dev/null", "-V", "MAKE_VERSION"], "bmake"),
    "clang": (["clang", "--version"], "clang"),
    "ld.lld": (["ld.lld", "--version"], "lld"),
    "llvm-nm": (["llvm-nm", "--version"], "llvm"),
    "llvm-objcopy": (["llvm-objcopy", "--version"], "llvm"),
    "yacc": (["byacc", "-V"], "byacc"),
    "lex": (["flex", "--version"], "flex"),
    "awk": (["original-awk", "-version"], "original-awk"),
    "cc": (["cc", "--version"], "gcc"),
}
FREEBSD_TOOLS = {
    "make": (["make", "-r", "-f", "/dev/null", "-V", "MAKE_VERSION"], None),
    "cc": (["cc", "--version"], None),
    "uname": (["uname", "-srm"], None),
}


def kernel_dir(objdir, src, kernconf, objtree_suffix=""):
    """MAKEOBJDIRPREFIX's rule: <prefix>[/<target>.<arch>]<abs src>/sys/<KERNCONF>."""
    return pathlib.Path(f"{objdir}{objtree_suffix}{src}") / "sys" / kernconf


def first_error(log_text):
    lines = [l for l in log_text.splitlines() if not l.startswith(STEP_MARK)]
    for pattern in ERROR_PATTERNS:
        for line in lines:
            if pattern.match(line):
                return line.strip()
    return (lines or ["(build.log is empty)"])[-1].strip()


def tool_versions(tools):
    """{name: first line of its version output}; InfraError naming the package when absent."""
    versions = {}
    for name, (argv, package) in tools.items():
        if not shutil.which(argv[0]):
            raise InfraError(f"{argv[0]} not found; install it (apt-get install {package})" if package
                             else f"{argv[0]} not found: this FreeBSD host lacks its base system tools")
        proc = subprocess.run(argv, capture_output=True, text=True)
        versions[name] = ((proc.stdout or proc.stderr).strip().splitlines() or ["?"])[0]
    return versions


def stale(target, inputs):
    """True when target is missing or older than any input that exists."""
    if not target.exists():
        return True
    mtime = target.stat().st_mtime
    return any(p.exists() and p.stat().st_mtime > mtime for p in inputs)


class Build:
    """One kernel build: runs steps into build.log and says which ran."""

    def __init__(self, src, kernconf, objdir, out_dir, epoch):
        self.src, self.kernconf, self.objdir = src, kernconf, objdir
        self.log_path = pathlib.Path(out_dir) / "build.log"
        self.steps = []
        # The source's own date, so the kernel's banner names the commit, not the day it was built.
        self.epoch = str(epoch or 0)
        self.env = self.base_env()

    def base_env(self):
        """The host's settings cannot leak in: no make.conf, src.conf or make flags."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MFLAGS", "MAKEOBJDIR", "MAKEOBJDIRPREFIX", "MAKESYSPATH",
                            "CC", "CFLAGS", "LD", "LDFLAGS", "CPPFLAGS")}
        env.update(__MAKE_CONF="/dev/null", SRCCONF="/dev/null", USER=BUILD_USER,
                   HOSTNAME=BUILD_HOST, SOURCE_DATE_EPOCH=self.epoch, TZ="UTC", LC_ALL="C",
                   PATH=f"{COMPAT / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}")
        return env

    def run(self, step, argv, cwd, env=None):
        self.steps.append(step)
        with open(self.log_path, "a") as log:
            log.write(f"{STEP_MARK}{step}: {' '.join(map(str, argv))} (in {cwd})\n")
            log.flush()
            try:
                proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env or self.env,
                                      stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            except OSError as e:
                raise BuildFailed(f"kernel build step {step} could not start {argv[0]}: {e.strerror}",
                                  step=step, error=str(e))
        if proc.returncode != 0:
            error = first_error(self.log_path.read_text(errors="replace"))
            raise BuildFailed(f"kernel build failed in step {step}: {error} (see {self.log_path})",
                              step=step, error=error)

    def config_needed(self, compile_dir, *more_inputs):
        conf = self.src / "sys" / "amd64" / "conf" / self.kernconf
        inputs = [conf, *more_inputs] + [self.src / p for p in CONFIG_INPUTS]
        return stale(compile_dir / "Makefile", inputs)


class LinuxBuild(Build):
    """The experimental cross-build: the steps Makefile.inc1's buildkernel takes."""

    tools = LINUX_TOOLS
    experimental = True

    def kernel_dir(self):
        return kernel_dir(self.objdir, self.src, self.kernconf)

    def make_vars(self):
        # .MAKE.EXPAND_VARIABLES: the kernel Makefiles feed `make -V` output to
        # mkdep and expect it expanded, as FreeBSD's make of the time printed it.
        return [".MAKE.EXPAND_VARIABLES=yes", "MACHINE=amd64", "MACHINE_ARCH=amd64", "MACHINE_CPUARCH=amd64",
                f"CC={cross_cc(self.src, self.objdir)}", "LD=ld.lld", "NM=llvm-nm",
                "OBJCOPY=llvm-objcopy", "OBJDUMP=llvm-objdump", "SIZE=llvm-size", "AR=llvm-ar",
                "RANLIB=llvm-ranlib", "AWK=original-awk", "WERROR=", "NO_WERROR=yes",
                "NO_MODULES=yes", "WITHOUT_CTF=yes", "NO_CTF=yes"]

    def build(self):
        tool_dir = self.objdir / "host-tools" / "usr.sbin" / "config"
        tool_dir.mkdir(parents=True, exist_ok=True)
        self.run("host-tools", ["bmake", "-m", COMPAT / "mk", "-C", self.src / "usr.sbin" / "config"],
                 cwd=self.src, env=dict(self.env, MAKEOBJDIR=str(tool_dir)))
        config_tool = tool_dir / "config"
        compile_dir = self.kernel_dir()
        kernel_make = ["bmake", "-m", self.src / "share" / "mk", *self.make_vars()]
        if self.config_needed(compile_dir, config_tool):
            compile_dir.mkdir(parents=True, exist_ok=True)
            self.run("config", [config_tool, "-d", compile_dir, self.kernconf],
                     cwd=self.src / "sys" / "amd64" / "conf")
            self.run("depend", [*kernel_make, "depend"], cwd=compile_dir)
        self.run("all", [*kernel_make, JOBS, "all"], cwd=compile_dir)
        return compile_dir / "kernel"


class FreeBsdBuild(Build):
    """The branch's own buildkernel, on a FreeBSD host."""

    tools = FREEBSD_TOOLS
    experimental = False

    def kernel_dir(self):
        # A cross build (host not amd64) puts the object tree one level deeper.
        suffix = "" if platform.machine() == "amd64" else "/amd64.amd64"
        return kernel_dir(self.objdir, self.src, self.kernconf, suffix)

    def build(self):
        env = dict(self.env, MAKEOBJDIRPREFIX=str(self.objdir))
        common = ["-C", self.src, JOBS, "TARGET=amd64", "TARGET_ARCH=amd64"]
        compile_dir = self.kernel_dir()
        worldtmp = pathlib.Path(str(compile_dir.parent.parent) + "/tmp")
        if not (worldtmp / "usr" / "bin" / "cc").exists():
            self.run("kernel-toolchain", ["make", *common, "kernel-toolchain"], cwd=self.src, env=env)
        fast = []
        if (compile_dir / "kernel").exists() and not self.config_needed(compile_dir):
            # What KERNFAST means in later trees, spelled the way 2013 knows.
            fast = ["-DNO_KERNELCLEAN", "-DNO_KERNELCONFIG", "-DNO_KERNELDEPEND"]
        self.run("buildkernel", ["make", *common, "buildkernel", f"KERNCONF={self.kernconf}",
                                 "NO_MODULES=yes", *fast], cwd=self.src, env=env)
        return compile_dir / "kernel"


def host_build_class(system=None):
    system = system or platform.system()
    if system == "FreeBSD":
        return FreeBsdBuild
    if system == "Linux":
        return LinuxBuild
    raise BadInput(f"kernel builds run on FreeBSD or Linux, not {system}")


def build_kernel(out_dir, info, src=None, kernconf="XEN", objdir=None, system=None):
    """Builds and copies the kernel to out_dir/kernel, filling info (result.json's
    "build") as it goes, so a failed build still records how far it got."""
    if not KERNCONF_RE.match(kernconf):
        raise BadInput(f"--kernconf {kernconf!r}: a kernel config name is letters, digits, _ . -")
    src = source.find_source(src)
    conf = src / "sys" / "amd64" / "conf" / kernconf
    if not conf.is_file():
        raise BadInput(f"no kernel config {conf}; pick one of "
                       f"{', '.join(sorted(p.name for p in conf.parent.iterdir() if p.is_file())[:8])}")
    objdir = pathlib.Path(objdir or DEFAULT_OBJDIR).resolve()
    objdir.mkdir(parents=True, exist_ok=True)
    cls = host_build_class(system)
    commit, commit_time = source.source_commit(src)
    build = cls(src, kernconf, objdir, out_dir, commit_time)
    info.update({
        "host": platform.system(), "experimental": cls.experimental, "kernconf": kernconf,
        "objdir": str(objdir),
        "source": {"path": str(src), "commit": commit,
                   "pinned": source.pinned(), "fixture": (src / FIXTURE_MARKER).exists()},
        "identity": {"user": BUILD_USER, "host": BUILD_HOST, "source_date_epoch": build.epoch},
        "build_log": str(build.log_path), "steps": build.steps})
    info["toolchain"] = tool_versions(cls.tools)
    built = build.build()
    if not built.is_file():
        raise BuildFailed(f"the build finished but left no kernel at {built}; see {build.log_path}",
                          step=build.steps[-1], error=f"no kernel at {built}")
    kernel = pathlib.Path(out_dir) / "kernel"
    shutil.copyfile(built, kernel)
    info["built"] = {"path": str(built), "sha256": kernelcheck.sha256(built)}
    debug = built.with_name("kernel.debug")
    if debug.is_file():
        info["built"]["debug_sha256"] = kernelcheck.sha256(debug)
    return kernel


def run(args):
    with recorded(args.out, "kernel") as record:
        info = record["build"] = {}
        try:
            with record.stage("build"):
                kernel = build_kernel(record.out_dir, info, src=args.src, kernconf=args.kernconf,
                                      objdir=args.objdir)
        except HarnessError as e:
            info.update(e.details)
            raise
        record["kernel"] = kernelcheck.check_kernel(str(kernel))
    status = record.finish(Verdict.PASS)
    what = ("FIXTURE build (a test tree, not FreeBSD)" if info["source"]["fixture"]
            else "EXPERIMENTAL Linux cross-build" if info["experimental"] else "buildkernel")
    print(f"xenboot: kernel {kernel} ({what}; sha256 {record['kernel']['sha256']}; "
          f"steps: {', '.join(info['steps']) or 'none'})")
    return status


def add_parser(subparsers):
    p = subparsers.add_parser("kernel", help="build the FreeBSD XEN kernel from freebsd-src",
                              description=__doc__.splitlines()[0])
    p.add_argument("--kernconf", default="XEN", help="kernel config in sys/amd64/conf (default XEN)")
    p.add_argument("--src", help="FreeBSD source tree (default: $FREEBSD_SRC, else the freebsd-src submodule)")
    p.add_argument("--objdir", help=f"object folder, MAKEOBJDIRPREFIX (default {DEFAULT_OBJDIR})")
    p.add_argument("--out", help="run folder (default: out/<timestamp>-<id>/)")
    p.set_defaults(func=run)
