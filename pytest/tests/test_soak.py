"""make soak: many probe boots on one lab flavour, the INFRA count and its
causes (issue 19)."""
import json
import subprocess

import pytest

from xenboot.core import paths
from xenboot.pipeline import bench, soak

pytestmark = pytest.mark.lab

DMESG = ("[   26.711012] xenboot-agent[168]: segfault at 0 ip 000000000044eb52 sp 00007ffeca703188 error 4 "
         "in xenboot-agent[401000+7b000] likely on CPU 1 (core 0, socket 0)\n"
         "[   79.213308] traps: xl[174] general protection fault ip:7f7b683f9060 sp:7fffca7d69c0 error:0\n")


def test_one_cause_counts_once_whatever_its_numbers():
    one = soak.cause("console relay: console relay for /dev/pts/3 did not start (exit status 139): ")
    other = soak.cause("console relay: console relay for /dev/pts/1 did not start (exit status 139): ")
    assert one == other == "console relay: console relay for /dev/pts/N did not start (exit status 139):"
    assert soak.cause("create: xl create exited 134 after 9.3 s: malloc(): corrupted top size (xl-create.log)") \
        == "create: xl create exited 134 after N s: malloc(): corrupted top size"


def test_the_figures_count_every_attempt_with_dom0_s_crashes(tmp_path):
    (tmp_path / "boots" / "soak-0001-1" / "dom0").mkdir(parents=True)
    (tmp_path / "boots" / "soak-0001-1" / "dom0" / "dmesg.txt").write_text(DMESG)
    relay = "console relay: console relay for /dev/pts/3 did not start (exit status 139): "
    summary = {"finished": "now", "parallel": 4, "seconds": 12.5, "counts": {"retried": 1}, "exit_status": 0,
               "rows": [{"verdict": "PASS", "attempts": [
                            {"verdict": "INFRA", "message": relay, "folder": "boots/soak-0001-1"},
                            {"verdict": "PASS", "message": "ok", "folder": "boots/soak-0001-2",
                             "share_wait": {"enoent": 2, "seconds": 0.144}}]},
                        {"verdict": "PASS", "attempts": [{"verdict": "PASS", "message": "ok",
                                                          "folder": "boots/soak-0002-1"}]}]}
    load = {"start": 1.0, "end": 2.0, "mean": 1.5, "max": 2.0}
    data = soak.summarize(summary, tmp_path, "debug", load)
    assert (data["rows"], data["boots"], data["infra"]) == (2, 3, 1)
    assert data["verdicts"] == {"INFRA": 1, "PASS": 2} and data["row_verdicts"] == {"PASS": 2}
    assert data["causes"] == [{"count": 1, "cause": soak.cause(relay), "example": "boots/soak-0001-1"}]
    assert data["dom0_crashes"] == {"xenboot-agent: segfault at 0 ip 000000000044eb52": 1,
                                    "xl: general protection fault ip:7f7b683f9060": 1}
    text = "\n".join(soak.lines(data))
    assert "soak [debug]: 3 boots for 2 rows, 4 at once, in 12 s (load 1.0 at the start" in text
    assert "INFRA 1 of 3 (33.3%)" in text and "xenboot-agent: segfault at 0" in text
    assert data["share_waits"] == {"boots": 1, "enoent": 2, "max_seconds": 0.144}
    assert "dom0 saw a just-written guest.cfg only after 2 ENOENT answer(s) in 1 boots (waited at most 0.144 s" in text


def test_make_soak_boots_and_counts_and_make_bench_shows_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XENBOOT_OUT", str(tmp_path / "out"))
    proc = subprocess.run(["make", "--no-print-directory", "soak", "BOOTS=4", "LAB=debian", f"OUT={tmp_path / 'run'}"],
                          cwd=paths.REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "run" / "soak.json").read_text())
    assert data["flavour"] == "debian" and data["rows"] == 4 and data["boots"] >= 4
    assert data["verdicts"].get("PASS") == 4 and data["row_verdicts"] == {"PASS": 4}
    assert set(data["load"]) == {"start", "end", "mean", "max"}
    assert f"soak [debian]: {data['boots']} boots for 4 rows, 4 at once" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith(f"xenboot: soak: {data['infra']} INFRA in ")
    last = tmp_path / "out" / "soak" / "last-debian.json"
    assert json.loads(last.read_text()) == data
    # make bench carries the last soak of each flavour.
    assert bench.last_soaks() == {"debian": data}


def test_make_soak_on_the_hvm_cpu_soaks_the_pvh_probe(tmp_path, monkeypatch):
    assert 'file = "probe-pvh32"' in soak.matrix(2, "debian", "hvm")
    monkeypatch.setenv("XENBOOT_OUT", str(tmp_path / "out"))
    proc = subprocess.run(["make", "--no-print-directory", "soak", "BOOTS=1", "LAB=debian", "LAB_CPU=hvm",
                           f"OUT={tmp_path / 'run'}"], cwd=paths.REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "run" / "soak.json").read_text())
    assert data["row_verdicts"] == {"PASS": 1}
    summary = json.loads((tmp_path / "run" / "nightly" / "summary.json").read_text())
    folder = tmp_path / "run" / "nightly" / summary["rows"][0]["folder"]
    record = json.loads((folder / "result.json").read_text())
    assert (record["kernel"]["guest_type"], record["host"]["cpu_profile"]) == ("pvh", "hvm")
