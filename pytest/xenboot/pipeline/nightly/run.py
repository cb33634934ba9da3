"""The nightly's stages in order, into one run folder (see the package's
docstring): source, kernels, boots, report."""
import contextlib
import dataclasses
import datetime
import pathlib
import shutil
import time

from xenboot.console.progress import Progress
from xenboot.core import paths, result
from xenboot.core.errors import Verdict
from xenboot.guest import kernelcheck
from xenboot.pipeline.boot import Terminated
from xenboot.pipeline.nightly import kernels as kernel_stage, schedule, shard as shards
from xenboot.pipeline.nightly.matrix import DEFAULT_MATRIX, load_matrix
from xenboot.report import report, summary as summaries


@dataclasses.dataclass
class Context:
    run_dir: pathlib.Path
    progress: Progress
    lab_config: str = None
    src: pathlib.Path = None
    objdir: str = None
    source_problem: str = None
    parallel: int = 4
    hosts_started: int = 0
    # Set when a signal stops the run: what boots still report afterwards
    # (torn down under them) is not their verdict.
    stopped: str = None

    @property
    def boots_dir(self):
        return self.run_dir / "boots"

    def new_host_dir(self):
        self.hosts_started += 1
        folder = self.run_dir / "hosts" / str(self.hosts_started)
        folder.mkdir(parents=True, mode=0o700)
        return folder


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_nightly(matrix=None, out=None, parallel=4, host=None, src=None, lab_config=None,
                bench_dir=None, progress=None, objdir=None, shard=None, record_costs=False):
    """Runs every stage into one run folder; returns the summary (also in
    summary.json). The report is written even when a stage is interrupted.
    `shard` (I, N) runs only the I-th share of the rows (shard.plan);
    `record_costs` adds each row's boot time to the history shards are cut by."""
    kernels, rows = load_matrix(matrix, host)
    bench_dir = pathlib.Path(bench_dir or paths.out_root() / "bench")
    share = None
    if shard:
        costs = summaries.row_costs(bench_dir)
        shares, used = shards.plan(rows, shard[1], costs)
        share = shards.describe(*shard, shares, used, "boot seconds" if costs else "count")
        rows = [row for row in rows if row.id in share["rows"]]
    schedule.PARALLEL(parallel, "--parallel", None)
    run_dir = pathlib.Path(result.run_dir(out, "nightly"))
    # Every embedded host shares boots/ with dom0, so it exists before any host.
    (run_dir / "boots").mkdir(mode=0o700, exist_ok=True)
    ctx = Context(run_dir, progress or Progress(), lab_config=lab_config, parallel=parallel, objdir=objdir)
    matrix_path = pathlib.Path(matrix or DEFAULT_MATRIX)
    summary = {"schema": summaries.SCHEMA, "kind": "nightly", "run_dir": str(run_dir), "started": _now(),
               "matrix": {"path": str(matrix_path.resolve()), "sha256": kernelcheck.sha256(matrix_path)},
               "parallel": parallel, "stages": {}, "interrupted": False}
    if share:
        summary["shard"] = share
    # The matrix as run, next to what it produced (--kernels wrote it there).
    with contextlib.suppress(shutil.SameFileError):
        shutil.copyfile(matrix_path, run_dir / "matrix.toml")
    started = time.monotonic()

    @contextlib.contextmanager
    def stage(name):
        t0 = time.monotonic()
        try:
            yield
        finally:
            summary["stages"][name] = {"seconds": round(time.monotonic() - t0, 3)}

    try:
        with stage("source"):
            ctx.progress.stage("source")
            ctx.src, summary["source"] = kernel_stage.check_source(src)
            if ctx.src is None:
                ctx.source_problem = f"source {summary['source']['state']}: {summary['source']['message']}"
        needed = {row.kernel.name: row.kernel for row in rows}
        with stage("kernels"):
            products = summary["kernels"] = {}
            for name, kernel in needed.items():
                ctx.progress.stage(f"kernel {name}")
                ctx.progress.watch([run_dir / "kernels" / name / "build.log"])
                products[name] = kernel_stage.prepare_kernel(kernel, ctx)
        runnable = []
        for row in rows:
            product = products[row.kernel.name]
            if "not_run" in product:
                row.not_run = product["not_run"]
            elif product["verdict"] != Verdict.PASS.value:
                schedule.unbooted(ctx, row, schedule.attempt_dir(ctx, row), Verdict(product["verdict"]),
                                  f"kernel {row.kernel.name}: {product['message']}")
            else:
                runnable.append(row)
        with stage("boots"):
            schedule.run_boots(ctx, runnable, products)
    except (KeyboardInterrupt, Terminated) as e:
        summary["interrupted"] = type(e).__name__
        raise
    finally:
        with stage("report"):
            ctx.progress.stage("report")
            # Rows a stopped run never reached are left out rather than guessed at.
            summary["rows"] = [summaries.row_summary(r) for r in rows if r.not_run or r.attempts]
            summary["counts"] = summaries.counts(summary["rows"])
            summary["exit_status"] = summaries.exit_status(summary["rows"])
            summary["bench"] = summaries.bench_history(bench_dir)
            summary["finished"] = _now()
            summary["seconds"] = round(time.monotonic() - started, 3)
            result.write_json(str(run_dir / "summary.json"), summary)
            summaries.write_junit(str(run_dir / "junit.xml"), summary)
            report.write_report(run_dir)
            if record_costs and not summary["interrupted"]:
                summaries.append_costs(bench_dir, summary, run_dir)
    return summary
