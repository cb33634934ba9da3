"""Xen's hypervisor built from Debian's source package, with .config lines
over its defconfig: the lab's `debug` flavour (lab.toml [flavours]).

Only the hypervisor (xen/), not the tools: the lab's tools are Debian's
packages of the same version. Output in `dest`: xen.elf (the multiboot
image QEMU loads), xen.gz, xen-syms (symbols, for reading Xen's stack
traces), config (the resolved .config) and build.log.

The build is reproducible: what Xen's Makefile would take from the clock
(when it was built, in `xl info` and the boot banner) comes from the
source package instead, with the version and maintainer Debian's build
gives it, and the folder it is built in is mapped away in the debug info
(which the build-id note hashes), so that two machines that build the same
source and config get the same xen.gz.
"""
import gzip
import os
import shutil
import subprocess
import time

from xenboot.core import tool
from xenboot.core.errors import InfraError


# Part of the built hypervisor's cache key: changed when the way it is
# built changes (2: reproducible).
RECIPE = 2
# What the build folder is called in the debug info.
SOURCE_NAME = "/usr/src/xen"


def build_environment(tree):
    """Make's environment with when and by whom from the source package,
    as Debian's own build sets them: the date of debian/changelog's last
    entry (SOURCE_DATE_EPOCH), the package version and maintainer (the
    banner Debian's patch prints; `lsb_release -is` gives the distribution)."""
    fields = dict(line.split(": ", 1) for line in tool.run(
        ["dpkg-parsechangelog", "-l", os.path.join(tree, "debian", "changelog")],
        "dpkg-parsechangelog").stdout.splitlines() if ": " in line and not line.startswith(" "))
    with open(os.path.join(tree, "debian", "control")) as f:
        maintainer = next(line.split(":", 1)[1].strip() for line in f if line.startswith("Maintainer:"))
    when = time.gmtime(int(fields["Timestamp"]))
    return dict(os.environ, SOURCE_DATE_EPOCH=fields["Timestamp"], LC_ALL="C",
                XEN_BUILD_DATE=time.strftime("%a %b %e %H:%M:%S UTC %Y", when),
                XEN_BUILD_TIME=time.strftime("%H:%M:%S", when),
                DEB_VERSION=fields["Version"], DEB_MAINTAINER=maintainer,
                EXTRA_CFLAGS_XEN_CORE=f"-ffile-prefix-map={os.path.abspath(tree)}={SOURCE_NAME}")


def _make(tree, args, log, env):
    argv = ["make", "-C", os.path.join(tree, "xen"), *args]
    log.write(f"$ {' '.join(argv)}\n".encode())
    log.flush()
    try:
        proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    except FileNotFoundError:
        raise tool.missing("make", "building Xen") from None
    if proc.returncode != 0:
        raise InfraError(f"building Xen: make {' '.join(args)} failed (see {log.name})")


def build(dsc, config_lines, dest):
    """Unpack the source `dsc`, build its hypervisor into `dest`; the
    build's seconds."""
    tree = os.path.join(dest, "tree")
    tool.run(["dpkg-source", "--no-check", "-x", dsc, tree], f"dpkg-source -x {os.path.basename(dsc)}")
    env = build_environment(tree)
    start = time.monotonic()
    with open(os.path.join(dest, "build.log"), "wb") as log:
        _make(tree, ["defconfig"], log, env)
        config = os.path.join(tree, "xen", ".config")
        with open(config, "a") as f:
            f.writelines(line + "\n" for line in config_lines)
        _make(tree, ["olddefconfig"], log, env)
        with open(config) as f:
            resolved = set(f.read().splitlines())
        dropped = [line for line in config_lines if line not in resolved]
        if dropped:
            raise InfraError(f"building Xen: Kconfig dropped {', '.join(dropped)} "
                             f"(a dependency missing?): see {config}")
        _make(tree, [f"-j{os.cpu_count() or 1}"], log, env)
    seconds = round(time.monotonic() - start, 1)
    built = os.path.join(tree, "xen")
    shutil.copyfile(os.path.join(built, "xen.gz"), os.path.join(dest, "xen.gz"))
    shutil.copyfile(os.path.join(built, "xen-syms"), os.path.join(dest, "xen-syms"))
    shutil.copyfile(config, os.path.join(dest, "config"))
    with gzip.open(os.path.join(dest, "xen.gz")) as z, open(os.path.join(dest, "xen.elf"), "wb") as out:
        shutil.copyfileobj(z, out)
    shutil.rmtree(tree)
    return seconds
