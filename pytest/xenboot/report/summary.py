"""A nightly run's summary.json, from its rows to its verdict: each row's
summary, the counts, the run's exit status, junit.xml (one suite per row)
and the bench history the report plots. The nightly writes it for one run;
a merge (report --merge) for shards put together."""
import contextlib
import json
import pathlib

from xenboot.core import result
from xenboot.core.errors import EXIT_GUEST_FAILED, EXIT_PASS, Verdict

SCHEMA = 1
# The order in which an unexpected verdict decides the run's exit status:
# a broken harness or build says more than a guest failure does.
EXIT_PRECEDENCE = result.HARNESS_VERDICTS


def row_summary(row):
    data = row.describe()
    if row.not_run:
        return data | {"outcome": "not-run", "reason": row.not_run, "verdict": None,
                       "attempts": [], "retried": 0, "flag": None, "folder": None,
                       "reached": None, "failed_at": None}
    final = row.attempts[-1]
    retried = len(row.attempts) - 1
    verdict = Verdict(final["verdict"])
    flag = None
    if retried:
        # The first fault's words: what to look into when a lab flakes.
        flag = (f"{'passed' if verdict is Verdict.PASS else 'ended ' + verdict.value} after "
                f"{retried} INFRA retr{'y' if retried == 1 else 'ies'} (first: {row.attempts[0]['message']})")
    return data | {"outcome": "as-expected" if verdict is row.expect else "unexpected",
                   "verdict": verdict.value, "message": final["message"],
                   "attempts": row.attempts, "retried": retried, "flag": flag,
                   "folder": final["folder"], "reached": final.get("reached"),
                   "failed_at": final.get("failed_at")}


def exit_status(rows):
    unexpected = {Verdict(r["verdict"]) for r in rows if r["outcome"] == "unexpected"}
    if not unexpected:
        return EXIT_PASS
    for verdict in EXIT_PRECEDENCE:
        if verdict in unexpected:
            return verdict.exit_status
    return EXIT_GUEST_FAILED


def counts(rows):
    found = {"rows": len(rows), "as-expected": 0, "unexpected": 0, "not-run": 0}
    for r in rows:
        found[r["outcome"]] += 1
    found["retried"] = sum(1 for r in rows if r["retried"])
    return found


def write_junit(path, summary):
    """One testsuite per row: its milestones, and a `verdict` case judged
    against what the matrix expects (a row not run is skipped)."""
    run_dir = pathlib.Path(path).parent
    suites = []
    for row in summary["rows"]:
        data = {}
        if row["folder"]:
            with contextlib.suppress(OSError, ValueError):
                data = json.loads((run_dir / row["folder"] / "result.json").read_text())
        properties = {key: row.get(key) for key in ("kernel", "spec", "host", "memory", "cmdline", "expect",
                                                     "verdict", "retried", "flag", "folder")}
        suites.append(result.junit_suite(
            row["id"], data | {"verdict": row["verdict"], "message": row.get("message")}, expect=row["expect"],
            classname=f"nightly.{row['kernel']}", case_prefix=f"{row['id']} ", properties=properties,
            skipped=row["reason"] if row["outcome"] == "not-run" else None,
            note=f"flagged: {row['flag']}" if row["flag"] else None))
    result.write_junit(path, suites, name="nightly")


def bench_history(bench_dir, keep=30):
    """The last `keep` bench runs (bench.py's history.jsonl), for the report's plots."""
    entries = []
    path = pathlib.Path(bench_dir) / "history.jsonl"
    # Not a file: no history (opening a FIFO would block).
    if not path.is_file():
        return entries
    with contextlib.suppress(OSError):
        with open(path) as f:
            for line in f:
                with contextlib.suppress(ValueError):
                    entries.append(json.loads(line))
    return entries[-keep:]

