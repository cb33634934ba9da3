"""The pytest plugin as a user's suite meets it, in a pytest of its own: a
boot that does not PASS skips the tests that need it by default, and fails
them where the suite asks (as this project's conftest does)."""
import json
import os
import subprocess
import sys

import pytest

from xenboot.core import paths
from xenboot.host.lab import config as labconfig

pytestmark = pytest.mark.lab

CRASH_AT_ENTRY = str(paths.REPO / "build" / "probe" / "crash-at-entry")

USER_TEST = f'''
import pytest

@pytest.mark.xenboot(kernel={CRASH_AT_ENTRY!r})
def test_needs_a_booted_guest(target):
    target.session.send_line("never typed")
'''


def user_pytest(tmp_path, *args):
    """The user's test file under pytest with the plugin, outside this suite's
    conftest; returns pytest's report."""
    (tmp_path / "test_user.py").write_text(USER_TEST)
    env = dict(os.environ, PYTHONPATH=str(paths.REPO / "pytest"))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "xenboot.plugin", "-p", "no:cacheprovider",
                           "-rA", "--xenboot-out", str(tmp_path / "runs"), *args, "test_user.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout


def test_a_boot_that_does_not_pass_skips_by_default(tmp_path):
    status, report = user_pytest(tmp_path)
    assert status == 0, report
    assert "1 skipped" in report and "boot CRASH:" in report


@pytest.mark.parametrize("how", [["--xenboot-fail-unbooted"], ["-o", "xenboot_fail_unbooted=true"]],
                         ids=["option", "ini"])
def test_a_boot_that_does_not_pass_fails_where_asked(tmp_path, how):
    status, report = user_pytest(tmp_path, *how)
    assert status == 1, report
    assert "1 error" in report and "boot CRASH:" in report


def own_conftest_pytest(tmp_path, test_text, *args, env=None):
    """`test_text` as a test file next to a copy of this project's
    conftest, as it is, in a pytest of its own; the finished process."""
    (tmp_path / "conftest.py").write_text((paths.REPO / "pytest" / "tests" / "conftest.py").read_text())
    (tmp_path / "test_own.py").write_text(test_text)
    env = dict(os.environ if env is None else env, PYTHONPATH=str(paths.REPO / "pytest"))
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, "test_own.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_this_project_s_own_tests_fail_on_a_boot_that_does_not_pass(tmp_path):
    """The project's conftest, as it is, asks the plugin to fail: a second
    pytest_configure once replaced the one that did, and the suite skipped
    every test of a broken boot."""
    proc = own_conftest_pytest(tmp_path, 'import pytest\n\n'
                                         'pytestmark = pytest.mark.xenboot(kernel="/bin/true")\n\n\n'
                                         'def test_needs_a_booted_guest(target):\n'
                                         '    target.session.send_line("never typed")\n',
                               "-rA", "--xenboot-out", str(tmp_path / "runs"))
    assert proc.returncode == 1, proc.stdout
    assert "1 error" in proc.stdout and "boot BAD_INPUT:" in proc.stdout


WORKER_TESTS = '''import json, os, pytest

@pytest.fixture(scope="module")
def made_once():
    return os.getpid()

def _seen(name, **more):
    with open(os.environ["SEEN"], "a") as f:
        f.write(json.dumps({"test": name, "worker": os.environ.get("PYTEST_XDIST_WORKER"),
                            "tcg": os.environ.get("XENBOOT_LAB_TCG_THREADS"), **more}) + "\\n")

@pytest.mark.parametrize("n", range(6))
def test_shares_the_module_fixture(n, made_once):
    _seen("shares", fixture=made_once)

@pytest.mark.parametrize("n", range(6))
def test_alone(n):
    _seen("alone")
'''


@pytest.mark.parametrize("workers", [["-n", "2", "--dist", "loadgroup"], []], ids=["two workers", "serial"])
def test_this_project_s_workers_share_module_fixtures_and_run_single_threaded_tcg(tmp_path, workers):
    """Two pytest workers boot two lab hosts at once, each of whose vCPUs
    would spin on the other's under MTTCG: the conftest makes them single
    (serially lab.toml's stands); a module fixture (a bench run, a real
    nightly) is set up on one worker, once."""
    env = {k: v for k, v in os.environ.items() if k != labconfig.TCG_THREADS_ENV and not k.startswith("PYTEST_")}
    proc = own_conftest_pytest(tmp_path, WORKER_TESTS, "-q", *workers, env=env | {"SEEN": str(tmp_path / "seen.jsonl")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = [json.loads(line) for line in (tmp_path / "seen.jsonl").read_text().splitlines()]
    assert len(seen) == 12
    sharing = {(s["worker"], s["fixture"]) for s in seen if s["test"] == "shares"}
    assert len(sharing) == 1
    if workers:
        assert {s["tcg"] for s in seen} == {"single"}
        assert {s["worker"] for s in seen} == {"gw0", "gw1"}
    else:
        assert {s["tcg"] for s in seen} == {None}
