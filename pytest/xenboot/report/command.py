"""`xenboot report RUN_DIR`: a nightly run folder's report.html written again
from its summary.json; `xenboot report --merge SHARD_DIR... [--out DIR]`:
one run folder from the folders of a sharded nightly's shards (merge.py)."""
import os

from xenboot.core import inputs, paths, result
from xenboot.core.errors import BadInput
from xenboot.report import merge
from xenboot.report.report import write_report

RUN_DIR = inputs.Folder("give a nightly run folder (it holds summary.json)")
# A row's summary is a few KiB; a nightly has tens of rows.
SUMMARY = inputs.File("summary.json", RUN_DIR.todo, 64 * inputs.MiB, text=True)
# A shard that never ran has no folder: the merge shows it missing.
SHARD_DIRS = inputs.Folders("give the run folders of `nightly --shard I/N`", missing_ok=True)


def _check_run_dir(run_dir, what, args):
    """A nightly run folder: its summary.json readable, report.html writable."""
    RUN_DIR.check(run_dir, what)
    inputs.output_folder(run_dir, what, RUN_DIR.todo)
    SUMMARY.check(os.path.join(run_dir, "summary.json"), what)


def _out(value, args, what):
    # Only a merge makes a run folder; an --out without one is refused in _command.
    return result.run_dir(value, "nightly", what) if value or args.merge else None


def _command(args):
    if args.merge and args.run_dir:
        raise BadInput(f"RUN_DIR={args.run_dir}: not with --merge; give one run folder, or --merge and the shards")
    if not args.merge:
        for flag, value in (("--out", args.out), ("--bench-dir", args.bench_dir)):
            if value:
                raise BadInput(f"{flag}={value}: only with --merge; give --merge and the shards' folders")
        if not args.run_dir:
            raise BadInput("RUN_DIR: missing; give a nightly run folder, or --merge and the shards' folders")
        print(f"xenboot: report {write_report(args.run_dir)}")
        return 0
    merged = merge.merge(args.merge, args.out, args.bench_dir or paths.out_root() / "bench")
    merge.print_merged(merged)
    return merged["exit_status"]


def add_parser(sub):
    p = sub.add_parser("report", help="write a nightly run folder's report.html again, or merge shards",
                       description=__doc__.splitlines()[0])
    inputs.option(p, "run_dir", metavar="RUN_DIR", nargs="?", help="a nightly run folder (holds summary.json)",
                  check=inputs.Rule("folder", _check_run_dir))
    inputs.option(p, "--merge", metavar="SHARD_DIR", nargs="+",
                  help="the run folders of `nightly --shard I/N`, put together into --out", check=SHARD_DIRS)
    inputs.option(p, "--out", help="with --merge: the merged run folder (default out/nightly/<UTC time>-<id>)",
                  check=inputs.RunFolder(_out))
    inputs.option(p, "--bench-dir", help="with --merge: where the nightly history of boot times goes "
                  "(default out/bench)",
                  check=inputs.Folder("give the folder `xenboot bench` writes to (out/bench)", missing_ok=True))
    p.set_defaults(func=_command)
