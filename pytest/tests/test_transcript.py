"""xenboot.testing.transcript: a run folder becomes a REAL transcript that the player
plays back to the same verdict, milestones and debugger replies, so that a
real boot's console can join pytest/tests/transcripts/ as one file.

The run folders here are live runs of SYNTHETIC transcripts (no real boot
exists on this machine), with a result.json holding what boot records; the
provenance given is made up and says so."""
import json
import pathlib

import pytest

from xenboot.testing import player, transcript
from xenboot.report.checklog import check_log
from xenboot.core.errors import BadInput
from xenboot.judge.spec import load_spec

TRANSCRIPTS = pathlib.Path(__file__).parent / "transcripts"
SPEED = 40
GIVEN = {"tree": "made-up/tree @ 0000000000000000000000000000000000000000 (a test, not FreeBSD)",
         "version": "10.4-RELEASE", "local-change": "none"}
CASES = {
    "i386-no-init-ddb": "freebsd-xen-pv-i386",          # fatal session, pager, stays in ddb
    "boot-d-continue-init": "freebsd-xen-pv-boot-d",    # session, continue, boot goes on, poweroff
    "kdb-mid-boot": "freebsd-xen-pv-kdb",               # continue mid-boot, init, poweroff
    "crash-early": "freebsd-xen-pv",                    # the domain crashes
    "i386-early-ddb": "freebsd-xen-pv-i386-boot-d",     # silence; the stack says ddb
    "real-i386-stock-crash": "freebsd-xen-pv-i386",     # Xen's lines, the crash quoted from them
}


def live(name, spec, out):
    out.mkdir(exist_ok=True)
    outcome, _ = player.replay(TRANSCRIPTS / f"{name}.txt", spec, out, speed=SPEED)
    # What boot writes into result.json and the converter reads.
    (out / "result.json").write_text(json.dumps({
        "kernel": {"sha256": "cd" * 32}, "host": {"xen_version": "4.17.5"},
        "spec": {"name": spec}, "verdict": outcome.verdict.value, "failed_at": outcome.failed_at,
        "diagnosis": outcome.diagnosis}))
    return outcome


def summary(outcome):
    return (outcome.verdict, outcome.failed_at, [m["name"] for m in outcome.milestones],
            outcome.debugger, [(n["name"], n["line"]) for n in outcome.notes], outcome.end_reason)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_converted_run_plays_back_to_the_same_outcome(tmp_path, name):
    spec = CASES[name]
    first = live(name, spec, tmp_path / "live")
    found = transcript.provenance_of(tmp_path / "live", **{k.replace("-", "_"): v for k, v in GIVEN.items()})
    debugger = load_spec(spec).debugger
    text = transcript.convert(tmp_path / "live", found, leaving=(debugger.continue_, debugger.reset))
    converted = tmp_path / f"{name}.txt"
    converted.write_text(text)
    assert player.provenance(converted)["kind"] == "REAL"
    assert player.provenance(converted)["verdict"] == first.verdict.value
    (tmp_path / "again").mkdir()
    again, _ = player.replay(converted, spec, tmp_path / "again", speed=SPEED)
    assert summary(again) == summary(first) and again.message == first.message
    # and check-log judges the replay's own recording the same way
    rejudged = check_log(tmp_path / "again" / "console.log", load_spec(spec).scaled(1 / SPEED),
                         tmp_path / "again" / "console.jsonl", diagnosis=again.diagnosis)
    assert rejudged.verdict is first.verdict


def test_the_session_and_its_pager_become_directives(tmp_path):
    live("i386-no-init-ddb", "freebsd-xen-pv-i386", tmp_path)
    found = transcript.provenance_of(tmp_path, "t @ c", "10.4-RELEASE", "none", xen="4.17.5 debug")
    lines = transcript.convert(tmp_path, found, leaving=("c", "reset")).splitlines()
    assert lines[0].startswith("# REAL ") and "# xen: 4.17.5 debug" in lines
    assert "# kernel-sha256: " + "cd" * 32 in lines and "# local-change: none" in lines
    at = lines.index(next(line for line in lines if "@ session" in line))
    assert lines[at].endswith('@ session "db> "') and lines[at - 1].endswith("~ Stopped at\\tkdb_enter+0x35:"
                                                                          "\\tmovl\\t$0,kdb_why\\n\\r")
    assert lines[at + 1:at + 4] == ["      = set $lines = 0", "      = bt",
                                    "      ~ Tracing pid 1 tid 100002 td 0xc6f3a000\\n\\r"]
    assert "      @ more" in lines and not any("--More--" in line for line in lines)


def test_the_command_line_writes_the_file(tmp_path, capsys):
    live("boot-d-continue-init", "freebsd-xen-pv-boot-d", tmp_path / "run")
    out = tmp_path / "real.txt"
    assert transcript.main([str(tmp_path / "run"), "--tree", GIVEN["tree"], "--version", "10.4-RELEASE",
                            "--local-change", "none", "--out", str(out)]) == 0
    found = player.provenance(out)
    assert found["spec"] == "freebsd-xen-pv-boot-d" and found["xen"] == "4.17.5"
    assert "      = c" in out.read_text().splitlines() and "      @ leave" in out.read_text()


def test_a_folder_without_a_result_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="result.json"):
        transcript.provenance_of(tmp_path, "t", "v", "none")
