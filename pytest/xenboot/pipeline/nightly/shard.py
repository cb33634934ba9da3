"""`--shard I/N`: the I-th of N shares of the matrix rows, for N CI workers.

The cut is a plan every shard computes alike from the same matrix and the
same cost history: rows are dealt heaviest first (ties by name) to the
share with the least cost so far, so the shares take about the same time.
A row's cost is its measured boot time (the median of its last runs in the
nightly history, summary.row_costs); a row the history does not know costs
the median of those it does, and with no history at all every row costs
the same: the cut is by count. Each share keeps the matrix's order, and
records the whole plan, so a merge can tell what a missing shard held."""
import statistics


def plan(rows, count, costs):
    """[[row id]] for shards 1..count, and the cost used for each row."""
    known = [costs[r.id] for r in rows if r.id in costs]
    default = statistics.median(known) if known else 1.0
    used = {r.id: costs.get(r.id, default) for r in rows}
    shares = [[] for _ in range(count)]
    load = [0.0] * count
    for row_id in sorted(used, key=lambda i: (-used[i], i)):
        lightest = min(range(count), key=lambda n: (load[n], n))
        shares[lightest].append(row_id)
        load[lightest] += used[row_id]
    order = {r.id: n for n, r in enumerate(rows)}
    return [sorted(share, key=order.get) for share in shares], used


def describe(index, count, shares, used, basis):
    """summary.json's `shard`: which share this run is, and the plan it was cut from."""
    return {"index": index, "count": count, "rows": shares[index - 1], "plan": shares,
            "costs": used, "basis": basis}
