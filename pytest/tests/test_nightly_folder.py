"""Folder rows of the nightly: a `from = "folder"` kernel (or `make nightly
KERNELS=DIR`) is one row per kernel file in the folder. The kernels here are
the project's own probe builds; third-party suites (XTF) are measured the
same way outside the project, never in CI."""
import json
import os
import re
import shutil
import subprocess
import tomllib

import pytest

from test_lab_boot import qemu_processes_for
from xenboot.core import paths
from xenboot.guest import kernelcheck
from xenboot.pipeline.nightly import matrix as nightly_matrix
from xenboot.core.errors import BadInput

pytestmark = pytest.mark.lab

PROBES = paths.REPO / "build" / "probe"


@pytest.fixture
def builds(tmp_path):
    """A build folder as a kernel suite leaves it: two kernels (pv64 and
    pv32pae), an object file, an xl config and a subfolder."""
    folder = tmp_path / "builds"
    folder.mkdir()
    for name in ("probe", "probe-pv32pae"):
        shutil.copy(PROBES / name, folder / name)
    shutil.copy(next((PROBES / "obj").rglob("*.o")), folder / "main.o")
    (folder / "probe.cfg").write_text('name = "probe"\n')
    (folder / "obj").mkdir()
    return folder


def write_matrix(tmp_path, text):
    path = tmp_path / "m.toml"
    path.write_text(text)
    return path


def folder_rows(tmp_path, folder, kernel_keys="", boots='[[boot]]\nkernel = "suite"\n'):
    """The rows of a matrix whose kernel `suite` is `folder`."""
    _, rows = nightly_matrix.load_matrix(write_matrix(
        tmp_path, f'[kernel.suite]\nfrom = "folder"\nfolder = "{folder}"\n{kernel_keys}\n{boots}'))
    return rows


def test_a_folder_row_is_one_row_per_kernel_file(tmp_path, builds):
    rows = folder_rows(tmp_path, builds, 'cmdline = "probe.run=poweroff"', boots='''
[[boot]]
kernel = "suite"
spec = "probe"

[[boot]]
name = "again"
kernel = "suite"
spec = "generic"
expect = "PANIC"
''')
    assert [(r.id, r.spec, r.expect.value, r.cmdline) for r in rows] == [
        ("suite.probe", "probe", "PASS", "probe.run=poweroff"),
        ("suite.probe-pv32pae", "probe", "PASS", "probe.run=poweroff"),
        ("again.probe", "generic", "PANIC", "probe.run=poweroff"),
        ("again.probe-pv32pae", "generic", "PANIC", "probe.run=poweroff")]
    # Each file is one kernel, prepared once for every row that boots it.
    assert rows[0].kernel is rows[2].kernel and rows[1].kernel is rows[3].kernel
    assert (rows[0].kernel.name, rows[0].kernel.source, rows[0].kernel.options) == (
        "suite.probe", "path", {"path": str(builds / "probe")})


def test_a_folder_rows_glob_picks_the_files(tmp_path, builds):
    rows = folder_rows(tmp_path, builds, 'glob = "*pv32*"')
    assert [r.id for r in rows] == ["suite.probe-pv32pae"]


@pytest.mark.parametrize("folder, glob, words", [
    ("missing", "*", "is not a folder"),
    ("builds", "*.o", "no ELF executable in"),
    ("builds", "*.cfg", "no ELF executable in"),
])
def test_a_folder_without_kernels_is_refused_before_anything_runs(tmp_path, builds, folder, glob, words):
    with pytest.raises(BadInput) as e:
        folder_rows(tmp_path, tmp_path / folder, f'glob = "{glob}"')
    assert words in e.value.message and "[kernel.suite]" in e.value.message


def test_the_kernels_option_matrix_names_the_folder_and_spec(tmp_path, builds):
    odd = tmp_path / 'my "odd" folder'
    builds.rename(odd)
    text = nightly_matrix.folder_matrix(odd, "probe", "probe*", lab="debug")
    raw = tomllib.loads(text)
    # A folder name that is not a row name gives its rows a plain one.
    assert raw["kernel"]["kernels"] == {"from": "folder", "folder": str(odd), "glob": "probe*"}
    _, rows = nightly_matrix.load_matrix(write_matrix(tmp_path, text))
    assert [(r.id, r.spec, r.lab) for r in rows] == [("kernels.probe", "probe", "debug"),
                                                     ("kernels.probe-pv32pae", "probe", "debug")]


def test_make_nightly_kernels_refuses_a_missing_folder(tmp_path):
    proc = subprocess.run(["make", "-s", "nightly", f"KERNELS={tmp_path / 'nope'}", "SPEC=probe",
                           f"OUT={tmp_path / 'run'}"], cwd=paths.REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert (f"xenboot: BAD_INPUT: --kernels={tmp_path / 'nope'}: no such folder; "
        "name the folder that holds the kernel files\n") in proc.stderr
    assert json.loads((tmp_path / "run" / "result.json").read_text())["verdict"] == "BAD_INPUT"


def test_folder_options_without_a_folder_are_refused(tmp_path):
    proc = subprocess.run([str(paths.REPO / "ci" / "xenboot"), "nightly", "--spec", "xtf", "--lab", "debug",
                           "--out", str(tmp_path / "run")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("xenboot: BAD_INPUT: --spec --lab: only with --kernels DIR "
                                   "(a matrix names each row's own)")
    assert json.loads((tmp_path / "run" / "result.json").read_text())["verdict"] == "BAD_INPUT"


def test_real_folder_rows_boot_pv64_and_pv32pae_probes(tmp_path, builds):
    """`make nightly KERNELS=DIR SPEC=probe LAB=debug`: the debug lab runs
    both guest types; each file is a row of the nightly's report."""
    run = tmp_path / "run"
    proc = subprocess.run(["make", "-s", "nightly", f"KERNELS={builds}", "SPEC=probe", "LAB=debug",
                           f"OUT={run}"], cwd=paths.REPO, capture_output=True, text=True, timeout=900,
                          env={k: v for k, v in os.environ.items() if k != "FREEBSD_SRC"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.match(r"xenboot: nightly: 2 rows: 2 as expected, 0 unexpected, 0 not run, \d retried;",
                    proc.stdout.strip().splitlines()[-1]), proc.stdout
    summary = json.loads((run / "summary.json").read_text())
    rows = {row["id"]: row for row in summary["rows"]}
    # A lab fault costs a retry on a fresh host (seen in clean-room runs,
    # cause not found; the flag quotes it), never a verdict.
    for row in rows.values():
        assert all(a["verdict"] == "INFRA" for a in row["attempts"][:-1]), row["attempts"]
    assert set(rows) == {"builds.probe", "builds.probe-pv32pae"}
    for row in rows.values():
        assert (row["spec"], row["lab"], row["verdict"]) == ("probe", "debug", "PASS")
        assert "PROBE result SUCCESS" in (run / row["folder"] / "console.log").read_text()
    assert json.loads((run / rows["builds.probe-pv32pae"]["folder"] / "result.json").read_text())[
        "kernel"]["sha256"] == kernelcheck.sha256(builds / "probe-pv32pae")
    # The matrix as run names the folder; the report shows both rows.
    assert tomllib.loads((run / "matrix.toml").read_text())["kernel"]["builds"]["folder"] == str(builds)
    html = (run / "report.html").read_text()
    assert 'id="boot-builds.probe"' in html and 'id="boot-builds.probe-pv32pae"' in html
    assert not qemu_processes_for(run)
