"""The modern driver: FreeBSD 12.2-14.x trees built on Linux by the tree's
own tools/build/make.py, FreeBSD's supported cross-build, with Debian's
clang-14 and lld-14 as the cross toolchain.

make.py bootstraps bmake into the object folder, then runs the tree's
Makefile.inc1 with it: `kernel-toolchain` (the host tools, config(8) and
the rest; without clang, lld and the LLVM binutils, which Debian's
clang-14 stands in for) once per object folder, then `buildkernel` every
time (the tree's own incremental build: without clean, a no-change rebuild
only walks the folders). The tree's REPRODUCIBLE_BUILD (on by default)
keeps the user, host, date and object folder out of the kernel's version
string; its copyright year comes from the tree's COPYRIGHT.
"""
import sys

from xenboot.build.driver import JOBS, Build, objtop_kernel_dir

MAKE_PY = "tools/build/make.py"
# Debian's clang-14 and lld-14 put clang, clang++, clang-cpp and ld.lld here.
CROSS_BINDIR = "/usr/lib/llvm-14/bin"
# What kernel-toolchain need not build: Debian's clang-14 is the cross compiler.
WITHOUT_LLVM = ("-DWITHOUT_CLANG", "-DWITHOUT_LLD", "-DWITHOUT_LLDB", "-DWITHOUT_LLVM_BINUTILS")
TOOLCHAIN_DONE = ".xenboot-kernel-toolchain"
TOOLS = {
    "clang": ["clang-14", "--version"],
    "ld.lld": ["ld.lld-14", "--version"],
    # make.py builds the host tools (config(8), ...) with cc and c++.
    "cc": ["cc", "--version"],
    "c++": ["c++", "--version"],
    "python3": [sys.executable, "--version"],
}


class MakePyBuild(Build):
    tools = TOOLS
    what = "cross-build by the tree's tools/build/make.py"

    def base_env(self):
        env = super().base_env()
        # newvers.sh would read it with FreeBSD's `date -r <seconds>`, which
        # the host's date (make.py links it into the build's PATH) takes for
        # a file name and fails; REPRODUCIBLE_BUILD prints no date anyway.
        del env["SOURCE_DATE_EPOCH"]
        return dict(env, MAKEOBJDIRPREFIX=str(self.objdir))

    def kernel_dir(self):
        return objtop_kernel_dir(self.objdir, self.src, self.kernconf, self.target)

    def make_py(self, *argv):
        t = self.target
        return [sys.executable, self.src / MAKE_PY, f"--cross-bindir={CROSS_BINDIR}",
                "--cross-compiler-type=clang", "--no-clean", f"TARGET={t.name}", f"TARGET_ARCH={t.arch}",
                JOBS, *argv]

    def build(self):
        self.objdir.mkdir(parents=True, exist_ok=True)
        if not (self.objdir / "bmake-install" / "bin" / "bmake").exists():
            # bmake's boot-strap runs its unit tests with their folder as the
            # working directory, so they write into contrib/bmake/unit-tests;
            # an empty TESTS (the variable its Makefile hands the unit tests)
            # runs none. The -V answers without building anything.
            self.run("bmake", self.make_py("-V", "MAKE_VERSION"), cwd=self.src, env=dict(self.env, TESTS=""))
        compile_dir = self.kernel_dir()
        done = compile_dir.parent.parent / TOOLCHAIN_DONE
        if not done.exists():
            self.run("kernel-toolchain", self.make_py("kernel-toolchain", *WITHOUT_LLVM), cwd=self.src)
            done.touch()
        self.run("buildkernel", self.make_py("buildkernel", f"KERNCONF={self.kernconf}", "NO_MODULES=yes"),
                 cwd=self.src)
        return compile_dir / "kernel"
