"""`xenboot bisect` on a FIXTURE: a small git repository made here, in tmp,
whose "kernel" is the probe kernel built from a copy of images/probe, with a
commit that does not build and a planted regression (the result line turns
to FAILURE). Not FreeBSD: it tests the bisect machinery, for real (builds
and boots on the embedded Xen host)."""
import json
import shutil
import subprocess

import pytest

from xenboot.core import paths

XENBOOT = str(paths.REPO / "ci" / "xenboot")
REGRESSION = ("void report_result(void)\n{\n",
              'void report_result(void)\n{\n    detail_add(&failed, " planted"); /* FIXTURE: planted regression */\n')


def git(tree, *argv):
    return subprocess.run(["git", "-C", str(tree), *argv], check=True, capture_output=True,
                          text=True).stdout.strip()


def edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{path} no longer has {old!r}: update the fixture"
    path.write_text(text.replace(old, new))


def append(path, text):
    path.write_text(path.read_text() + text)


@pytest.fixture(scope="module")
def fixture_tree(tmp_path_factory):
    """{name: commit} of a linear history: good, two docs changes, a
    broken build, its fix, the regression, two more; the first bad one is
    `regression`."""
    tree = tmp_path_factory.mktemp("bisect") / "fixture-src"
    shutil.copytree(paths.IMAGES / "probe", tree)
    (tree / ".gitignore").write_text("build/\n")
    (tree / "FIXTURE").write_text("A test fixture of xenboot's bisect: the probe kernel, not FreeBSD.\n")
    git(tree, "init", "--quiet", "--initial-branch=main")
    git(tree, "config", "user.email", "fixture@freebsd-xen-ci.invalid")
    git(tree, "config", "user.name", "bisect fixture")
    commits = {}

    def commit(name, change=None):
        if change:
            change()
        git(tree, "add", "-A")
        git(tree, "commit", "--quiet", "-m", f"fixture: {name}")
        commits[name] = git(tree, "rev-parse", "HEAD")

    format_c = tree / "common" / "format.c"
    clean_format = format_c.read_text()
    report_c = tree / "common" / "report.c"
    # In this order git bisect's first pick is the broken build.
    commit("good")
    commit("docs", lambda: append(tree / "README.md", "\nFixture history.\n"))
    commit("more-docs", lambda: append(tree / "README.md", "More.\n"))
    commit("build-broken", lambda: append(format_c, "\n#error planted build break (fixture)\n"))
    commit("build-fixed", lambda: format_c.write_text(clean_format))
    commit("regression", lambda: edit(report_c, *REGRESSION))
    commit("after-1", lambda: append(tree / "README.md", "After.\n"))
    commit("after-2", lambda: append(tree / "README.md", "And after.\n"))
    return tree, commits


def bisect(tree, out, *args):
    return subprocess.run([XENBOOT, "bisect", "--src", str(tree), "--spec", "probe",
                           "--build", "make O=build", "--kernel", "build/probe", "--out", str(out), *args],
                          capture_output=True, text=True, timeout=900)


@pytest.mark.lab
def test_bisect_finds_the_planted_regression(fixture_tree, tmp_path):
    tree, commits = fixture_tree
    proc = bisect(tree, tmp_path / "run", "--good", commits["good"], "--bad", commits["after-2"],
                  "--milestone", "result")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith(f"xenboot: bisect: first bad commit {commits['regression']}"), last
    assert "fixture: regression" in last
    # The answer comes with the first bad commit's console log.
    assert "PROBE result FAILURE" in proc.stdout
    steps = {p.name: json.loads((p / "step.json").read_text())
             for p in (tmp_path / "run" / "steps").iterdir() if (p / "step.json").exists()}
    assert steps[commits["good"]]["status"] == "good"
    assert steps[commits["regression"]]["status"] == "bad"
    # The broken build was skipped (exit 125), not blamed.
    assert steps[commits["build-broken"]]["status"] == "skip"
    assert steps[commits["build-broken"]]["verdict"] == "BUILD_FAILED"
    assert "skip" in (tmp_path / "run" / "bisect.log").read_text()
    # The tree is back where it was, with no bisection left open.
    assert git(tree, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(tree, "status", "--porcelain", "--untracked-files=no") == ""
    assert not (tree / ".git" / "BISECT_START").exists()


@pytest.mark.lab
def test_bisect_refuses_a_range_without_a_regression(fixture_tree, tmp_path):
    tree, commits = fixture_tree
    proc = bisect(tree, tmp_path / "run", "--good", commits["good"], "--bad", commits["more-docs"],
                  "--milestone", "result")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "not a regression range" in proc.stderr
    assert git(tree, "symbolic-ref", "--short", "HEAD") == "main"


@pytest.mark.parametrize("args, words", [
    (["--milestone", "no-such-milestone"], "not in spec probe"),
    (["--milestone", "result", "--bad", "no-such-rev"], "no such commit"),
])
def test_bisect_checks_its_input_before_building(fixture_tree, tmp_path, args, words):
    tree, commits = fixture_tree
    argv = ["--good", commits["good"]] + (["--bad", commits["after-2"]] if "--bad" not in args else []) + args
    proc = bisect(tree, tmp_path / "run", *argv)
    assert proc.returncode == 2
    assert words in proc.stderr
    assert not (tmp_path / "run" / "steps").exists()


def test_bisect_refuses_a_dirty_tree(fixture_tree, tmp_path):
    tree, commits = fixture_tree
    readme = tree / "README.md"
    saved = readme.read_text()
    readme.write_text(saved + "uncommitted\n")
    try:
        proc = bisect(tree, tmp_path / "run", "--good", commits["good"], "--bad", commits["after-2"],
                      "--milestone", "result")
    finally:
        readme.write_text(saved)
    assert proc.returncode == 2
    assert "uncommitted changes" in proc.stderr


def test_bisect_without_freebsd_source_says_how_to_get_it(tmp_path):
    proc = subprocess.run([XENBOOT, "bisect", "--good", "HEAD~1", "--bad", "HEAD", "--milestone", "banner"],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "XENBOOT_OUT": str(tmp_path)})
    assert proc.returncode == 2
    assert "git submodule update --init freebsd-src" in proc.stderr


def test_bisect_will_not_mix_its_answers_with_another_bisection(fixture_tree, tmp_path):
    tree, commits = fixture_tree
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "bisect.json").write_text("{}")
    proc = bisect(tree, tmp_path / "run", "--good", commits["good"], "--bad", commits["after-2"],
                  "--milestone", "result")
    assert proc.returncode == 2
    assert "already holds a bisection" in proc.stderr
