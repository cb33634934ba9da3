"""`xenboot <command>`: the one command-line tool the Makefile wraps.

Each command lives in its own module, which registers its sub-parser through
`add_parser(subparsers)` and sets `func(args) -> exit status`. The exit status
is the contract (errors.EXIT_STATUS); the last line printed is the verdict.

Every input is checked (inputs.check_args) before `func` runs. A command
whose refusal says more than its verdict line (boot's reproduce.sh) sets
`refuse(args, error) -> exit status`; whatever ends a command with a run
folder, that folder gets its result.json.
"""
import argparse
import importlib
import os
import sys

from xenboot.core import inputs
from xenboot.core.errors import EXIT_INFRA, BadInput, HarnessError
from xenboot.core.result import RunRecord

COMMAND_MODULES = (
    "xenboot.pipeline.boot",
    "xenboot.host.lab.command",
    "xenboot.build.source",
    "xenboot.build.build",
    "xenboot.image.image",
    "xenboot.report.checklog",
    "xenboot.pipeline.freebsd",
    "xenboot.console.mirror",
    "xenboot.guest.gdb",
    "xenboot.pipeline.nightly.command",
    "xenboot.report.command",
    "xenboot.pipeline.bisect",
    "xenboot.pipeline.bench",
    "xenboot.pipeline.soak",
)


class Parser(argparse.ArgumentParser):
    """argparse's own refusals (an unknown option, a missing one) as one
    BAD_INPUT line, not its usage text."""

    def error(self, message):
        raise BadInput(f"{self.prog}: {message}; see `{self.prog} --help`")


def build_parser():
    parser = Parser(prog="xenboot", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv=None):
    args = None
    try:
        args = build_parser().parse_args(argv)
        try:
            inputs.check_args(args)
        except BadInput as e:
            if args.run_folder and hasattr(args, "refuse"):
                return args.refuse(args, e)
            raise
        return args.func(args)
    except HarnessError as e:
        folder = getattr(args, "run_folder", None)
        if folder and not os.path.exists(os.path.join(folder, "result.json")):
            RunRecord(folder, name=args.command).finish(e.verdict, e.message)
        print(f"xenboot: {e.verdict.value}: {e.message}", file=sys.stderr)
        return e.verdict.exit_status
    except KeyboardInterrupt:
        print("xenboot: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the contract is one line and an exit status
        print(f"xenboot: INFRA: internal error: {e!r} (a bug in the harness: please report it)",
              file=sys.stderr)
        return EXIT_INFRA
