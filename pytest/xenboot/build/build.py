"""`xenboot kernel`: build a FreeBSD kernel (XEN by default) from freebsd-src
or another FreeBSD tree, for amd64 or i386.

The tree's era (sys/sys/param.h's __FreeBSD_version) and the host pick the
driver: a FreeBSD 10 tree is built by freebsd10.py (the tree's own
buildkernel on FreeBSD, a cross-build on Linux), a FreeBSD 12.2-14.x tree
on Linux by makepy.py (the tree's own tools/build/make.py); any other tree
is BAD_INPUT. The source tree is only read, and checked for that.

The kernel lands where MAKEOBJDIRPREFIX puts it (driver.py has the rules);
the driver checks it is there and copies it into the run folder with
build.log, the source commit, the toolchain versions, the steps and their
seconds, and sha256s. The build identity (user, host, date, compiler
banner) is fixed.
"""
import functools
import pathlib
import platform
import re
import shutil
from dataclasses import dataclass

from elftools.elf.elffile import ELFFile

from xenboot.build import driver, freebsd10, makepy, source
from xenboot.build.driver import DEFAULT_OBJDIR, TARGETS
from xenboot.core import inputs, result
from xenboot.guest import kernelcheck
from xenboot.core.errors import BadInput, BuildFailed, HarnessError, Verdict
from xenboot.core.result import recorded

KERNCONF_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
KERNCONF = inputs.Text("a kernel config name is letters, digits, _ . -",
                       problem=lambda name: None if KERNCONF_RE.match(name) else "is not a config name")
OBJDIR = inputs.OutputFolder("give a folder this user can write for the object files")
FIXTURE_MARKER = "XENBOOT-FIXTURE"
VERSION_RE = re.compile(r"^#define\s+__FreeBSD_version\s+(\d+)", re.M)
REVISION_RE = re.compile(r'^REVISION="([^"]+)"', re.M)


@dataclass(frozen=True)
class Era:
    """The trees one set of drivers builds, by __FreeBSD_version; `drivers`
    maps a host system to its Build class, `needs` names what they run
    from the tree."""
    name: str
    versions: range
    drivers: dict
    needs: tuple = ()


# Other eras differ in their mk files and compiler (9.x: gcc; 11 and 12.0-12.1:
# a different config(8) and toolchain, and no make.py), which no driver models.
ERAS = (
    Era("FreeBSD 10 trees (the 2013 amd64_xen_pv branch, the 10.x releases)", range(1000000, 1100000),
        {"Linux": freebsd10.LinuxBuild, "FreeBSD": freebsd10.FreeBsdBuild}),
    Era("FreeBSD 12.2-14.x trees (with their own tools/build/make.py)", range(1202000, 1500000),
        {"Linux": makepy.MakePyBuild}, needs=(makepy.MAKE_PY,)),
)


def tree_version(src):
    """__FreeBSD_version of the tree, or None when sys/sys/param.h does not say."""
    try:
        found = VERSION_RE.search((src / "sys" / "sys" / "param.h").read_text(errors="replace"))
    except OSError:
        return None
    return int(found.group(1)) if found else None


def tree_release(src, version):
    """How the tree names itself: newvers.sh's REVISION (13.2), else the major version."""
    try:
        found = REVISION_RE.search((src / "sys" / "conf" / "newvers.sh").read_text(errors="replace"))
    except OSError:
        found = None
    return found.group(1) if found else str(version // 100000)


def check_era(src, origin, system=None):
    """The Build class for this tree on this host; BadInput naming the version
    found and the eras built when there is none."""
    system = system or platform.system()
    if system not in ("FreeBSD", "Linux"):
        raise BadInput(f"kernel builds run on FreeBSD or Linux, not {system}")
    version = tree_version(src)
    what = (f"FreeBSD {tree_release(src, version)} (__FreeBSD_version {version})" if version
            else "of no known era")
    era = next((e for e in ERAS if version in e.versions), None)
    if era is None or system not in era.drivers:
        eras = " and ".join(e.name for e in ERAS if system in e.drivers)
        raise BadInput(f"{origin} {src} is {what} by sys/sys/param.h; this build drives {eras} on {system}: "
                       "point FREEBSD_SRC at one")
    missing = [p for p in era.needs if not (src / p).is_file()]
    if missing:
        raise BadInput(f"{origin} {src} is {what} by sys/sys/param.h but has no {missing[0]}, which builds "
                       "it: point FREEBSD_SRC at a whole tree")
    return era.drivers[system]


def check_target(target):
    if target not in TARGETS:
        raise BadInput(f"TARGET={target!r} is not a target this build knows; use one of {', '.join(TARGETS)}")


TARGET = inputs.Rule("choice", lambda value, what, args: check_target(value))


def check_inputs(src, target, kernconf, system=None):
    """The tree, the target and the config, each BadInput in one line when
    wrong; (the tree, the Build class its era and the host call for)."""
    check_target(target)
    KERNCONF.check(kernconf, "KERNCONF")
    src = source.find_source(src)
    driver_class = check_era(src, "FREEBSD_SRC", system)
    conf_dir = src / "sys" / target / "conf"
    if not (conf_dir / kernconf).is_file():
        # DEFAULTS (read by config itself) and NOTES (the LINT source) are not
        # kernels of their own.
        configs = sorted(p.name for p in conf_dir.iterdir()
                         if p.is_file() and p.name.isupper() and p.name not in ("DEFAULTS", "NOTES")) \
            if conf_dir.is_dir() else []
        raise BadInput(f"KERNCONF={kernconf} has no config for TARGET={target} in {conf_dir}; "
                       f"pick one of: {', '.join(configs) or 'none (the tree has no such folder)'}")
    return src, driver_class


def build_kernel(out_dir, info, src=None, kernconf="XEN", objdir=None, system=None, target="amd64"):
    """Builds and copies the kernel to out_dir/kernel, filling info (result.json's
    "build") as it goes, so a failed build still records how far it got."""
    src, cls = check_inputs(src, target, kernconf, system)
    objdir = pathlib.Path(inputs.output_folder(objdir or DEFAULT_OBJDIR, "OBJDIR", OBJDIR.todo)).resolve()
    commit, commit_time = source.source_commit(src)
    build = cls(src, kernconf, objdir, out_dir, commit_time, target)
    info.update({
        "host": platform.system(), "driver": cls.what, "experimental": cls.experimental,
        "kernconf": kernconf, "target": target, "objdir": str(objdir),
        "source": {"path": str(src), "commit": commit, "freebsd_version": tree_version(src),
                   "pinned": source.pinned(), "fixture": (src / FIXTURE_MARKER).exists()},
        "identity": build.identity(), "build_log": str(build.log_path), "steps": build.steps,
        "step_seconds": build.seconds})
    info["toolchain"] = driver.tool_versions(cls.tools, system or platform.system(), objdir)
    watch = driver.SourceWatch(src, objdir)
    try:
        built = build.build()
    finally:
        written = watch.written()
        if written:
            info["source"]["written"] = written[:20]
    if written:
        raise BuildFailed(f"the build wrote into the source tree {src} ({written[0]}"
                          f"{f' and {len(written) - 1} more' if len(written) > 1 else ''}): "
                          "it must only read it", step="tree-check", error=f"wrote {written[0]}")
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
    what = "FIXTURE build (a test tree, not FreeBSD)" if info["source"]["fixture"] else info["driver"]
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
