"""The pytest plugin as a user's suite meets it, in a pytest of its own: a
boot that does not PASS skips the tests that need it by default, and fails
them where the suite asks (as this project's conftest does)."""
import os
import subprocess
import sys

import pytest

from xenboot.core import paths

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


def test_this_project_s_own_tests_fail_on_a_boot_that_does_not_pass(tmp_path):
    """The project's conftest, as it is, asks the plugin to fail: a second
    pytest_configure once replaced the one that did, and the suite skipped
    every test of a broken boot."""
    (tmp_path / "conftest.py").write_text((paths.REPO / "pytest" / "tests" / "conftest.py").read_text())
    (tmp_path / "test_own.py").write_text('import pytest\n\n'
                                          'pytestmark = pytest.mark.xenboot(kernel="/bin/true")\n\n\n'
                                          'def test_needs_a_booted_guest(target):\n'
                                          '    target.session.send_line("never typed")\n')
    env = dict(os.environ, PYTHONPATH=str(paths.REPO / "pytest"))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA",
                           "--xenboot-out", str(tmp_path / "runs"), "test_own.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout
    assert "1 error" in proc.stdout and "boot BAD_INPUT:" in proc.stdout
