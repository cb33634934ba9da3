"""Every transcript judged the same however the guest's bytes are chunked:
one byte at a time, random splits, or each instant's output in one burst,
through the live console driver. A match must never take an unfinished line
(it once caught `badpte: ...: ` before the rest arrived)."""
import pathlib
import random

import pytest

from xenboot.console import xenconsole
from xenboot.testing import player

TRANSCRIPTS = pathlib.Path(__file__).parent / "transcripts"
SPEED = 40


def spec_of(path):
    """The spec a transcript was recorded or written for: its header's."""
    return player.provenance(path)["spec"]


def one_byte(data):
    return [data[i:i + 1] for i in range(len(data))]


def random_splits(seed):
    rng = random.Random(seed)

    def pieces(data):
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, len(data) // 8))) if len(data) > 1 else []
        return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
    return pieces


def whole(data):
    return [data]


def judged(outcome):
    """What a chunking must not change: everything but the times, and but
    which source a line both sources carry was taken from (the guest's
    console or Xen's console_io copy: whichever the harness reads first,
    two channels whose relative timing no chunking of one of them decides;
    sources_are_true checks each source instead)."""
    return {
        "verdict": outcome.verdict, "message": outcome.message, "failed_at": outcome.failed_at,
        "end_reason": outcome.end_reason,
        "milestones": [(m["name"], m["line"]) for m in outcome.milestones],
        "fatal": [(f["kind"], f["line"]) for f in outcome.fatal],
        "notes": [(n["name"], n["line"], n.get("fields")) for n in outcome.notes],
        "debugger": [{k: v for k, v in d.items()} for d in outcome.debugger],
    }


def sources_are_true(outcome, path):
    """Every milestone said to come from Xen's console is a Xen line of the
    transcript."""
    xen = {m.group(3) for step in path.read_text().splitlines()
           if (parts := step.split(" ", 2))[1:2] == ["x"] and (m := xenconsole.PREFIX.match(parts[2]))}
    wrong = [(m["name"], m["line"]) for m in outcome.milestones if m.get("source") == "xen" and m["line"] not in xen]
    assert wrong == [], f"milestones said to come from Xen's console that it did not print: {wrong}"


PATHS = sorted(TRANSCRIPTS.glob("*.txt"))


def test_every_transcript_names_the_spec_it_is_judged_by():
    assert [p.name for p in PATHS if "spec" not in player.provenance(p)] == []


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_chunking_does_not_change_the_judgement(tmp_path, path):
    spec = spec_of(path)
    outcomes = {}
    for name, pieces in (("burst", whole), ("one byte", one_byte), ("random", random_splits(path.stem))):
        out = tmp_path / name.replace(" ", "-")
        out.mkdir()
        outcome = player.replay(path, spec, out, speed=SPEED, pieces=pieces)[0]
        sources_are_true(outcome, path)
        outcomes[name] = judged(outcome)
    assert outcomes["one byte"] == outcomes["burst"]
    assert outcomes["random"] == outcomes["burst"]
    found = player.provenance(path)
    if found["kind"] == "REAL":
        assert outcomes["burst"]["verdict"].value == found["verdict"]
