"""`xenboot freebsd`: what `make boot` does without KERNEL=. Builds the XEN
kernel from freebsd-src, makes the root image, boots both on the Xen host
with the freebsd-xen-pv spec.

The stages leave their own folders inside the run folder (kernel/, image/);
the run folder's result.json is the boot's, with the build and image
durations added, or, when a stage before the boot fails, that stage's
verdict (BUILD_FAILED, BAD_INPUT with the fetch hint when freebsd-src is not
checked out).
"""
import contextlib
import functools
import os
import pathlib

from xenboot.build import build, source
from xenboot.core import inputs, result
from xenboot.image import image
from xenboot.judge import spec as specs
from xenboot.pipeline.boot import CMDLINE, MEMORY, BootRequest, add_core_option, boot, hand_over, summarize
from xenboot.host.hosts import HOST
from xenboot.host.lab import background, config as labconfig, remote
from xenboot.core.result import recorded

ROOT_DEVICE = "vfs.root.mountfrom=ufs:/dev/xbd0"
# The spec a target's XEN kernel is judged by when SPEC is not given.
SPECS = {"amd64": "freebsd-xen-pv", "i386": "freebsd-xen-pv-i386"}
# Guest MiB when none is given: the 128 other kernels get is too little for
# a FreeBSD world, and the nightly's rows name their own.
DEFAULT_MEMORY_MB = 256


def kernel_cmdline(extra):
    """The branch's xen_setbootenv() splits its command line on ',' into
    kernel environment variables (no spaces; ",," ends the environment),
    so the root is one of them, first, not xl's `root=`, which xl would
    prepend with a space; the user's words come after it. xbd0 is the
    first blkfront disk: the run's copy of the root image, as xvda."""
    return ",".join(filter(None, [ROOT_DEVICE, extra.strip(",")]))


# What Xen gets is the root device, a comma, then these words.
EXTRA_CMDLINE = inputs.Rule("text", lambda value, what, args: CMDLINE.check(kernel_cmdline(value), what))


def build_and_image(kernel_dir, image_dir, info, src=None, kernconf="XEN", target="amd64", objdir=None,
                    world=None, stage=lambda name: contextlib.nullcontext()):
    """FreeBSD's recipe, in one place: the XEN kernel built into kernel_dir
    (`info` filled as it goes, result.json's "build") and, unless image_dir
    is None, the root image with the target's init made into image_dir.
    Returns (kernel, disk image or None, the image's record or None)."""
    with stage("build"):
        os.makedirs(kernel_dir, exist_ok=True)
        kernel = build.build_kernel(kernel_dir, info, src=src, kernconf=kernconf, objdir=objdir, target=target)
    if image_dir is None:
        return kernel, None, None
    with stage("image"):
        made = image.make_image(image_dir, world=world, target=target)
    return kernel, pathlib.Path(image_dir) / made["image"], made


def freebsd_flavour(host, lab=None, lab_config=None):
    """The lab flavour a FreeBSD kernel boots on: `lab`, else lab.toml's
    FreeBSD default (none on HOST=xl, which runs this machine's Xen)."""
    if host != "lab":
        return lab
    return lab or labconfig.flavour(labconfig.load(lab_config), freebsd=True)[0]


def _progress(line):
    print(line, flush=True)


def run(args):
    lab = freebsd_flavour(args.host, args.lab)
    with contextlib.ExitStack() as stack:
        with recorded(args.out, "freebsd") as record:
            out = record.out_dir
            # The lab starts while the kernel and the image are made: a
            # rebuild hides most of its start.
            early = None if args.host != "lab" or remote.server_socket(out, lab, labconfig.PV_PROFILE) else \
                background.start_if_built(stack, out, os.path.join(out, "share"), lab, _progress)
            info = record["build"] = {}
            kernel, disk, built = build_and_image(os.path.join(out, "kernel"), os.path.join(out, "image"), info,
                                                  src=args.src, kernconf=args.kernconf, target=args.target,
                                                  objdir=args.objdir, world=args.world, stage=record.stage)
        req = BootRequest(kernel=str(kernel), spec=args.spec or SPECS[args.target], interactive=args.interactive,
                          core=args.core, host=args.host, memory_mb=args.memory_mb, lab=lab,
                          disk=str(disk), out_dir=out, cmdline=kernel_cmdline(args.cmdline))
        booted = boot(req, progress=_progress, then=hand_over if args.interactive else None, early_host=early)
    booted["build"] = info
    booted["image"] = {k: built[k] for k in ("image", "sha256", "bytes", "format", "target")}
    booted["durations"] = record["durations"] | booted["durations"]
    message = booted["message"]
    if info["source"]["fixture"]:
        # A test tree's kernel: whatever it did, it is not a FreeBSD result.
        booted["fixture"] = True
        message = f"FIXTURE kernel (a test tree, not FreeBSD): {message}"
    status = booted.finish(booted["verdict"], message)
    summarize(booted)
    return status


def add_parser(sub):
    p = sub.add_parser("freebsd", help="build the FreeBSD XEN kernel and root image, boot them")
    option = functools.partial(inputs.option, p)
    option("--src", help="FreeBSD source (default: $FREEBSD_SRC, else freebsd-src)", check=source.SRC)
    option("--kernconf", default="XEN", check=build.KERNCONF)
    build.add_target_argument(p)
    option("--objdir", help="MAKEOBJDIRPREFIX (default: build/obj)", check=build.OBJDIR)
    option("--world", help="a FreeBSD world for the root image (DESTDIR or base.txz)", check=image.WORLD)
    option("--spec", help="default: freebsd-xen-pv, or freebsd-xen-pv-i386 for TARGET=i386",
           check=specs.SPEC_INPUT)
    option("--cmdline", default="", help="more kernel environment, comma separated", check=EXTRA_CMDLINE)
    option("--host", default="lab", check=HOST)
    option("--lab", help="the lab's Xen: debug or debian (default: lab.toml [flavours] freebsd)",
           check=labconfig.FLAVOUR_INPUT)
    option("--memory", dest="memory_mb", default=DEFAULT_MEMORY_MB, check=MEMORY,
           help="guest MiB (the branch's amd64 kernel gets past pmap_bootstrap at 128, not 256)")
    p.add_argument("--interactive", action="store_true",
                   help="after the spec, hand the live console to this terminal (as `xenboot boot`)")
    add_core_option(p)
    option("--out", help="run folder (default out/<UTC time>-<id>)", check=result.out_input())
    p.set_defaults(func=run)
