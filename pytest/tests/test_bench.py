"""`xenboot bench`: the figures' shape (median, min, max of each), the table
and the JSON the nightly report plots. One reduced real run (--count 1, a
1 MB matcher log); no test asserts how fast anything is."""
import json
import os
import subprocess
import xml.etree.ElementTree as ET

import pytest

from xenboot.core import paths
from xenboot.host.lab import config as labconfig
from xenboot.pipeline import bench
from xenboot.report import report, summary
from xenboot.build.build import FIXTURE_MARKER

XENBOOT = str(paths.REPO / "ci" / "xenboot")


def test_median_min_and_max_of_each_figure():
    samples = {"xl_create@debug": [0.9, 0.7, 1.4], "matcher": [100.0, 120.0, 110.0]}
    figures = bench.summarize(samples)
    assert list(figures) == list(bench.FIGURES)
    assert figures["xl_create@debug"] | {"label": None} == {"label": None, "unit": "s", "samples": [0.9, 0.7, 1.4],
                                                      "median": 0.9, "min": 0.7, "max": 1.4}
    assert figures["matcher"]["median"] == 110.0 and figures["matcher"]["unit"] == "MB/s"
    # A figure not measured is there, empty, rather than missing.
    assert figures["host_start_cold@debian"] == {"label": bench.FIGURES["host_start_cold@debian"][0],
                                                 "unit": "s", "samples": [], "median": None,
                                                 "min": None, "max": None}
    text = bench.table(figures)
    # The flavours side by side: one line per boot figure, a column each.
    xl_line = next(line for line in text.splitlines() if line.startswith(bench.BOOT_FIGURES["xl_create"][0]))
    assert xl_line.split()[-4:] == ["-", "0.900", "(0.70-1.40)", "s"]
    assert "110.000 (100.00-120.00)" in text


def test_the_cpu_bound_of_many_guests_is_their_cpu_time_over_the_cores():
    samples = {"guests_1_warm@debug": [1.2], "guests_1_warm.cpu@debug": [1.8],
               f"guests_{bench.GUESTS}@debug": [4.0], f"guests_{bench.GUESTS}.cpu@debug": [7.2]}
    (line,) = bench._cpu_bound(bench.summarize(samples), "debug", cores=2)
    assert line == ("debug: the host's CPU: 1.80 s for one guest (1.50 cores while it ran), 7.20 s for 4; "
                    "on 2 cores 4 take at least 3.60 s (3.00x one)")
    assert bench._cpu_bound(bench.summarize({}), "debug") == []


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    # Without a real tree: its kernel builds are timed by the tests below.
    env = {k: v for k, v in os.environ.items() if k not in {v for t in bench.TREES for v in t.variables}}
    proc = subprocess.run([XENBOOT, "bench", "--count", "1", "--matcher-mb", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=1200, env=env)
    return proc, out


@pytest.mark.lab
def test_bench_prints_the_table_and_writes_json(bench_run):
    proc, out = bench_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((out / "bench.json").read_text())
    assert data["schema"] == bench.SCHEMA and data["count"] == 1
    assert data["host"]["kind"] == "lab" and data["host"]["xen_version"].startswith("4.")
    assert data["host"]["qemu_version"].startswith("QEMU emulator version 10.0.2")
    assert set(data["figures"]) == set(bench.FIGURES)
    assert data["kernel_tree"] is None and data["branch_tree"] is None
    for name, figure in data["figures"].items():
        if name in bench.TREE_FIGURES:
            assert figure["samples"] == [], name
            continue
        assert len(figure["samples"]) == 1, name
        value = figure["samples"][0]
        assert isinstance(value, float) and value > 0, name
        assert figure["median"] == figure["min"] == figure["max"] == value
    for label, _ in bench.BOOT_FIGURES.values():
        assert label in proc.stdout
    # Where the probe's `make boot` went, stage by stage, within its total.
    for flavour in bench.FLAVOURS:
        parts = {part: data["figures"][f"whole_boot.{part}@{flavour}"]["median"] for part in bench.BOOT_PARTS}
        rest = parts.pop("rest")
        assert rest > 0 and abs(sum(parts.values()) + rest - data["figures"][f"whole_boot@{flavour}"]["median"]) < 0.01
        # The restore is a part of the warm start, which then mounts the share.
        figures = data["figures"]
        assert figures[f"host_start_warm.restore@{flavour}"]["median"] < figures[f"host_start_warm@{flavour}"]["median"]
    assert data["worse_than_before"] == {}
    for flavour in bench.FLAVOURS:
        assert f"{flavour}: 4 guests on one host take" in proc.stdout
        assert f"{flavour}: the host's CPU: " in proc.stdout
        figures = data["figures"]
        assert figures[f"guests_4.cpu@{flavour}"]["median"] > figures[f"guests_1_warm.cpu@{flavour}"]["median"]
    assert proc.stdout.strip().splitlines()[-1].startswith("xenboot: bench: median of 1 on lab")
    # The evidence of the last run stays: the boot folders of its figures.
    assert (out / "last-run" / "debug" / "round-0" / "one" / "result.json").is_file()
    # Two hosts at once under each TCG threading, each host's probe boot kept.
    for threads in labconfig.TCG_THREADS:
        assert f"{bench.HOSTS} hosts at once, a probe boot on each, {threads}-threaded TCG" in proc.stdout
        for i in range(bench.HOSTS):
            place = out / "last-run" / "hosts-0" / threads / f"host-{i}"
            assert json.loads((place / "probe" / "result.json").read_text())["host"]["tcg_threads"] == threads
    assert data["host"]["tcg_threads"] in labconfig.TCG_THREADS


@pytest.mark.lab
def test_bench_history_feeds_the_nightly_report(bench_run):
    _, out = bench_run
    (entry,) = summary.bench_history(out)
    data = json.loads((out / "bench.json").read_text())
    assert entry == data
    # The report's plots, drawn from this real run: one per figure, its
    # median as the dot.
    plots = ET.fromstring(f"<plots>{report.bench_section([entry])}</plots>")
    svg = "{http://www.w3.org/2000/svg}"
    drawn = {plot.find(f"{svg}text").text: plot.find(f"{svg}circle/{svg}title").text for plot in plots}
    # A figure this run did not measure (the kernel builds, without a real
    # tree) has no median and no plot.
    assert data["figures"]["kernel_clean"]["median"] is None
    assert drawn == {f["label"]: f"{data['when']}: {f['median']:.4g} {f['unit']}"
                     for f in data["figures"].values() if f["median"] is not None}


def test_kernel_build_figures_time_clean_no_change_and_one_object(tmp_path, monkeypatch):
    """On the labelled fixture (which real_tree() refuses to time as FreeBSD):
    the three builds run, the last remakes machdep.o and relinks."""
    fixture = paths.REPO / "pytest" / "tests" / "fixtures" / "freebsd-src-fixture"
    monkeypatch.setenv("XENBOOT_REAL_TREE", str(fixture))
    monkeypatch.delenv("XENBOOT_REAL_TREE_FIXED", raising=False)
    assert (fixture / FIXTURE_MARKER).exists() and bench.real_tree() is None
    samples = {name: [] for name in bench.FIGURES}
    info = bench.kernel_builds(samples, tmp_path, str(fixture))
    assert (info["source"]["path"], info["source"]["freebsd_version"]) == (str(fixture), 1000510)
    assert all(len(samples[f"kernel_{n}"]) == 1 for n in ("clean", "no_change", "one_object"))
    logs = {run: (tmp_path / run / "build.log").read_text() for run in ("clean", "no-change", "one-object")}
    assert "machdep.o" not in logs["no-change"] and "i386/i386/machdep.c" in logs["one-object"]


@pytest.mark.lab
@pytest.mark.real_tree
def test_a_real_kernel_s_milestone_times_and_the_developer_s_loop(real_tree, tmp_path, monkeypatch):
    """$XENBOOT_REAL_TREE_FIXED (a tree whose i386 XEN boots, e.g. 10.4 with
    the locore.s fix): its boot's milestone times and the loop, measured."""
    tree = os.environ.get("XENBOOT_REAL_TREE_FIXED")
    if not tree:
        pytest.skip("XENBOOT_REAL_TREE_FIXED is not set: the stock 10.4 i386 XEN crashes before its banner")
    samples = {name: [] for name in bench.FIGURES}
    info = bench.kernel_builds(samples, tmp_path, tree)
    found = bench.kernel_boots(samples, tmp_path, tree, info, 1)
    assert found["verdicts"] == ["PASS", "PASS"]
    times = [samples[f"real_{name}"][0] for name in bench.REAL_MILESTONES]
    assert times == sorted(times) and 0 < times[0]
    assert samples["dev_loop"][0] > 0 and len(samples["real_boot"]) == 1
    parts = {part: samples[f"dev_loop.{part}"] for part in bench.I386_TREE.loop_parts}
    assert all(len(p) == 1 for p in parts.values()) and parts.pop("rest")[0] > 0
    assert sum(p[0] for p in parts.values()) < samples["dev_loop"][0]
    assert "i386/i386/machdep.c" in (tmp_path / "dev-loop" / "kernel" / "build.log").read_text()


@pytest.mark.lab
@pytest.mark.branch_tree
def test_the_branch_kernel_s_builds_milestone_times_and_loop(branch_tree, tmp_path):
    """$XENBOOT_BRANCH_TREE's amd64 XEN at 128 MB: built three ways, timed to
    its banner, mountroot and the debugger its pmap stub's panic enters."""
    samples = {name: [] for name in bench.FIGURES}
    info = bench.kernel_builds(samples, tmp_path, str(branch_tree), bench.BRANCH_TREE)
    assert all(len(samples[f"branch_kernel_{n}"]) == 1 for n in ("clean", "no_change", "one_object"))
    found = bench.kernel_boots(samples, tmp_path, str(branch_tree), info, 1, bench.BRANCH_TREE)
    assert found["verdicts"] == ["PANIC", "PANIC"]
    times = [samples[f"branch_{name}"][0] for name in bench.BRANCH_TREE.milestones]
    assert times == sorted(times) and 0 < times[0]
    assert samples["branch_dev_loop"][0] > 0 and len(samples["branch_boot"]) == 1
    assert all(len(samples[f"branch_dev_loop.{part}"]) == 1 for part in bench.BRANCH_TREE.loop_parts)
