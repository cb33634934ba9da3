"""The READMEs show commands that exist: every `make TARGET` names a target
of the Makefile, every `ci/xenboot COMMAND` a command of the tool (a README
that offered a target the Makefile lacked once went unnoticed)."""
import re
import subprocess

import pytest

from xenboot.core import paths

READMES = sorted(p for p in paths.REPO.rglob("README.md")
                 if not {"freebsd-src", ".cache", "out", "build", "fixtures"} & set(p.relative_to(paths.REPO).parts))
# `make boot`, `make -C images/probe` (another Makefile: left out), in prose
# or at the start of a command line.
MAKE = re.compile(r"(?:`|^\s+(?:[A-Z_]+=\S+\s+)*)make ((?:[A-Z_]+=\S+\s+)*)([a-z][a-z-]*)\b", re.M)
XENBOOT = re.compile(r"ci/xenboot ([a-z][a-z-]*)\b")


def make_targets():
    db = subprocess.run(["make", "-C", str(paths.REPO), "-pRrq", ":"], capture_output=True, text=True).stdout
    return set(re.findall(r"^([a-z][a-z-]*):", db, re.M))


def xenboot_commands():
    usage = subprocess.run([str(paths.REPO / "ci" / "xenboot"), "--help"], capture_output=True, text=True,
                           check=True).stdout
    return set(re.search(r"\{([a-z,-]+)\}", usage).group(1).split(","))


def test_there_are_readmes_to_check():
    assert paths.REPO / "README.md" in READMES and len(READMES) >= 5, READMES


@pytest.mark.parametrize("readme", READMES, ids=[str(p.relative_to(paths.REPO)) for p in READMES])
def test_every_command_a_readme_shows_exists(readme):
    text = readme.read_text()
    targets, commands = make_targets(), xenboot_commands()
    unknown = sorted({m.group(2) for m in MAKE.finditer(text)} - targets)
    assert unknown == [], f"{readme}: make targets the Makefile lacks: {unknown}"
    unknown = sorted({m.group(1) for m in XENBOOT.finditer(text)} - commands)
    assert unknown == [], f"{readme}: ci/xenboot commands it lacks: {unknown}"
