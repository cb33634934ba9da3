"""The FreeBSD 10 drivers: the 2013 amd64_xen_pv branch of 10-CURRENT and
the 10.x releases.

On a FreeBSD host it is the tree's own `make buildkernel` (with
`kernel-toolchain` first when the object tree has none). On Linux it is a
cross-build driver: config(8) is built from the tree with the shims in
ci/freebsd-compat, then config and the kernel's own Makefiles run under
Debian's bmake with clang targeting FreeBSD 10 and ld.lld. Each workaround
a real tree needs lives in the driver or ci/freebsd-compat, saying which
tree needs it and why.

A second run with nothing changed does no work: config and depend run only
when their inputs are newer than the stamp the last successful depend left,
so a failed config or depend is redone. What still differs between two
object folders is the folder itself, which 10.x's newvers.sh writes into
the kernel's version string (README, "The FreeBSD build").
"""
import os
import pathlib
import platform

from xenboot.build.driver import (JOBS, TARGETS, Build, cross_suffix, kernel_dir, stale)
from xenboot.core import paths

COMPAT = paths.REPO / "ci" / "freebsd-compat"
# What config(8) reads ({t}: the target): when none is newer than the stamp
# of the last successful depend, config and depend are skipped.
CONFIG_INPUTS = ("sys/conf/files", "sys/conf/files.{t}", "sys/conf/options",
                 "sys/conf/options.{t}", "sys/conf/Makefile.{t}", "sys/{t}/conf/DEFAULTS")
CONFIGURED = ".xenboot-configured"


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


class Freebsd10Build(Build):
    """Both FreeBSD 10 drivers: the compat shims on PATH (10.x's newvers.sh
    needs the date shim for SOURCE_DATE_EPOCH), and the configured stamp."""

    def base_env(self):
        env = super().base_env()
        env["PATH"] = f"{COMPAT / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
        return env

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


class LinuxBuild(Freebsd10Build):
    """The cross-build: the steps Makefile.inc1's buildkernel takes."""

    tools = LINUX_TOOLS
    what = "EXPERIMENTAL Linux cross-build"
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


class FreeBsdBuild(Freebsd10Build):
    """The branch's own buildkernel, on a FreeBSD host."""

    tools = FREEBSD_TOOLS

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
