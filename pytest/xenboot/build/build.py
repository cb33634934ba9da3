"""`xenboot kernel`: build a FreeBSD kernel (XEN by default) from freebsd-src
or another FreeBSD 10-era tree, for amd64 or i386.

On a FreeBSD host it is the tree's own `make buildkernel` (with
`kernel-toolchain` first when the object tree has none). On Linux it is a
cross-build driver: config(8) is built from the tree with the shims in
ci/freebsd-compat, then config and the kernel's own Makefiles run under
Debian's bmake with clang targeting FreeBSD 10 and ld.lld. Each workaround
a real tree needs lives in the driver or ci/freebsd-compat, saying which
tree needs it and why; the source tree is only read.

The kernel lands where MAKEOBJDIRPREFIX puts it. On FreeBSD that is
<objdir><abs src>/sys/<KERNCONF> for a native build and
<objdir>/<target>.<arch><abs src>/sys/<KERNCONF> for a cross build; the
Linux driver is always a cross build and uses the second form, so amd64 and
i386 kernels of one config name (GENERIC) share an object folder without
overwriting each other. The driver checks the kernel is there and copies it
into the run folder with build.log, the source commit, the toolchain
versions and sha256s. A second run with nothing changed does no work:
config and depend run only when their inputs are newer than the stamp the
last successful depend left, so a failed config or depend is redone. The
build identity (user, host, date, compiler banner) is fixed; what still
differs between two object folders is the folder itself, which newvers.sh
writes into the kernel's version string (README, "The FreeBSD build").
"""
import functools
import os
import pathlib
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass

from elftools.elf.elffile import ELFFile

from xenboot.build import source
from xenboot.core import inputs, paths, result, tool
from xenboot.guest import kernelcheck
from xenboot.core.errors import BadInput, BuildFailed, HarnessError, InfraError, Verdict
from xenboot.core.result import recorded

COMPAT = paths.REPO / "ci" / "freebsd-compat"
DEFAULT_OBJDIR = paths.REPO / "build" / "obj"
KERNCONF_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
KERNCONF = inputs.Text("a kernel config name is letters, digits, _ . -",
                       problem=lambda name: None if KERNCONF_RE.match(name) else "is not a config name")
OBJDIR = inputs.OutputFolder("give a folder this user can write for the object files")
FIXTURE_MARKER = "XENBOOT-FIXTURE"
STEP_MARK = "==> xenboot: "
BUILD_USER, BUILD_HOST = "freebsd-xen-ci", "freebsd-xen-ci.invalid"
JOBS = f"-j{os.cpu_count() or 1}"
# What config(8) reads ({t}: the target): when none is newer than the stamp
# of the last successful depend, config and depend are skipped.
CONFIG_INPUTS = ("sys/conf/files", "sys/conf/files.{t}", "sys/conf/options",
                 "sys/conf/options.{t}", "sys/conf/Makefile.{t}", "sys/{t}/conf/DEFAULTS")
CONFIGURED = ".xenboot-configured"
# The trees this driver builds: FreeBSD 10 (the 2013 amd64_xen_pv branch of
# 10-CURRENT, the 10.x releases), by sys/sys/param.h's __FreeBSD_version.
# Other eras differ in their mk files and compiler (9.x: gcc; 11 and later:
# a different config(8) and toolchain), which this driver does not model.
ERA = range(1000000, 1100000)
VERSION_RE = re.compile(r"^#define\s+__FreeBSD_version\s+(\d+)", re.M)


@dataclass(frozen=True)
class Target:
    """A FreeBSD TARGET: its config folder is sys/<name>/conf."""
    name: str
    arch: str       # TARGET_ARCH, MACHINE_ARCH
    cpuarch: str    # MACHINE_CPUARCH
    triple: str     # clang --target: the FreeBSD 10.0 ABI of the 2013 tree


TARGETS = {t.name: t for t in (Target("amd64", "amd64", "amd64", "x86_64-unknown-freebsd10.0"),
                               Target("i386", "i386", "i386", "i386-unknown-freebsd10.0"))}
# First line of a compiler or linker diagnostic that stops the build.
ERROR_PATTERNS = (
    re.compile(r"^\S+:\d+(?::\d+)?: (?:fatal )?error: .*"),
    re.compile(r"^(?:ld(?:\.lld)?|clang|cc|config|bmake|make)(?:\[\d+\])?: (?:error|fatal)\b.*", re.I),
    re.compile(r".*\*\*\* .*Error \d+.*"),
    re.compile(r".*\berror\b.*", re.I),
)


def cross_cc(src, objdir, target="amd64"):
    """The compiler command the Linux driver hands to the tree's Makefiles.

    freebsd-clang (ci/freebsd-compat) is clang with a fixed `-v` answer.
    -fcommon: genassym reads constants from common symbols, which clang no
    longer makes by default (the tree strips -fno-common for genassym.o only).
    -fuse-ld=lld: the few links the kernel build does through the compiler.
    -Wno-error: the 2013 sources warn under a 2022 compiler.
    -Wno-unknown-warning-option: 10.x's kern.mk passes -Wno-error-<warning>
    forms clang 14 no longer knows, a warning per compile that would fill
    build.log (and read as an error to first_error). The prefix maps
    keep the build's folders out of the debug info and out of __FILE__.
    """
    return (f"{COMPAT / 'bin' / 'freebsd-clang'} --target={TARGETS[target].triple} -fcommon -fuse-ld=lld "
            "-Qunused-arguments -Wno-error -Wno-unknown-warning-option "
            f"-ffile-prefix-map={src}=/usr/src -ffile-prefix-map={objdir}=/usr/obj")


# name: version command; the first word is the program, which ci/packages
# maps to the Debian package that brings it.
LINUX_TOOLS = {
    "bmake": ["bmake", "-r", "-f", "/dev/null", "-V", "MAKE_VERSION"],
    "clang": ["clang", "--version"],
    "ld.lld": ["ld.lld", "--version"],
    "llvm-nm": ["llvm-nm", "--version"],
    "llvm-objcopy": ["llvm-objcopy", "--version"],
    "yacc": ["byacc", "-V"],
    "lex": ["flex", "--version"],
    "awk": ["original-awk", "-version"],
    "uudecode": ["uudecode", "--version"],
    "cc": ["cc", "--version"],
}
FREEBSD_TOOLS = {
    "make": ["make", "-r", "-f", "/dev/null", "-V", "MAKE_VERSION"],
    "cc": ["cc", "--version"],
    "uname": ["uname", "-srm"],
}


def kernel_dir(objdir, src, kernconf, objtree_suffix=""):
    """MAKEOBJDIRPREFIX's rule: <prefix>[/<target>.<arch>]<abs src>/sys/<KERNCONF>."""
    return pathlib.Path(f"{objdir}{objtree_suffix}{src}") / "sys" / kernconf


def cross_suffix(target):
    """The object tree level FreeBSD's Makefile.inc1 adds for a cross build."""
    return f"/{target.name}.{target.arch}"


def first_error(log_text):
    lines = [l for l in log_text.splitlines() if not l.startswith(STEP_MARK)]
    for pattern in ERROR_PATTERNS:
        for line in lines:
            if pattern.match(line):
                return line.strip()
    return (lines or ["(build.log is empty)"])[-1].strip()


def tool_versions(tools, system):
    """{name: first line of its version output}; InfraError naming the package when absent."""
    versions = {}
    for name, argv in tools.items():
        if not shutil.which(argv[0]):
            if system == "FreeBSD":
                raise InfraError(f"{argv[0]} not found: this FreeBSD host lacks its base system tools")
            raise tool.missing(argv[0], "kernel build")
        proc = subprocess.run(argv, capture_output=True, text=True)
        versions[name] = ((proc.stdout or proc.stderr).strip().splitlines() or ["?"])[0]
    return versions


def tree_version(src):
    """__FreeBSD_version of the tree, or None when sys/sys/param.h does not say."""
    try:
        found = VERSION_RE.search((src / "sys" / "sys" / "param.h").read_text(errors="replace"))
    except OSError:
        return None
    return int(found.group(1)) if found else None


def check_era(src, origin):
    version = tree_version(src)
    if version not in ERA:
        what = f"FreeBSD {version // 100000} (__FreeBSD_version {version})" if version else "of no known era"
        raise BadInput(f"{origin} {src} is {what} by sys/sys/param.h; this build drives FreeBSD 10 trees "
                       "(the 2013 amd64_xen_pv branch, the 10.x releases): point FREEBSD_SRC at one")
    return version


def stale(target, inputs):
    """True when target is missing or older than any input that exists."""
    if not target.exists():
        return True
    mtime = target.stat().st_mtime
    return any(p.exists() and p.stat().st_mtime > mtime for p in inputs)


class Build:
    """One kernel build: runs steps into build.log and says which ran."""

    def __init__(self, src, kernconf, objdir, out_dir, epoch, target="amd64"):
        self.src, self.kernconf, self.objdir = src, kernconf, objdir
        self.target = TARGETS[target]
        self.conf_dir = src / "sys" / target / "conf"
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
        inputs = [self.conf_dir / self.kernconf, *more_inputs]
        inputs += [self.src / p.format(t=self.target.name) for p in CONFIG_INPUTS]
        return stale(compile_dir / CONFIGURED, inputs)

    @staticmethod
    def configured(compile_dir, done):
        """Marks (or, before config runs, unmarks) config and depend as done:
        a run that fails between them leaves no mark and is redone."""
        stamp = compile_dir / CONFIGURED
        if done:
            stamp.touch()
        else:
            stamp.unlink(missing_ok=True)


class LinuxBuild(Build):
    """The cross-build: the steps Makefile.inc1's buildkernel takes."""

    tools = LINUX_TOOLS
    experimental = True

    def kernel_dir(self):
        return kernel_dir(self.objdir, self.src, self.kernconf, cross_suffix(self.target))

    def make_vars(self):
        t = self.target
        # .MAKE.EXPAND_VARIABLES: the kernel Makefiles feed `make -V` output to
        # mkdep and expect it expanded, as FreeBSD's make of the time printed it.
        # WITHOUT_FORMAT_EXTENSIONS: 10.x's sys/conf/kern.mk passes clang
        # -fformat-extensions (FreeBSD's own clang only) unless this knob of
        # its bsd.own.mk is set, and then -Wno-format; a tree without the knob
        # ignores the variable.
        return [".MAKE.EXPAND_VARIABLES=yes", f"MACHINE={t.name}", f"MACHINE_ARCH={t.arch}",
                f"MACHINE_CPUARCH={t.cpuarch}", f"CC={cross_cc(self.src, self.objdir, t.name)}", "LD=ld.lld",
                "NM=llvm-nm", "OBJCOPY=llvm-objcopy", "OBJDUMP=llvm-objdump", "SIZE=llvm-size", "AR=llvm-ar",
                "RANLIB=llvm-ranlib", "AWK=original-awk", "WERROR=", "NO_WERROR=yes",
                "WITHOUT_FORMAT_EXTENSIONS=yes", "NO_MODULES=yes", "WITHOUT_CTF=yes", "NO_CTF=yes"]

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
            self.configured(compile_dir, False)
            self.run("config", [config_tool, "-d", compile_dir, self.kernconf], cwd=self.conf_dir)
            self.run("depend", [*kernel_make, "depend"], cwd=compile_dir)
            self.configured(compile_dir, True)
        self.run("all", [*kernel_make, JOBS, "all"], cwd=compile_dir)
        return compile_dir / "kernel"


class FreeBsdBuild(Build):
    """The branch's own buildkernel, on a FreeBSD host."""

    tools = FREEBSD_TOOLS
    experimental = False

    def kernel_dir(self):
        # A cross build (host not the target) puts the object tree one level deeper.
        suffix = "" if platform.machine() == self.target.arch else cross_suffix(self.target)
        return kernel_dir(self.objdir, self.src, self.kernconf, suffix)

    def build(self):
        env = dict(self.env, MAKEOBJDIRPREFIX=str(self.objdir))
        common = ["-C", self.src, JOBS, f"TARGET={self.target.name}", f"TARGET_ARCH={self.target.arch}"]
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
        if (compile_dir / "kernel").is_file():
            self.configured(compile_dir, True)
        return compile_dir / "kernel"


def host_build_class(system=None):
    system = system or platform.system()
    if system == "FreeBSD":
        return FreeBsdBuild
    if system == "Linux":
        return LinuxBuild
    raise BadInput(f"kernel builds run on FreeBSD or Linux, not {system}")


def check_target(target):
    if target not in TARGETS:
        raise BadInput(f"TARGET={target!r} is not a target this build knows; use one of {', '.join(TARGETS)}")


TARGET = inputs.Rule("choice", lambda value, what, args: check_target(value))


def check_inputs(src, target, kernconf):
    """The tree, the target and the config, each BadInput in one line when wrong."""
    check_target(target)
    KERNCONF.check(kernconf, "KERNCONF")
    src = source.find_source(src)
    check_era(src, "FREEBSD_SRC")
    conf_dir = src / "sys" / target / "conf"
    if not (conf_dir / kernconf).is_file():
        # DEFAULTS (read by config itself) and NOTES (the LINT source) are not
        # kernels of their own.
        configs = sorted(p.name for p in conf_dir.iterdir()
                         if p.is_file() and p.name.isupper() and p.name not in ("DEFAULTS", "NOTES")) \
            if conf_dir.is_dir() else []
        raise BadInput(f"KERNCONF={kernconf} has no config for TARGET={target} in {conf_dir}; "
                       f"pick one of: {', '.join(configs) or 'none (the tree has no such folder)'}")
    return src


def build_kernel(out_dir, info, src=None, kernconf="XEN", objdir=None, system=None, target="amd64"):
    """Builds and copies the kernel to out_dir/kernel, filling info (result.json's
    "build") as it goes, so a failed build still records how far it got."""
    src = check_inputs(src, target, kernconf)
    objdir = pathlib.Path(inputs.output_folder(objdir or DEFAULT_OBJDIR, "OBJDIR", OBJDIR.todo)).resolve()
    cls = host_build_class(system)
    commit, commit_time = source.source_commit(src)
    build = cls(src, kernconf, objdir, out_dir, commit_time, target)
    info.update({
        "host": platform.system(), "experimental": cls.experimental, "kernconf": kernconf,
        "target": target, "objdir": str(objdir),
        "source": {"path": str(src), "commit": commit, "freebsd_version": tree_version(src),
                   "pinned": source.pinned(), "fixture": (src / FIXTURE_MARKER).exists()},
        "identity": {"user": BUILD_USER, "host": BUILD_HOST, "source_date_epoch": build.epoch},
        "build_log": str(build.log_path), "steps": build.steps})
    info["toolchain"] = tool_versions(cls.tools, system or platform.system())
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
        # Beside the kernel as in the object folder: the boot's symbolize
        # stage and gdb read its DWARF (a copy: the next build rewrites it).
        shutil.copyfile(debug, kernel.with_name("kernel.debug"))
    return kernel


def describe_kernel(path):
    """What was built, for result.json. A kernel config need not make a Xen PV
    guest (GENERIC has no PV support): the build passes either way, and the
    kernel checker's answer is recorded, its notes when it takes the kernel,
    else its reason as "not_bootable"."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        info = {"path": str(path), "sha256": kernelcheck.sha256(path), "elf_class": elf.elfclass,
                "machine": elf["e_machine"], "osabi": elf["e_ident"]["EI_OSABI"]}
    try:
        info.update(kernelcheck.check_kernel(str(path)))
    except BadInput as e:
        info["not_bootable"] = e.message
    return info


def run(args):
    with recorded(args.out, "kernel") as record:
        info = record["build"] = {}
        try:
            with record.stage("build"):
                kernel = build_kernel(record.out_dir, info, src=args.src, kernconf=args.kernconf,
                                      objdir=args.objdir, target=args.target)
        except HarnessError as e:
            info.update(e.details)
            raise
        record["kernel"] = describe_kernel(kernel)
    status = record.finish(Verdict.PASS)
    what = ("FIXTURE build (a test tree, not FreeBSD)" if info["source"]["fixture"]
            else "EXPERIMENTAL Linux cross-build" if info["experimental"] else "buildkernel")
    print(f"xenboot: kernel {kernel} ({what}; sha256 {record['kernel']['sha256']}; "
          f"steps: {', '.join(info['steps']) or 'none'})")
    return status


def add_target_argument(parser):
    inputs.option(parser, "--target", default="amd64", help=f"FreeBSD TARGET: {' or '.join(TARGETS)} (default amd64)",
                  check=TARGET)


def add_parser(subparsers):
    p = subparsers.add_parser("kernel", help="build a FreeBSD kernel (XEN) from freebsd-src",
                              description=__doc__.splitlines()[0])
    option = functools.partial(inputs.option, p)
    option("--kernconf", default="XEN", help="kernel config in sys/<target>/conf (default XEN)", check=KERNCONF)
    add_target_argument(p)
    option("--src", help="FreeBSD source tree (default: $FREEBSD_SRC, else the freebsd-src submodule)",
           check=source.SRC)
    option("--objdir", help=f"object folder, MAKEOBJDIRPREFIX (default {DEFAULT_OBJDIR})", check=OBJDIR)
    option("--out", help="run folder (default: out/<timestamp>-<id>/)", check=result.out_input())
    p.set_defaults(func=run)
