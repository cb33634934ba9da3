"""Every input of every command is checked before anything starts (issue 19):
a directory, a FIFO or a device where a file belongs, an unreadable or
unwritable path, an empty or huge file, text that is not UTF-8, a number out
of range, an unknown name, a control character. Each is exit status 2 and
one line, `xenboot: BAD_INPUT: <option>=...`, from the real ci/xenboot, with
result.json in OUT when OUT can hold one.

TABLE has the bad kinds tried on each (command, option); it is held against
the parser itself, so an option without a check, without rows, or without a
row for a kind of bad input its check must refuse fails here."""
import argparse
import itertools
import json
import os
import pathlib
import subprocess
import tempfile

import pytest

from xenboot import cli
from xenboot.core import inputs, paths

XENBOOT = str(paths.REPO / "ci" / "xenboot")
# Root reads and writes anything: rows of unreadable or read-only paths run as nobody.
NOBODY = 65534
AS_NOBODY = {"unreadable", "unreadable folder", "read-only folder"}

FILE = ("missing", "directory", "fifo", "device", "unreadable", "empty", "huge")
TEXT_FILE = FILE + ("not UTF-8",)
FOLDER = ("missing", "file", "fifo", "unreadable folder")
# A world is a folder (a DESTDIR) or a file (base.txz).
WORLD = ("missing", "fifo", "device", "unreadable", "empty", "huge")
RUN_FOLDER = ("file", "device", "unwritable", "read-only folder", "taken")
OUTPUT_FOLDER = ("file", "device", "unwritable", "read-only folder")
NUMBER = ("not a number", "zero", "too big")
CHOICE = ("unknown", "not UTF-8 argument")
TEXT = ("control character", "too long", "not UTF-8 argument")
LAB = {"--lab-config": TEXT_FILE, "--lab": CHOICE}
SHARD = ("not a shard", "shard zero", "shard past count")
# A folder that may not be there yet (bench history, a shard that never ran).
MAYBE_FOLDER = tuple(k for k in FOLDER if k != "missing")

TABLE = {
    "boot": {"--kernel": FILE, "--spec": TEXT_FILE, "--cmdline": TEXT, "--host": CHOICE, "--memory": NUMBER,
             "--disk": FILE, "--out": RUN_FOLDER, "--log-cap": NUMBER, **LAB, "--lab-cpu": CHOICE,
             "--template": TEXT_FILE},
    "freebsd": {"--src": FOLDER, "--kernconf": TEXT, "--target": CHOICE, "--objdir": OUTPUT_FOLDER,
                "--world": WORLD, "--spec": TEXT_FILE, "--cmdline": TEXT, "--host": CHOICE, "--lab": CHOICE,
                "--memory": NUMBER, "--out": RUN_FOLDER},
    "kernel": {"--kernconf": TEXT, "--target": CHOICE, "--src": FOLDER, "--objdir": OUTPUT_FOLDER,
               "--out": RUN_FOLDER},
    "image": {"--manifest": TEXT_FILE, "--world": WORLD, "--format": CHOICE, "--target": CHOICE,
              "--size": CHOICE, "--out": RUN_FOLDER},
    # A silent guest's console.log is empty, and still judged.
    "check-log": {"LOG": tuple(k for k in FILE if k != "empty"), "--spec": TEXT_FILE, "--jsonl": TEXT_FILE,
                  "--out": RUN_FOLDER, "--end-reason": CHOICE, "--kernel": FILE},
    # No bench history yet is no --bench-dir folder yet.
    "nightly": {"--matrix": TEXT_FILE, "--kernels": FOLDER, "--glob": TEXT + ("absolute pattern",),
                "--spec": TEXT_FILE, **LAB, "--out": RUN_FOLDER, "--parallel": NUMBER, "--host": CHOICE,
                "--src": FOLDER, "--objdir": OUTPUT_FOLDER, "--bench-dir": MAYBE_FOLDER, "--shard": SHARD},
    "bisect": {"--good": TEXT + ("an option",), "--bad": TEXT, "--milestone": TEXT, "--src": FOLDER,
               "--spec": TEXT_FILE, "--cmdline": TEXT, "--host": CHOICE, "--disk": FILE, "--memory": NUMBER,
               "--kernconf": TEXT, "--build": TEXT + ("unbalanced quote",),
               "--kernel": TEXT + ("absolute path",), "--out": RUN_FOLDER},
    "soak": {"--boots": NUMBER, **LAB, "--lab-cpu": CHOICE, "--parallel": NUMBER, "--out": OUTPUT_FOLDER},
    "bench": {"--count": NUMBER, "--matcher-mb": NUMBER, "--out": OUTPUT_FOLDER, "--lab-config": TEXT_FILE},
    **{f"lab {name}": LAB for name in ("build", "status", "clean", "prune")},
    "lab shell": {**LAB, "--lab-cpu": CHOICE},
    "lab exec": {"--share": FOLDER, "--timeout": NUMBER, "ARGV": ("control character",), **LAB},
    "lab serve": {"--share": FOLDER, **LAB, "--lab-cpu": CHOICE},
    "console": {"OUT": FOLDER},
    "gdb": {"OUT": FOLDER},
    "report": {"RUN_DIR": FOLDER, "--merge": MAYBE_FOLDER, "--out": RUN_FOLDER, "--bench-dir": MAYBE_FOLDER},
    "pin": {"REV": TEXT},
}
# What each kind of check must refuse: the rows the table must have.
REQUIRED = {"folder": FOLDER, "file or folder": WORLD, "run folder": RUN_FOLDER, "output folder": OUTPUT_FOLDER,
            "integer": NUMBER, "seconds": NUMBER, "choice": ("unknown",),
            "text": ("control character", "too long"), "words": ("control character",), "shard": SHARD}


class Scratch(str):
    """The name of a file or folder the scratch fixture makes."""


# Inputs that pass their own checks, so that a row's bad input is what is
# refused. Where a command would go on to build or boot, the base holds an
# input refused later (a matrix, a lab config, a tree that is not one): a
# check that lets its bad input through fails the row, never boots.
REFUSED_MATRIX = Scratch("refused-matrix.toml")
REFUSED_LAB = Scratch("refused-lab.toml")
BASE = {
    "boot": {"--kernel": Scratch("kernel.txt")},
    "freebsd": {"--src": Scratch("folder")},
    "kernel": {"--src": Scratch("folder")},
    "image": {"--manifest": Scratch("manifest.toml")},
    "check-log": {"LOG": Scratch("console.log"), "--spec": "generic"},
    "nightly": {"--matrix": REFUSED_MATRIX},
    "bisect": {"--good": "a", "--bad": "b", "--milestone": "m", "--src": Scratch("folder")},
    "bench": {"--lab-config": REFUSED_LAB},
    "soak": {"--lab-config": REFUSED_LAB},
    "lab exec": {"--lab-config": REFUSED_LAB, "ARGV": ["true"]},
    "lab serve": {"--lab-config": REFUSED_LAB, "--share": Scratch("folder")},
}
# A row's own changes to its command's base (None: leave that input out).
EXTRA = {("nightly", option): {"--kernels": Scratch("folder")} for option in ("--glob", "--spec", "--lab")} \
    | {(command, "--lab"): {"--lab-config": None} for command in ("lab exec", "soak", "lab serve")} \
    | {(command, "--lab-cpu"): {"--lab-config": None} for command in ("soak", "lab serve")} \
    | {("report", option): {"--merge": Scratch("folder")} for option in ("--out", "--bench-dir")}
RUN_NUMBERS = itertools.count()


def commands(parser=None, prefix=()):
    """(command, its parser) for every command the CLI has, `lab exec` included."""
    parser = parser or cli.build_parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in subs:
        for name, sub in action.choices.items():
            yield from commands(sub, prefix + (name,))
    if prefix and not subs:
        yield " ".join(prefix), parser


def value_options(parser):
    """{name: action} of the options that take a value (not --help, not flags)."""
    return {inputs.name(a): a for a in parser._actions
            if a.nargs != 0 and not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))}


PARSERS = dict(commands())
OPTIONS = {(command, name): action for command, parser in PARSERS.items()
           for name, action in value_options(parser).items()}


def required(check):
    if isinstance(check, inputs.File):
        return {k for k in TEXT_FILE if not (k == "empty" and check.empty_ok)
                and not (k == "not UTF-8" and not check.text)}
    if isinstance(check, inputs.Folder) and check.missing_ok:
        return set(FOLDER) - {"missing"}
    return set(REQUIRED[check.kind])


def test_every_option_that_takes_a_value_is_checked():
    unchecked = sorted(key for key, action in OPTIONS.items() if not hasattr(action, "check"))
    assert not unchecked, f"declare these with inputs.option(..., check=...): {unchecked}"


def test_the_table_has_every_option_and_what_its_check_must_refuse():
    rows = {(command, option) for command, options in TABLE.items() for option in options}
    assert sorted(set(OPTIONS) - rows) == [], "options without rows"
    assert sorted(rows - set(OPTIONS)) == [], "rows of options the CLI does not have"
    short = {key: sorted(required(action.check) - set(TABLE[key[0]][key[1]]))
             for key, action in OPTIONS.items()}
    assert {key: kinds for key, kinds in short.items() if kinds} == {}


ROWS = [(command, option, kind) for command, options in TABLE.items()
        for option, kinds in options.items() for kind in kinds]


@pytest.fixture(scope="module")
def scratch():
    """A folder every row's inputs are made in, open to the nobody user."""
    with tempfile.TemporaryDirectory(prefix="xenboot-bad-input-") as tmp:
        os.chmod(tmp, 0o777)
        files = {"kernel.txt": b"not a kernel\n", "file.txt": b"hello\n", "console.log": b"hello\n",
                 "empty": b"", "manifest.toml": b'["/etc"]\ntype = "dir"\n', REFUSED_MATRIX: b"colour = 'red'\n",
                 REFUSED_LAB: b"colour = 'red'\n", "latin1.txt": "caf\xe9\n".encode("latin-1"),
                 "unreadable": b"secret\n", "taken/result.json": b'{"verdict": "PASS"}\n'}
        folders = {"folder": 0o755, "unreadable-folder": 0o000, "read-only-folder": 0o555, "taken": 0o755,
                   "cache": 0o777, "default-out": 0o777}
        for name, mode in folders.items():
            os.mkdir(os.path.join(tmp, name))
            os.chmod(os.path.join(tmp, name), mode)  # whatever the umask
        for name, data in files.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
        os.chmod(os.path.join(tmp, "unreadable"), 0o000)
        os.mkfifo(os.path.join(tmp, "fifo"))
        yield tmp


def bad_value(kind, scratch, check):
    """The bad input of this kind for `check`, as the command line gives it."""
    def huge():
        path = os.path.join(scratch, f"huge-{check.max_size}")
        with open(path, "wb") as f:
            f.truncate(check.max_size + 1)  # sparse: no disk is used
        return path

    values = {
        "missing": lambda: os.path.join(scratch, "missing"),
        "directory": lambda: os.path.join(scratch, "folder"),
        "file": lambda: os.path.join(scratch, "file.txt"),
        "fifo": lambda: os.path.join(scratch, "fifo"),
        "device": lambda: "/dev/null",
        "unreadable": lambda: os.path.join(scratch, "unreadable"),
        "unreadable folder": lambda: os.path.join(scratch, "unreadable-folder"),
        "read-only folder": lambda: os.path.join(scratch, "read-only-folder", "run"),
        "unwritable": lambda: "/proc/nope",
        "taken": lambda: os.path.join(scratch, "taken"),
        "empty": lambda: os.path.join(scratch, "empty"),
        "huge": huge,
        "not UTF-8": lambda: os.path.join(scratch, "latin1.txt"),
        "not a number": lambda: "lots",
        "zero": lambda: "0",
        "too big": lambda: str(check.high + 1),
        "unknown": lambda: "nope",
        "control character": lambda: "a\x01b",
        "too long": lambda: "x" * (getattr(check, "max_len", 1023) + 1),
        "not UTF-8 argument": lambda: "caf\udce9",
        "absolute pattern": lambda: "/*",
        "an option": lambda: "--help",
        "unbalanced quote": lambda: 'make "all',
        "absolute path": lambda: "/boot/kernel",
        "not a shard": lambda: "x",
        "shard zero": lambda: "0/2",
        "shard past count": lambda: "3/2",
    }
    return values[kind]()


def argv(command, values):
    """The command line: options as --flag=value (a value may start with -),
    positionals after `--`."""
    words, positional = command.split(), []
    actions = value_options(PARSERS[command])
    for name, value in values.items():
        if value is None:
            continue
        if actions[name].option_strings:
            words.append(f"{name}={value}")
        else:
            positional += value if isinstance(value, list) else [value]
    return words + (["--"] + positional if positional else [])


def run_folder_option(command):
    return next((name for name, action in value_options(PARSERS[command]).items()
                 if isinstance(action.check, inputs.RunFolder)), None)


@pytest.mark.parametrize("command, option, kind", ROWS, ids=[" ".join(row) for row in ROWS])
def test_a_bad_input_is_one_bad_input_line(scratch, command, option, kind):
    check = OPTIONS[command, option].check
    values = {name: os.path.join(scratch, value) if isinstance(value, Scratch) else value
              for name, value in (BASE.get(command, {}) | EXTRA.get((command, option), {})).items()}
    bad = bad_value(kind, scratch, check)
    values[option] = [bad] if isinstance(check, inputs.Words) else bad
    out_option = run_folder_option(command)
    # Not made here: the nobody user must be able to make it (and make it private).
    out = os.path.join(scratch, f"out-{next(RUN_NUMBERS)}")
    if out_option and option != out_option:
        values[out_option] = out
    nobody = kind in AS_NOBODY and os.geteuid() == 0
    env = {k: v for k, v in os.environ.items() if k != "FREEBSD_SRC"} | {
        "XENBOOT_CACHE": os.path.join(scratch, "cache"), "XENBOOT_OUT": os.path.join(scratch, "default-out")}
    # A refusal takes well under a second; the timeout is for a check that blocks (a FIFO opened).
    proc = subprocess.run([XENBOOT, *argv(command, values)], cwd=scratch, env=env, capture_output=True,
                          timeout=30, **({"user": NOBODY, "group": NOBODY, "extra_groups": []} if nobody else {}))
    said = (proc.stdout + proc.stderr).decode(errors="backslashreplace")
    lines = said.strip().splitlines()
    assert proc.returncode == 2, said
    assert len(lines) == 1 and lines[0].startswith("xenboot: BAD_INPUT: "), said
    assert "internal error" not in said
    names = (option, option.lstrip("-").upper().replace("-", "_"))
    assert any(name in lines[0] for name in names), f"{lines[0]!r} does not name {option}"
    if out_option and option != out_option:
        result = json.loads(pathlib.Path(out, "result.json").read_text())
        assert result["verdict"] == "BAD_INPUT" and result["message"] in lines[0]
    elif option == out_option:
        assert "result.json" in lines[0]
        if kind == "taken":
            assert pathlib.Path(bad, "result.json").read_text() == '{"verdict": "PASS"}\n'


def test_a_bad_tcg_threads_variable_is_bad_input_before_any_host(tmp_path):
    """The variable `make test` sets for its workers is an input too,
    refused where lab.toml's own values are: as the lab is loaded."""
    env = os.environ | {"XENBOOT_LAB_TCG_THREADS": "many"}
    run = tmp_path / "run"
    proc = subprocess.run([XENBOOT, "boot", "--kernel", str(paths.REPO / "build" / "probe" / "probe"),
                           "--spec", "probe", "--out", str(run)], env=env, capture_output=True, text=True, timeout=60)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2, said
    assert "xenboot: BAD_INPUT: XENBOOT_LAB_TCG_THREADS='many': must be one of multi, single" in proc.stdout
    assert "internal error" not in said and not (run / "qemu.argv").exists()
    assert json.loads((run / "result.json").read_text())["verdict"] == "BAD_INPUT"
