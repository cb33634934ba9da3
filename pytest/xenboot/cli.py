"""`xenboot <command>`: the one command-line tool the Makefile wraps.

Each command lives in its own module, which registers its sub-parser through
`add_parser(subparsers)` and sets `func(args) -> exit status`. The exit status
is the contract (errors.EXIT_STATUS); the last line printed is the verdict.
"""
import argparse
import importlib
import sys

from xenboot.errors import EXIT_INFRA, HarnessError

COMMAND_MODULES = (
    "xenboot.boot",
    "xenboot.lab.command",
    "xenboot.source",
    "xenboot.build",
    "xenboot.image",
    "xenboot.checklog",
    "xenboot.freebsd",
    "xenboot.mirror",
    "xenboot.nightly",
    "xenboot.report",
    "xenboot.bisect",
    "xenboot.bench",
    "xenboot.soak",
)


def build_parser():
    parser = argparse.ArgumentParser(prog="xenboot", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HarnessError as e:
        print(f"xenboot: {e.verdict.value}: {e.message}", file=sys.stderr)
        return e.verdict.exit_status
    except KeyboardInterrupt:
        print("xenboot: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the contract is one line and an exit status
        print(f"xenboot: INFRA: internal error: {e!r} (a bug in the harness: please report it)",
              file=sys.stderr)
        return EXIT_INFRA
