"""The nightly cut into shards (`nightly --shard I/N`) and put together again
(`report --merge`): every row in exactly one shard, the same cut for the same
matrix, N and history, balanced by measured boot time; a merged run that
equals the unsharded one row for row, and a missing shard shown, not hidden."""
import json
import os
import socket
import subprocess
import types
import xml.etree.ElementTree as ET

import pytest

from test_nightly import KERNELS, REAL_MATRIX, ends, fake_nightly
from xenboot.core import paths
from xenboot.core.errors import BadInput
from xenboot.pipeline.nightly import matrix as nightly_matrix, shard
from xenboot.report import merge, summary as summaries

XENBOOT = str(paths.REPO / "ci" / "xenboot")
NAMES = ("a", "b", "c", "d", "e")
MATRIX = KERNELS + "".join(f'[[boot]]\nname = "{name}"\nkernel = "probe"\nspec = "probe"\n' for name in NAMES)
# What each row's fake boot does: a retry, an unexpected verdict, passes.
ATTEMPTS = {"a": [ends("INFRA", "hiccup"), ends("PASS")], "b": [ends("PANIC")], "c": [ends("PASS")],
            "d": [ends("PASS")], "e": [ends("PASS")]}


def rows(*ids):
    return [types.SimpleNamespace(id=i) for i in ids]


def test_without_history_the_cut_is_by_count_and_the_same_each_time():
    ids = [f"r{n}" for n in range(7)]
    first, used = shard.plan(rows(*ids), 3, {})
    assert first == shard.plan(rows(*ids), 3, {})[0]
    assert sorted(i for share in first for i in share) == sorted(ids)
    assert sorted(map(len, first)) == [2, 2, 3] and set(used.values()) == {1.0}
    # Each share keeps the matrix's order.
    assert all(share == sorted(share, key=ids.index) for share in first)


def test_with_history_the_cut_balances_measured_boot_time():
    costs = {"slow": 90.0, "mid": 40.0, "quick1": 20.0, "quick2": 20.0, "quick3": 10.0}
    shares, used = shard.plan(rows("quick1", "slow", "mid", "quick2", "quick3", "new"), 2, costs)
    # A row the history does not know costs the median of those it does.
    assert used["new"] == 20.0
    # Heaviest first to the lighter share: 90 + 10 against 40 + 3 x 20.
    assert [sum(used[i] for i in share) for share in shares] == [100.0, 100.0], shares
    assert shares[0] == ["slow", "quick3"]
    assert sorted(sum(shares, [])) == sorted(used)


def test_the_history_is_the_median_of_each_rows_last_runs(tmp_path):
    lines = [{"when": str(n), "rows": {"probe": float(n), "odd": "x"}} for n in range(1, 9)]
    (tmp_path / summaries.COST_HISTORY).write_text("".join(json.dumps(e) + "\n" for e in lines) + "not json\n")
    # The last 5 runs: 4..8.
    assert summaries.row_costs(tmp_path) == {"probe": 6.0}
    assert summaries.row_costs(tmp_path / "none") == {}


def run_in(monkeypatch, tmp_path, name, **kwargs):
    folder = tmp_path / name
    folder.mkdir()
    summary, _ = fake_nightly(monkeypatch, folder, MATRIX, ATTEMPTS, bench_dir=tmp_path / "bench", **kwargs)
    return folder / "run", summary


def same_rows(summary):
    """Each row as the comparison needs it: its verdict, outcome, how far it got, its attempts' verdicts."""
    return {r["id"]: (r["verdict"], r["outcome"], r["reached"], r["failed_at"],
                      [a["verdict"] for a in r["attempts"]]) for r in summary["rows"]}


def test_two_shards_merged_equal_the_unsharded_run(monkeypatch, tmp_path):
    _, whole = run_in(monkeypatch, tmp_path, "whole")
    one, first = run_in(monkeypatch, tmp_path, "one", shard=(1, 2))
    two, second = run_in(monkeypatch, tmp_path, "two", shard=(2, 2))
    assert first["shard"]["plan"] == second["shard"]["plan"]
    assert not {r["id"] for r in first["rows"]} & {r["id"] for r in second["rows"]}
    # A host's control socket stays behind in its folder; the copy leaves it out.
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(one / "control.sock"))
    merged = merge.merge([two, one], tmp_path / "merged", tmp_path / "bench")
    assert not (tmp_path / "merged" / "shards" / "1" / "control.sock").exists()
    assert [r["id"] for r in merged["rows"]] == list(NAMES)
    assert same_rows(merged) == same_rows(whole)
    assert merged["counts"] == whole["counts"] and merged["exit_status"] == whole["exit_status"] == 1
    assert [(s["index"], s["state"]) for s in merged["shards"]] == [
        (n, f"failed (exit {s['exit_status']})" if s["exit_status"] else "ok") for n, s in ((1, first), (2, second))]
    # Each row names its shard, and its folder is in the merged run's copy of it.
    for row in merged["rows"]:
        assert (tmp_path / "merged" / row["folder"] / "result.json").is_file()
        assert row["folder"].startswith(f"shards/{row['shard']}/boots/")
    suites = {s.get("name"): s for s in ET.parse(tmp_path / "merged" / "junit.xml").getroot().iter("testsuite")}
    assert sorted(suites) == sorted(NAMES) and suites["b"].get("failures") == "1"
    page = (tmp_path / "merged" / "report.html").read_text()
    assert 'id="shards-table"' in page and all(f'id="row-{name}"' in page for name in NAMES)
    # The merge adds the boots' times to the history the next cut uses.
    assert set(summaries.row_costs(tmp_path / "bench")) == set(NAMES)


def test_a_missing_shard_is_shown_missing_and_the_merge_is_infra(monkeypatch, tmp_path):
    one, first = run_in(monkeypatch, tmp_path, "one", shard=(1, 2))
    merged = merge.merge([one, tmp_path / "two" / "run"], tmp_path / "merged")
    lost = set(first["shard"]["plan"][1])
    missing = {r["id"] for r in merged["rows"] if r["outcome"] == "missing"}
    assert lost and missing == lost and merged["counts"]["missing"] == len(lost)
    assert merged["exit_status"] == 3
    assert merged["shards"][1] == {"index": 2, "count": 2, "folder": str(tmp_path / "two" / "run"),
                                   "state": "missing (no run folder)", "exit_status": None, "seconds": None,
                                   "rows": len(lost)}
    page = (tmp_path / "merged" / "report.html").read_text()
    assert "MISSING" in page and "shard 2/2 did not report it: missing (no run folder)" in page
    suites = {s.get("name"): s for s in ET.parse(tmp_path / "merged" / "junit.xml").getroot().iter("testsuite")}
    assert all(suites[i].get("errors") == "1" for i in lost)


def test_a_merge_of_shards_that_all_stopped_early_is_infra(tmp_path):
    """No summary anywhere, so no plan: the shards are shown, the run is INFRA."""
    (tmp_path / "stopped").mkdir()
    merged = merge.merge([tmp_path / "stopped", tmp_path / "never"], tmp_path / "merged", tmp_path / "bench")
    assert merged["exit_status"] == 3 and merged["rows"] == []
    # Nothing booted, nothing to add to the boot-time history.
    assert not (tmp_path / "bench").exists()
    assert [s["state"] for s in merged["shards"]] == ["no summary.json (the shard stopped before its report)",
                                                      "missing (no run folder)"]
    assert "no summary.json" in (tmp_path / "merged" / "report.html").read_text()


def test_shards_of_two_plans_or_one_shard_twice_are_refused(monkeypatch, tmp_path):
    one, _ = run_in(monkeypatch, tmp_path, "one", shard=(1, 2))
    other, _ = run_in(monkeypatch, tmp_path, "other", shard=(2, 3))
    whole, _ = run_in(monkeypatch, tmp_path, "whole")
    with pytest.raises(BadInput, match="given twice"):
        merge.merge([one, one], tmp_path / "m1")
    with pytest.raises(BadInput, match="different plans"):
        merge.merge([one, other], tmp_path / "m2")
    with pytest.raises(BadInput, match="not a shard"):
        merge.merge([whole], tmp_path / "m3")


def test_the_command_line_merges_and_refuses_what_does_not_fit(monkeypatch, tmp_path):
    one, _ = run_in(monkeypatch, tmp_path, "one", shard=(1, 2))
    env = os.environ | {"XENBOOT_OUT": str(tmp_path / "out")}
    proc = subprocess.run([XENBOOT, "report", "--merge", str(one), str(tmp_path / "gone"), "--out",
                           str(tmp_path / "merged"), "--bench-dir", str(tmp_path / "bench")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "  shard 2/2: missing (no run folder)" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("xenboot: nightly: 2 shards merged: 5 rows:")
    for args, words in ((["--out", str(tmp_path / "x")], "--out="), ([str(one), "--merge", str(one)], "RUN_DIR="),
                        ([], "RUN_DIR: missing")):
        proc = subprocess.run([XENBOOT, "report", *args], capture_output=True, text=True, env=env)
        assert proc.returncode == 2 and proc.stderr.startswith(f"xenboot: BAD_INPUT: {words}"), proc.stderr


def test_make_nightly_passes_the_shard_and_refuses_a_bad_one(tmp_path):
    for shard_arg in ("3/2", "x"):
        proc = subprocess.run([XENBOOT, "nightly", "--shard", shard_arg, "--out", str(tmp_path / shard_arg[0])],
                              capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().startswith(f"xenboot: BAD_INPUT: --shard={shard_arg}: ")
    dry = subprocess.run(["make", "-n", "nightly", "SHARD=1/2"], cwd=paths.REPO, capture_output=True, text=True)
    assert "--shard '1/2'" in dry.stdout


def test_the_default_matrix_cuts_into_two_shards_of_every_row():
    _, matrix_rows = nightly_matrix.load_matrix()
    shares, _ = shard.plan(matrix_rows, 2, {})
    assert sorted(sum(shares, [])) == sorted(r.id for r in matrix_rows) and all(shares)


# -- real boots -------------------------------------------------------------------

def milestones(run_dir, summary):
    """Each row's verdict and the milestones its final boot reached, by name."""
    found = {}
    for row in summary["rows"]:
        data = json.loads((run_dir / row["folder"] / "result.json").read_text()) if row["folder"] else {}
        found[row["id"]] = (row["verdict"], row["outcome"], [m["name"] for m in data.get("milestones", [])])
    return found


@pytest.mark.lab
def test_two_real_shards_merged_equal_the_unsharded_run_row_for_row(tmp_path):
    """test_nightly's real matrix: probe rows that boot in seconds once their
    host is up, one of them unexpected on purpose (exit 1), a FreeBSD row
    not run without the source."""
    (tmp_path / "matrix.toml").write_text(REAL_MATRIX)
    bench = tmp_path / "bench"
    env = {k: v for k, v in os.environ.items() if k != "FREEBSD_SRC"}

    def nightly(out, *shard):
        proc = subprocess.run([XENBOOT, "nightly", "--matrix", str(tmp_path / "matrix.toml"), "--out",
                               str(tmp_path / out), "--bench-dir", str(bench), *shard],
                              capture_output=True, text=True, timeout=900, env=env)
        summary = json.loads((tmp_path / out / "summary.json").read_text())
        # 1 where the unexpected row is.
        assert proc.returncode == summary["exit_status"] in (0, 1), proc.stdout[-3000:] + proc.stderr
        return summary

    whole = nightly("whole")
    assert whole["exit_status"] == 1
    # The unsharded run recorded its boot times: the shards are cut by them.
    assert set(summaries.row_costs(bench)) == {r["id"] for r in whole["rows"] if r["folder"]}
    one = nightly("one", "--shard", "1/2")
    two = nightly("two", "--shard", "2/2")
    assert one["shard"]["basis"] == "boot seconds" and one["shard"]["plan"] == two["shard"]["plan"]
    assert sorted([len(one["rows"]), len(two["rows"])]) == [2, 3]
    proc = subprocess.run([XENBOOT, "report", "--merge", str(tmp_path / "one"), str(tmp_path / "two"),
                           "--out", str(tmp_path / "merged"), "--bench-dir", str(bench)],
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    merged = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert milestones(tmp_path / "merged", merged) == milestones(tmp_path / "whole", whole)
    assert [r["id"] for r in merged["rows"]] == [r["id"] for r in whole["rows"]]
    # An INFRA retry (the lab flakes now and then) may come in either run.
    assert {k: v for k, v in merged["counts"].items() if k != "retried"} == \
        {k: v for k, v in whole["counts"].items() if k != "retried"}
    assert {s["state"] for s in merged["shards"]} <= {"ok", "failed (exit 1)"}
