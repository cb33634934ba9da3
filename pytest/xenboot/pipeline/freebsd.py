"""`xenboot freebsd`: what `make boot` does without KERNEL=. Builds the XEN
kernel from freebsd-src, makes the root image, boots both on the Xen host
with the freebsd-xen-pv spec.

The stages leave their own folders inside the run folder (kernel/, image/);
the run folder's result.json is the boot's, with the build and image
durations added, or, when a stage before the boot fails, that stage's
verdict (BUILD_FAILED, BAD_INPUT with the fetch hint when freebsd-src is not
checked out).
"""
import functools
import os

from xenboot.build import build, source
from xenboot.core import inputs, paths, result
from xenboot.image import image
from xenboot.judge import spec as specs
from xenboot.pipeline.boot import CMDLINE, MEMORY, BootRequest, boot, hand_over, summarize
from xenboot.host.hosts import HOST
from xenboot.host.lab import config as labconfig
from xenboot.core.result import recorded

ROOT_DEVICE = "vfs.root.mountfrom=ufs:/dev/xbd0"
# The spec a target's XEN kernel is judged by when SPEC is not given.
SPECS = {"amd64": "freebsd-xen-pv", "i386": "freebsd-xen-pv-i386"}


def kernel_cmdline(extra):
    """The branch splits its command line on ',' into kernel environment
    variables; the root device comes first, the user's words after it."""
    return ",".join(filter(None, [ROOT_DEVICE, extra.strip(",")]))


# What Xen gets is the root device, a comma, then these words.
EXTRA_CMDLINE = inputs.Rule("text", lambda value, what, args: CMDLINE.check(kernel_cmdline(value), what))


def freebsd_flavour(host, lab=None, lab_config=None):
    """The lab flavour a FreeBSD kernel boots on: `lab`, else lab.toml's
    FreeBSD default (none on HOST=xl, which runs this machine's Xen)."""
    if host != "lab":
        return lab
    return lab or labconfig.flavour(labconfig.load(lab_config), freebsd=True)[0]


def run(args):
    with recorded(args.out, "freebsd") as record:
        out = record.out_dir
        info = record["build"] = {}
        with record.stage("build"):
            os.makedirs(os.path.join(out, "kernel"), exist_ok=True)
            kernel = build.build_kernel(os.path.join(out, "kernel"), info, src=args.src,
                                        kernconf=args.kernconf, objdir=args.objdir, target=args.target)
        with record.stage("image"):
            built = image.make_image(os.path.join(out, "image"), world=args.world, target=args.target)
    req = BootRequest(kernel=str(kernel), spec=args.spec or SPECS[args.target], cmdline=kernel_cmdline(args.cmdline),
                      interactive=args.interactive,
                      host=args.host, memory_mb=args.memory_mb, lab=freebsd_flavour(args.host, args.lab),
                      disk=os.path.join(out, "image", built["image"]), out_dir=out,
                      template=str(paths.CONFIGS / "xl" / "freebsd.cfg.in"))
    booted = boot(req, progress=lambda line: print(line, flush=True),
                  then=hand_over if args.interactive else None)
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
    option("--memory", dest="memory_mb", default=256, check=MEMORY,
           help="guest MiB (the branch's amd64 kernel gets past pmap_bootstrap at 128, not 256)")
    p.add_argument("--interactive", action="store_true",
                   help="after the spec, hand the live console to this terminal (as `xenboot boot`)")
    option("--out", help="run folder (default out/<UTC time>-<id>)", check=result.out_input())
    p.set_defaults(func=run)
