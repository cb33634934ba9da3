"""A nightly run's summary.json, from its rows to its verdict: each row's
summary, the counts, the run's exit status, junit.xml (one suite per row)
and the bench history the report plots. The nightly writes it for one run;
a merge (report --merge) for shards put together."""
import contextlib
import json
import pathlib
import statistics

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
    # A row a shard should have booted and did not report is the
    # pipeline's failure, not the guest's.
    if any(r["outcome"] == "missing" for r in rows):
        unexpected.add(Verdict.INFRA)
    if not unexpected:
        return EXIT_PASS
    for verdict in EXIT_PRECEDENCE:
        if verdict in unexpected:
            return verdict.exit_status
    return EXIT_GUEST_FAILED


def counts(rows):
    found = {"rows": len(rows), "as-expected": 0, "unexpected": 0, "not-run": 0}
    for r in rows:
        # "missing" (a merge's rows no shard reported) only where there are some.
        found[r["outcome"]] = found.get(r["outcome"], 0) + 1
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
                                                     "verdict", "retried", "flag", "folder", "shard")}
        if row["outcome"] == "missing":
            # What no shard reported is the pipeline's error, not a guest's.
            data = {"verdict": Verdict.INFRA.value, "message": row["reason"]}
        suites.append(result.junit_suite(
            row["id"], data | {"verdict": row["verdict"] or data.get("verdict"),
                               "message": row.get("message") or data.get("message")},
            expect=row["expect"] or Verdict.PASS,
            classname=f"nightly.{row['kernel'] or 'missing'}", case_prefix=f"{row['id']} ", properties=properties,
            skipped=row["reason"] if row["outcome"] == "not-run" else None,
            note=f"flagged: {row['flag']}" if row["flag"] else None))
    result.write_junit(path, suites, name="nightly")


def _jsonl(path):
    """The objects of a JSON-lines file, lines that are not one skipped; none
    when it is not a file (opening a FIFO would block)."""
    entries = []
    if not path.is_file():
        return entries
    with contextlib.suppress(OSError):
        with open(path) as f:
            for line in f:
                with contextlib.suppress(ValueError):
                    entries.append(json.loads(line))
    return entries


def bench_history(bench_dir, keep=30):
    """The last `keep` bench runs (bench.py's history.jsonl), for the report's plots."""
    return _jsonl(pathlib.Path(bench_dir) / "history.jsonl")[-keep:]


# -- boot costs, for cutting a matrix into shards -------------------------------

COST_HISTORY = "nightly-history.jsonl"
COST_RUNS = 5


def row_seconds(summary, run_dir):
    """{row id: seconds its final boot took (its result.json durations)} of
    the rows that booted; an INFRA end says nothing of what the boot costs."""
    found = {}
    for row in summary["rows"]:
        if row.get("folder") and row.get("verdict") != Verdict.INFRA.value:
            with contextlib.suppress(OSError, ValueError):
                data = json.loads((pathlib.Path(run_dir) / row["folder"] / "result.json").read_text())
                found[row["id"]] = round(sum((data.get("durations") or {}).values()), 3)
    return found


def append_costs(bench_dir, summary, run_dir):
    """One line in bench_dir's nightly-history.jsonl: when, and each row's
    boot seconds; none for a run that booted nothing."""
    seconds = row_seconds(summary, run_dir)
    if not seconds:
        return
    path = pathlib.Path(bench_dir)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / COST_HISTORY, "a") as f:
        f.write(json.dumps({"when": summary.get("finished"), "rows": seconds}) + "\n")


def row_costs(bench_dir):
    """{row id: median seconds of its last COST_RUNS boots} from nightly-history.jsonl."""
    seen = {}
    for entry in _jsonl(pathlib.Path(bench_dir) / COST_HISTORY):
        for row_id, seconds in (entry.get("rows") or {}).items():
            if isinstance(seconds, (int, float)):
                seen.setdefault(row_id, []).append(seconds)
    return {row_id: statistics.median(found[-COST_RUNS:]) for row_id, found in seen.items()}
