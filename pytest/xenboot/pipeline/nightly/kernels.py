"""The nightly's kernels stage: every kernel the matrix names, had once for all
its rows (the probe built, Debian's Linux from the lab cache, FreeBSD built
and imaged from freebsd-src, a file on disk), each with its own folder
kernels/<name>/ and result.json."""
import os

from xenboot.build import driver, source
from xenboot.core import paths, result, tool
from xenboot.core.errors import BadInput, BuildFailed, HarnessError, InfraError, Verdict
from xenboot.guest import kernelcheck
from xenboot.host.lab import cache as labcache, config as labconfig
from xenboot.pipeline import freebsd


class NotRun(Exception):
    """A kernel that cannot be had on this machine, by no fault of the
    harness or the kernel (no FreeBSD source): its rows are marked, not run."""




def check_source(explicit=None):
    """(source tree or None, what summary.json says about it)."""
    info = {"pinned": source.pinned()}
    try:
        src = source.find_source(explicit)
    except BadInput as e:
        given = explicit or os.environ.get("FREEBSD_SRC")
        info.update(state="unusable" if given else "not checked out", message=e.message)
        return None, info
    commit, _ = source.source_commit(src)
    state = ("not a git checkout" if commit is None else
             "at the pin" if commit == info["pinned"] else
             "not pinned" if info["pinned"] is None else "differs from the pin")
    info.update(path=str(src), commit=commit, state=state)
    return src, info


def _probe_kernel(kernel, folder, ctx):
    out = paths.REPO / "build" / "probe"
    log = folder / "build.log"
    with open(log, "wb") as f:
        proc = tool.run_to_log(["make", "-C", paths.IMAGES / "probe", f"O={out}"], "building the probe", f)
    if proc.returncode != 0:
        raise BuildFailed(f"probe build failed: {driver.first_error(log.read_text(errors='replace'))}"
                          f" (see {log})")
    return out / kernel.options["file"], None


def _lab_linux_kernel(kernel, folder, ctx):
    cache = labcache.LabCache(labconfig.load(ctx.lab_config))
    cache.ensure(log=ctx.progress)
    found = sorted((cache.packages_dir / "root" / "boot").glob("vmlinuz-*"))
    if not found:
        raise InfraError(f"no vmlinuz-* in the lab cache's {cache.packages_dir}/root/boot")
    return found[-1], None


def _freebsd_kernel(kernel, folder, ctx):
    if ctx.src is None:
        raise NotRun(ctx.source_problem)
    info = {}
    try:
        built, disk, _ = freebsd.build_and_image(folder, folder / "image" if kernel.options["image"] else None,
                                                 info, src=ctx.src, kernconf=kernel.options["kernconf"],
                                                 target=kernel.options["target"], objdir=ctx.objdir)
    finally:
        result.write_json(str(folder / "build.json"), info)
    return built, disk


def _path_kernel(kernel, folder, ctx):
    # prepare_kernel's check of the kernel says what is wrong with the file.
    return paths.REPO / kernel.options["path"], None


KERNEL_MAKERS = {"probe": _probe_kernel, "lab-linux": _lab_linux_kernel,
                 "freebsd": _freebsd_kernel, "path": _path_kernel}


def prepare_kernel(kernel, ctx):
    """The kernel as the boots need it: {path, disk} on success, {verdict,
    message} when it could not be had, {not_run} when it cannot be here."""
    folder = ctx.run_dir / "kernels" / kernel.name
    folder.mkdir(parents=True, mode=0o700)
    record = result.RunRecord(str(folder), name=f"kernel {kernel.name}")
    record["source"] = {"from": kernel.source, **kernel.options}
    try:
        with record.stage("build"):
            path, disk = KERNEL_MAKERS[kernel.source](kernel, folder, ctx)
        record["kernel"] = kernelcheck.check_kernel(str(path))
    except NotRun as e:
        return {"not_run": str(e)}
    except HarnessError as e:
        record.finish(e.verdict, e.message)
        return {"verdict": e.verdict.value, "message": e.message}
    record["disk"] = str(disk) if disk else None
    record.finish(Verdict.PASS, f"kernel {path}")
    return {"path": str(path), "disk": str(disk) if disk else None, "verdict": Verdict.PASS.value,
            "sha256": record["kernel"]["sha256"], "guest_type": record["kernel"]["guest_type"]}
