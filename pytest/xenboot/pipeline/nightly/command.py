"""`xenboot nightly`'s command line: the matrix or a folder of kernels, the
run, one line a row and the counts."""
import functools
import os
import pathlib

from xenboot.build import build, source
from xenboot.console.progress import Progress
from xenboot.core import inputs, result
from xenboot.core.errors import BadInput, Verdict
from xenboot.host.hosts import HOST
from xenboot.host.lab import config as labconfig
from xenboot.judge import spec as specs
from xenboot.pipeline import nightly
from xenboot.pipeline.boot import Terminated, sigterm_raises
from xenboot.pipeline.nightly.matrix import DEFAULT_MATRIX, GLOB, MATRIX_FILE, folder_matrix
from xenboot.pipeline.nightly.run import run_nightly
from xenboot.pipeline.nightly.schedule import PARALLEL


def _command(args):
    folder_options = [f"--{key}" for key in ("spec", "glob", "lab") if getattr(args, key) is not None]
    if folder_options and not args.kernels:
        raise BadInput(f"{' '.join(folder_options)}: only with --kernels DIR (a matrix names each row's own)")
    out = args.out
    matrix = args.matrix
    if args.kernels:
        matrix = os.path.join(out, "matrix.toml")
        pathlib.Path(matrix).write_text(folder_matrix(args.kernels, args.spec or "generic", args.glob or "*",
                                                      args.lab))
    try:
        with sigterm_raises(), Progress() as progress:
            summary = run_nightly(matrix, out, args.parallel, args.host, args.src,
                                  args.lab_config, args.bench_dir, progress, args.objdir, shard=args.shard,
                                  record_costs=args.shard is None)
    except (KeyboardInterrupt, Terminated) as e:
        what = "SIGINT" if isinstance(e, KeyboardInterrupt) else "SIGTERM"
        print(f"xenboot: INFRA: nightly interrupted by {what}; what it did is in {out}/report.html",
              flush=True)
        return Verdict.INFRA.exit_status
    for row in summary["rows"]:
        shown = row["verdict"] or "NOT RUN"
        extra = row.get("reason") if row["outcome"] == "not-run" else row.get("message")
        flag = f" [{row['flag']}]" if row["flag"] else ""
        print(f"  {row['outcome']:<11} {shown:<17} {row['id']}{flag}: {extra or ''}")
    c = summary["counts"]
    shard = f"shard {args.shard[0]}/{args.shard[1]}: " if args.shard else ""
    print(f"xenboot: nightly: {shard}{c['rows']} rows: {c['as-expected']} as expected, {c['unexpected']} "
          f"unexpected, {c['not-run']} not run, {c['retried']} retried; "
          f"report {summary['run_dir']}/report.html", flush=True)
    return summary["exit_status"]


def add_parser(sub):
    p = sub.add_parser("nightly", help="the nightly pipeline: build, boot a matrix, report",
                       description=nightly.__doc__.splitlines()[0])
    option = functools.partial(inputs.option, p)
    option("--matrix", default=str(DEFAULT_MATRIX), help="matrix TOML (default configs/nightly.toml)",
           check=MATRIX_FILE)
    option("--kernels", metavar="DIR", help="instead of the matrix, one row per kernel file (ELF "
           "executable) in DIR, booted with --spec", check=inputs.Folder("name the folder that holds the kernel files"))
    option("--glob", help="with --kernels: which files of DIR (default *)", check=GLOB)
    option("--spec", help="with --kernels: the rows' spec (default generic)", check=specs.SPEC_INPUT)
    option("--lab-config", help="lab config (default configs/lab.toml)", check=labconfig.CONFIG_INPUT)
    option("--lab", help="with --kernels: the rows' lab flavour (default: lab.toml's)",
           check=labconfig.FLAVOUR_INPUT)
    option("--out", help="run folder (default out/nightly/<UTC time>-<id>)", check=result.out_input("nightly"))
    option("--parallel", default=4, help="guests booting at once (default 4)", check=PARALLEL)
    option("--host", help="boot every row on this host kind (lab or xl)", check=HOST)
    option("--src", help="FreeBSD source tree (default: $FREEBSD_SRC, else freebsd-src)", check=source.SRC)
    option("--objdir", help="MAKEOBJDIRPREFIX for the FreeBSD kernels (default: build/obj)", check=build.OBJDIR)
    option("--shard", metavar="I/N", help="run only share I of N of the matrix rows, cut by their boot "
           "times in the nightly history (else by count); `report --merge` puts the shards together",
           check=inputs.Shard(64))
    option("--bench-dir", help="where bench history.jsonl is, and the nightly history of boot times "
           "(default out/bench)",
           check=inputs.Folder("give the folder `xenboot bench` writes to (out/bench)", missing_ok=True))
    p.set_defaults(func=_command)
