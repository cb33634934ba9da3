"""ci/gitlab-ci.yml run for real on this machine by gitlab-ci-local (an npm
package, not a CI dependency: without it these tests skip, saying so), with
its shell executor: XENBOOT_SHELL_RUNNER=true leaves the Docker image out
(ci/gitlab-ci-image.yml), --shell-isolation gives every job its own copy of
the tree and carries caches and artifacts between jobs as GitLab does.
The test job runs `bash .ci/run` on a part of the suite; the schedule's
2-shard nightly boots the default matrix in the lab, and its merge job puts
the shards' artifacts into one run folder. The GitHub workflow is checked
against its schema by action-validator (npm), when installed."""
import json
import re
import shutil
import subprocess

import pytest

from xenboot.core import paths, tool

GITLAB_CI_LOCAL = shutil.which("gitlab-ci-local")
ACTION_VALIDATOR = shutil.which("action-validator")
needs_gitlab_ci_local = pytest.mark.skipif(
    GITLAB_CI_LOCAL is None, reason="gitlab-ci-local is not installed (npm install -g gitlab-ci-local@4.45.0)")
# A job's lines take minutes; they are kept whole for the assertion's message.
TIMEOUT = 3600


@pytest.fixture
def project(tmp_path):
    """The work tree's tracked files (edits included) as a repository of
    their own: gitlab-ci-local copies a job's files with `git ls-files` and
    reads the project's name from its remote (one that is never reached)."""
    repo = tmp_path / "project"
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=paths.REPO, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = paths.REPO / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    git = ["git", "-c", "user.name=xenboot", "-c", "user.email=xenboot@localhost"]
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"],
                 ["remote", "add", "origin", "git@gitlab.invalid:xenboot/freebsd-xen-ci.git"]):
        subprocess.run(git + argv, cwd=repo, check=True, capture_output=True)
    return repo


def gitlab_ci_local(repo, *args):
    variables = {"XENBOOT_SHELL_RUNNER": "true",
                 # The lab this machine has built: the engines' cache on a real runner.
                 "XENBOOT_CACHE": str(paths.cache_root())}
    argv = [GITLAB_CI_LOCAL, "--file", "ci/gitlab-ci.yml", "--shell-isolation", "--no-artifacts-to-source",
            "--timestamps", *[f"--variable={k}={v}" for k, v in variables.items()], *args]
    proc = subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=TIMEOUT)
    return proc, proc.stdout + proc.stderr


@pytest.mark.slow
@needs_gitlab_ci_local
def test_gitlab_ci_local_lists_the_pipelines_jobs(project):
    _, pushed = gitlab_ci_local(project, "--list")
    _, scheduled = gitlab_ci_local(project, "--list", "--variable=CI_PIPELINE_SOURCE=schedule")
    assert "test " in pushed and "nightly " not in pushed, pushed
    assert all(f"{job} " in scheduled for job in ("bench", "nightly", "merge")), scheduled
    assert "[nightly]" in scheduled


@pytest.mark.slow
@needs_gitlab_ci_local
def test_gitlab_ci_local_runs_the_test_job(project):
    proc, said = gitlab_ci_local(project, "test", "--variable=XENBOOT_TEST_SELECT=-k 'test_layers or test_shard'"
                                 " -m 'not lab and not slow'")
    assert proc.returncode == 0, said[-6000:]
    assert "> $ bash .ci/run" in said and re.search(r"> =+ \d+ passed, \d+ deselected", said), said[-3000:]
    assert re.search(r"PASS .* test\b", said), said[-3000:]


@pytest.mark.slow
@pytest.mark.lab
@needs_gitlab_ci_local
def test_gitlab_ci_local_runs_the_sharded_nightly_and_its_merge(project):
    proc, said = gitlab_ci_local(project, "--needs", "merge", "--variable=CI_PIPELINE_SOURCE=schedule")
    merged_dir = project / ".gitlab-ci-local" / "artifacts" / "merge" / "out" / "nightly" / "run"
    assert (merged_dir / "summary.json").is_file(), said[-6000:]
    merged = json.loads((merged_dir / "summary.json").read_text())
    assert [(s["index"], s["count"]) for s in merged["shards"]] == [(1, 2), (2, 2)], merged["shards"]
    assert [s["state"] for s in merged["shards"]] == ["ok", "ok"], merged["shards"]
    # Every row of the default matrix, once, each from its shard.
    rows = [r["id"] for r in merged["rows"]]
    assert len(rows) == len(set(rows)) == merged["counts"]["rows"] and "probe" in rows
    assert {r["shard"] for r in merged["rows"]} == {1, 2}
    assert (merged_dir / "report.html").is_file() and (merged_dir / "junit.xml").is_file()
    assert "xenboot: nightly: 2 shards merged:" in said, said[-3000:]
    assert merged["exit_status"] == 0 and proc.returncode == 0, said[-3000:]


@pytest.mark.skipif(ACTION_VALIDATOR is None,
                    reason="action-validator is not installed (npm install -g @action-validator/cli)")
def test_the_github_workflow_matches_its_schema(tmp_path):
    proc = tool.run([ACTION_VALIDATOR, paths.REPO / "ci" / "github-actions.yml"], "action-validator",
                    check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The validator does refuse what the schema does not allow.
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    stepz: []\n")
    assert tool.run([ACTION_VALIDATOR, bad], "action-validator", check=False).returncode != 0
