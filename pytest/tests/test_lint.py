"""pyflakes over the harness and its tests: a name defined twice silently
replaces the first definition (a second pytest_configure in conftest.py once
undid the option that makes a broken boot fail the suite)."""
import subprocess
import sys

from xenboot.core import paths


def test_no_redefinitions_unused_imports_or_undefined_names():
    proc = subprocess.run([sys.executable, "-m", "pyflakes", "pytest", "images", "ci"],
                          cwd=paths.REPO, capture_output=True, text=True, timeout=120)
    assert proc.stdout + proc.stderr == "" and proc.returncode == 0, proc.stdout + proc.stderr
