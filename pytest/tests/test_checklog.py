"""check-log: a recorded console judged again gives the live verdict (with the
run's console.jsonl for timing), works without timestamps, and writes
result.json and junit.xml for every outcome, BAD_INPUT included."""
import json
import pathlib
import random
import xml.etree.ElementTree as ET

import pytest

from xenboot import cli
from xenboot.testing import player
from xenboot.report.checklog import check_log, recorded_diagnosis
from xenboot.core.errors import Verdict
from xenboot.testing.player import replay
from xenboot.judge.spec import load_spec

TRANSCRIPTS = pathlib.Path(__file__).parent / "transcripts"
SPEED = 40
# Transcripts replayed live, then judged again from their run folders; each
# header names its spec.
RUNS = {name: player.provenance(TRANSCRIPTS / f"{name}.txt")["spec"] for name in (
    "boot-d-continue-init", "hang-after-kdb", "timeout-chatter", "panic-backtrace", "pager-more",
    "crash-early", "probe")}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Live runs of some transcripts: {name: (run folder, live outcome)}."""
    runs = {}
    for name, spec in RUNS.items():
        out = tmp_path_factory.mktemp(name)
        runs[name] = out, replay(TRANSCRIPTS / f"{name}.txt", spec, out, speed=SPEED)[0]
    return runs


def summary(outcome):
    return (outcome.verdict, outcome.failed_at, [m["name"] for m in outcome.milestones],
            [d["command"] for d in outcome.debugger])


@pytest.mark.parametrize("name", sorted(RUNS))
def test_rejudging_with_the_jsonl_gives_the_live_verdict(recorded, name):
    out, live = recorded[name]
    again = check_log(out / "console.log", load_spec(RUNS[name]).scaled(1 / SPEED),
                      out / "console.jsonl")
    assert summary(again) == summary(live)
    assert [m["seconds"] for m in again.milestones] == [m["seconds"] for m in live.milestones]


def test_without_timestamps_there_are_no_deadlines(recorded):
    out, _ = recorded["boot-d-continue-init"]
    outcome = check_log(out / "console.log", load_spec("freebsd-xen-pv-boot-d"), end_reason="poweroff")
    assert outcome.verdict is Verdict.PASS
    assert all(m["seconds"] is None for m in outcome.milestones)
    assert outcome.debugger[1]["command"] == "bt" and "initxen()" in outcome.debugger[1]["reply"]


def test_a_bare_log_does_not_show_the_domain_end_the_spec_asks_for(recorded):
    out, _ = recorded["boot-d-continue-init"]
    outcome = check_log(out / "console.log", load_spec("freebsd-xen-pv-boot-d"))
    assert (outcome.verdict, outcome.failed_at) == (Verdict.MILESTONE_MISSING, "poweroff")
    assert outcome.milestones[-1]["name"] == "init"


def test_a_changed_spec_judges_the_old_log_differently(recorded):
    out, _ = recorded["boot-d-continue-init"]
    assert check_log(out / "console.log", load_spec("freebsd-xen-pv")).verdict is Verdict.DEBUGGER


def test_end_of_log_is_the_given_end(recorded):
    out, _ = recorded["hang-after-kdb"]
    generic = load_spec("generic")
    assert check_log(out / "console.log", generic).verdict is Verdict.MILESTONE_MISSING
    assert check_log(out / "console.log", generic, end_reason="poweroff").verdict is Verdict.PASS
    assert check_log(out / "console.log", generic, end_reason="alive").verdict is Verdict.PASS
    assert check_log(out / "console.log", generic, end_reason="crash").verdict is Verdict.CRASH


def test_command_line_writes_result_and_junit(recorded, tmp_path, capsys):
    out, _ = recorded["panic-backtrace"]
    status = cli.main(["check-log", str(out / "console.log"), "--spec", "freebsd-xen-pv",
                       "--out", str(tmp_path)])
    assert status == 1
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("xenboot: PANIC: panic: vm_fault")
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["verdict"] == "PANIC" and result["exit_status"] == 1
    assert result["failed_at"] == "mountroot" and result["spec"] == "freebsd-xen-pv"
    assert [m["name"] for m in result["milestones"]][:2] == ["kdb-backends", "kdb-current"]
    assert any(d["command"] == "bt" for d in result["debugger"])
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.find("properties/property[@name='verdict']").get("value") == "PANIC"


def test_command_line_default_output_folder(recorded):
    out, _ = recorded["probe"]
    assert cli.main(["check-log", str(out / "console.log"), "--spec", "probe",
                     "--jsonl", str(out / "console.jsonl")]) == 0
    assert json.loads((out / "check-log" / "result.json").read_text())["verdict"] == "PASS"


@pytest.mark.parametrize("problem", ["spec", "log", "jsonl"])
def test_bad_input_still_writes_a_result(recorded, tmp_path, problem, capsys):
    out, _ = recorded["probe"]
    bad_jsonl = tmp_path / "bad.jsonl"
    bad_jsonl.write_text('{"t": 0, "dir": "recv", "n": 3}\nnot json\n')
    args = {"spec": ["--spec", "no-such-spec"],
            "log": ["--spec", "probe"],
            "jsonl": ["--spec", "probe", "--jsonl", str(bad_jsonl)]}[problem]
    log = tmp_path / "missing.log" if problem == "log" else out / "console.log"
    status = cli.main(["check-log", str(log), *args, "--out", str(tmp_path / "res")])
    assert status == 2
    result = json.loads((tmp_path / "res" / "result.json").read_text())
    assert result["verdict"] == "BAD_INPUT"
    assert "\n" not in result["message"]
    assert capsys.readouterr().out.startswith("xenboot: BAD_INPUT: ")


def test_any_bytes_can_be_judged(tmp_path):
    log = tmp_path / "noise.log"
    log.write_bytes(random.Random(0).randbytes(1 << 20))
    outcome = check_log(log, load_spec("freebsd-xen-pv"))
    assert outcome.verdict is Verdict.MILESTONE_MISSING and outcome.failed_at == "kdb-backends"


def test_a_recorded_hang_in_the_debugger_is_judged_as_live(recorded, tmp_path):
    """check-log takes the live run's diagnosis from the result.json beside
    the log: its xenctx stack (SYNTHETIC frames here) turns the HANG into
    DEBUGGER, as it did live."""
    out, _ = recorded["hang-after-kdb"]
    run = tmp_path / "run"
    run.mkdir()
    for name in ("console.log", "console.jsonl"):
        (run / name).write_bytes((out / name).read_bytes())
    spec = load_spec("freebsd-xen-pv").scaled(1 / SPEED)

    def again():
        return check_log(run / "console.log", spec, run / "console.jsonl",
                         diagnosis=recorded_diagnosis(run / "console.log"))
    assert again().verdict is Verdict.HANG
    (run / "result.json").write_text(json.dumps({"diagnosis": {"frames": ["db_readline+0x9c", "db_trap+0xf1",
                                                                          "kdb_trap+0xe5"]}}))
    outcome = again()
    assert outcome.verdict is Verdict.DEBUGGER and outcome.message.startswith("console not attached")


def test_check_log_of_a_crash_quotes_xen_as_the_live_run_did(tmp_path, capsys):
    """The REAL stock 10.4 i386 crash: its console.log re-judged from the run
    folder (console.jsonl and xen.log beside it) gives the live verdict line."""
    out = tmp_path / "run"
    out.mkdir()
    live, _ = replay(TRANSCRIPTS / "real-i386-stock-crash.txt", "freebsd-xen-pv-i386", out, speed=SPEED)
    assert live.message.startswith("Xen: ")
    assert cli.main(["check-log", str(out / "console.log"), "--spec", "freebsd-xen-pv-i386",
                     "--out", str(tmp_path / "again")]) == 1
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"xenboot: CRASH: {live.message}"
    assert json.loads((tmp_path / "again" / "result.json").read_text())["xen"]["cr2"] == "0xc06baffc"
