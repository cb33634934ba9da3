"""ci/deps and ci/packages: what a fresh machine installs, and what a missing
program is reported with."""
import subprocess

import pytest

from xenboot.core import paths, tool
from xenboot.core.errors import InfraError

DEPS = paths.REPO / "ci" / "deps"


def test_every_listed_package_is_installed_on_this_machine():
    """.ci/run ran `ci/deps install`, so check has nothing to report."""
    proc = subprocess.run([str(DEPS), "check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_check_names_a_missing_package_and_the_install_line(tmp_path):
    ci = tmp_path / "ci"
    ci.mkdir()
    (ci / "deps").write_text(DEPS.read_text())
    (ci / "packages").write_text("dpkg dpkg-query\nxenboot-no-such-package  some-program\n")
    proc = subprocess.run(["sh", str(ci / "deps"), "check"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "missing Debian packages: xenboot-no-such-package" in proc.stderr
    assert "apt-get install -y xenboot-no-such-package" in proc.stderr
    assert proc.stderr.splitlines()[0] == "missing Debian packages: xenboot-no-such-package "


@pytest.mark.parametrize("program, package", [
    ("xenstore-watch", "xenstore-utils"), ("uudecode", "sharutils"),
    ("/usr/bin/ld.lld", "lld"), ("bmake", "bmake"), ("nm", "binutils"), ("make", "make"), ("makefs", "makefs"),
])
def test_a_missing_program_names_its_package(program, package):
    assert f"apt-get install {package} " in tool.install_hint(program)


@pytest.mark.parametrize("run", [tool.run, lambda argv, what: tool.run_to_log(argv, what, subprocess.DEVNULL)],
                         ids=["run", "run_to_log"])
def test_run_of_a_missing_program_is_infra_naming_the_package(monkeypatch, run):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(InfraError) as e:
        run(["uudecode", "x"], "unpacking firmware")
    assert str(e.value) == ("unpacking firmware: uudecode is not installed: "
                            "run apt-get install sharutils (or `ci/deps install`)")
