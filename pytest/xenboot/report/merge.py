"""`xenboot report --merge SHARD_DIR... --out DIR`: one nightly run folder
from the run folders of its shards (`nightly --shard I/N`).

Each shard's folder is copied whole into DIR/shards/<I>/, so the merged
folder stands alone (one CI artifact), and its summary.json, junit.xml and
report.html hold every row of every shard, each naming its shard, in the
matrix's order. Every shard records the plan all of them were cut from, so
a row is neither lost nor counted twice: a row its shard did not report
(a shard missing, stopped before its summary, interrupted) is a row
"missing", and an incomplete shard makes the merged exit status INFRA.
"""
import os
import pathlib
import shutil
import stat
import time

from xenboot.core import result
from xenboot.core.errors import EXIT_INFRA, BadInput
from xenboot.report import summary as summaries
from xenboot.report.report import read_json, write_report

SHARDS = "shards"


def _shard_state(folder, summary):
    """What became of a shard: ok, failed (exit N), interrupted, no summary, or missing."""
    if summary is None:
        return "no summary.json (the shard stopped before its report)" if folder.is_dir() else \
            "missing (no run folder)"
    if summary.get("interrupted"):
        return f"interrupted ({summary['interrupted']})"
    return "ok" if summary.get("exit_status") == 0 else f"failed (exit {summary.get('exit_status')})"


def _read_shards(folders):
    """({index: (folder, summary)}, [folders without a summary], count, plan, order), checked to be
    shards of one plan."""
    present, unknown = {}, []
    for folder in map(pathlib.Path, folders):
        summary = read_json(folder / "summary.json") if (folder / "summary.json").is_file() else None
        if summary is None:
            unknown.append(folder)
            continue
        shard = summary.get("shard")
        if not shard:
            raise BadInput(f"--merge={folder}: is a whole nightly run, not a shard; give the run folders "
                           f"of `nightly --shard I/N`")
        if shard["index"] in present:
            raise BadInput(f"--merge={folder}: shard {shard['index']}/{shard['count']} is given twice "
                           f"(also {present[shard['index']][0]}); give each shard once")
        present[shard["index"]] = (folder, summary)
    plans = {(s["shard"]["count"], repr(s["shard"]["plan"])) for _, s in present.values()}
    if len(plans) > 1:
        raise BadInput(f"--merge={' '.join(map(str, folders))}: the shards were cut from different plans "
                       f"(another matrix, N or boot-time history); run every shard of one pipeline")
    first = next(iter(present.values()), (None, None))[1]
    count = first["shard"]["count"] if first else len(unknown)
    plan = first["shard"]["plan"] if first else [[] for _ in range(count)]
    order = list(first["shard"]["costs"]) if first else []
    return present, unknown, count, plan, order


def _not_files(folder, names):
    """What a copy leaves out: a stopped host's sockets and FIFOs, which
    cannot be copied and mean nothing once it is gone."""
    kept = (stat.S_ISREG, stat.S_ISDIR, stat.S_ISLNK)
    return [n for n in names if not any(is_kind(os.lstat(os.path.join(folder, n)).st_mode) for is_kind in kept)]


def _missing_row(row_id, index, count, state):
    return {"id": row_id, "kernel": None, "spec": None, "cmdline": "", "host": None, "expect": None,
            "lab": None, "memory": None, "outcome": "missing", "verdict": None, "shard": index,
            "reason": f"shard {index}/{count} did not report it: {state}", "attempts": [], "retried": 0,
            "flag": None, "folder": None, "reached": None, "failed_at": None}


def merge(folders, out, bench_dir=None):
    """Writes the merged run folder `out`; returns its summary."""
    t0 = time.monotonic()
    out = pathlib.Path(out)
    # The command line made it already; a caller of its own may not have.
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    present, unknown, count, plan, order = _read_shards(folders)
    # A folder without a summary is one of the shards no summary names.
    absent = iter(unknown)
    shards, rows, kernels = [], {}, {}
    for index in range(1, count + 1):
        folder, summary = present.get(index) or (next(absent, None), None)
        state = _shard_state(folder, summary) if folder else "missing (no run folder given)"
        shards.append({"index": index, "count": count, "folder": str(folder) if folder else None,
                       "state": state, "exit_status": summary.get("exit_status") if summary else None,
                       "seconds": summary.get("seconds") if summary else None,
                       "rows": len(plan[index - 1]) if plan else None})
        if summary is None:
            rows.update({row_id: _missing_row(row_id, index, count, state) for row_id in plan[index - 1]})
            continue
        into = f"{SHARDS}/{index}"
        shutil.copytree(folder, out / into, symlinks=True, dirs_exist_ok=True, ignore=_not_files)
        for row in summary.get("rows", []):
            rows[row["id"]] = row | {"shard": index,
                                     "folder": f"{into}/{row['folder']}" if row.get("folder") else None,
                                     "attempts": [a | {"folder": f"{into}/{a['folder']}"} for a in row["attempts"]]}
        for row_id in plan[index - 1]:
            rows.setdefault(row_id, _missing_row(row_id, index, count, state))
        for name, kernel in (summary.get("kernels") or {}).items():
            kernels.setdefault(name, kernel | {"folder": f"{into}/kernels/{name}"})
    # Folders beyond the plan's N hold nothing it knows of; still shown.
    shards += [{"index": None, "count": count, "folder": str(f), "state": _shard_state(f, None),
                "exit_status": None, "seconds": None, "rows": 0} for f in absent]
    ordered = [rows.pop(row_id) for row_id in order if row_id in rows] + list(rows.values())
    summaries_in = [present[index][1] for index in sorted(present)]
    first = summaries_in[0] if summaries_in else {}
    merged = {"schema": summaries.SCHEMA, "kind": "nightly", "run_dir": str(out),
              "started": min((s.get("started") or "" for s in summaries_in), default=None),
              "finished": max((s.get("finished") or "" for s in summaries_in), default=None),
              # The shards ran side by side: the run took as long as its longest shard.
              "seconds": max((s.get("seconds") or 0 for s in summaries_in), default=0),
              "matrix": first.get("matrix"), "parallel": first.get("parallel"), "source": first.get("source", {}),
              "kernels": kernels, "interrupted": next((s["interrupted"] for s in summaries_in
                                                       if s.get("interrupted")), False),
              "stages": {f"shard {s['index']}": {"seconds": s["seconds"]} for s in shards
                         if s["seconds"] is not None},
              "shards": shards, "rows": ordered, "counts": summaries.counts(ordered),
              "bench": first.get("bench", [])}
    status = summaries.exit_status(ordered)
    incomplete = any(not (s["state"] == "ok" or s["state"].startswith("failed")) for s in shards)
    merged["exit_status"] = EXIT_INFRA if incomplete else status
    merged["stages"]["merge"] = {"seconds": round(time.monotonic() - t0, 3)}
    result.write_json(str(out / "summary.json"), merged)
    summaries.write_junit(str(out / "junit.xml"), merged)
    write_report(out)
    if bench_dir is not None:
        summaries.append_costs(bench_dir, merged, out)
    return merged


def print_merged(merged):
    """The merge's lines: one a shard, then the counts (the verdict line last)."""
    for shard in merged["shards"]:
        where = f" ({shard['folder']})" if shard["folder"] else ""
        index = f"{shard['index']}/{shard['count']}" if shard["index"] else "?"
        print(f"  shard {index}: {shard['state']}, {shard['rows']} rows{where}")
    c = merged["counts"]
    n = len(merged["shards"])
    print(f"xenboot: nightly: {n} shard{'s' if n != 1 else ''} merged: {c['rows']} rows: {c['as-expected']} as "
          f"expected, {c['unexpected']} unexpected, {c['not-run']} not run, {c.get('missing', 0)} missing, "
          f"{c['retried']} retried; report {os.path.join(merged['run_dir'], 'report.html')}", flush=True)
