"""Xen's hypervisor built from Debian's source package, with .config lines
over its defconfig: the lab's `debug` flavour (lab.toml [flavours]).

Only the hypervisor (xen/), not the tools: the lab's tools are Debian's
packages of the same version. Output in `dest`: xen.elf (the multiboot
image QEMU loads), xen.gz, xen-syms (symbols, for reading Xen's stack
traces), config (the resolved .config) and build.log.
"""
import gzip
import os
import shutil
import subprocess
import time

from xenboot import tool
from xenboot.errors import InfraError


def _make(tree, args, log):
    argv = ["make", "-C", os.path.join(tree, "xen"), *args]
    log.write(f"$ {' '.join(argv)}\n".encode())
    log.flush()
    try:
        proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise tool.missing("make", "building Xen") from None
    if proc.returncode != 0:
        raise InfraError(f"building Xen: make {' '.join(args)} failed (see {log.name})")


def build(dsc, config_lines, dest):
    """Unpack the source `dsc`, build its hypervisor into `dest`; the
    build's seconds."""
    tree = os.path.join(dest, "tree")
    tool.run(["dpkg-source", "--no-check", "-x", dsc, tree], f"dpkg-source -x {os.path.basename(dsc)}")
    start = time.monotonic()
    with open(os.path.join(dest, "build.log"), "wb") as log:
        _make(tree, ["defconfig"], log)
        config = os.path.join(tree, "xen", ".config")
        with open(config, "a") as f:
            f.writelines(line + "\n" for line in config_lines)
        _make(tree, ["olddefconfig"], log)
        with open(config) as f:
            resolved = set(f.read().splitlines())
        dropped = [line for line in config_lines if line not in resolved]
        if dropped:
            raise InfraError(f"building Xen: Kconfig dropped {', '.join(dropped)} "
                             f"(a dependency missing?): see {config}")
        _make(tree, [f"-j{os.cpu_count() or 1}"], log)
    seconds = round(time.monotonic() - start, 1)
    built = os.path.join(tree, "xen")
    shutil.copyfile(os.path.join(built, "xen.gz"), os.path.join(dest, "xen.gz"))
    shutil.copyfile(os.path.join(built, "xen-syms"), os.path.join(dest, "xen-syms"))
    shutil.copyfile(config, os.path.join(dest, "config"))
    with gzip.open(os.path.join(dest, "xen.gz")) as z, open(os.path.join(dest, "xen.elf"), "wb") as out:
        shutil.copyfileobj(z, out)
    shutil.rmtree(tree)
    return seconds
