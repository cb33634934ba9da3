"""report.html: a nightly run folder as one page a browser shows offline.

A table of the boots and their verdicts; per boot a timeline (inline SVG:
milestones on a time axis since unpause, fatal lines, what was typed, where
it stopped), the last console lines, the debugger's replies and Xen's
diagnosis; benchmark figures over time when there is bench history. No
script, font or image comes from anywhere: everything is in the page or a
relative link into the run folder, so the folder can be copied or archived
as it is. `xenboot report RUN_DIR` writes it again from summary.json (command.py).
"""
import html
import json
import math
import os
import pathlib
import statistics

from xenboot.core import consolelog
from xenboot.core.errors import Verdict
from xenboot.core.text import console_tail

TAIL_LINES = 25
TAIL_BYTES = 32 * 1024
MAX_SENDS = 100
# The files of a boot folder worth a link, in the order shown.
BOOT_FILES = ("console.log", "console.decoded.log", "console.jsonl", "result.json", "junit.xml", "xen.log",
              "host.log", "console.xenconsoled.log", "reproduce.sh")
# Rows that have no boot to show, and how the page says why.
UNBOOTED = {"not-run": "Not run", "missing": "Missing"}

SVG_WIDTH = 960
CHAR_WIDTH = 6.4        # px per character at the labels' font size, for layout
LANE = 15
MAX_LANES = 8

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1b1f24; }
h1 { font-size: 1.5em; margin: 0 0 .3em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccd; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccd; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #eef0f4; }
code, pre { font: 12px/1.35 ui-monospace, monospace; }
pre { background: #f6f7f9; border: 1px solid #dde; padding: .5em; overflow-x: auto; max-height: 30em; }
.v { font-weight: 600; padding: 0 .4em; border-radius: 3px; color: #fff; white-space: nowrap; }
.v-PASS { background: #1a7f37; } .v-INFRA { background: #8250df; } .v-NOTRUN { background: #6e7781; }
.v-BAD_INPUT, .v-BUILD_FAILED { background: #9a6700; }
.v-PANIC, .v-CRASH, .v-HANG, .v-TIMEOUT, .v-DEBUGGER, .v-MILESTONE_MISSING { background: #cf222e; }
.as-expected { color: #1a7f37; } .unexpected { color: #cf222e; font-weight: 600; } .not-run { color: #6e7781; }
.missing { color: #8250df; font-weight: 600; }
.flag { background: #fff8c5; border: 1px solid #d4a72c; padding: 0 .3em; }
section.boot { border: 1px solid #ccd; border-radius: 6px; padding: .2em 1em 1em; margin: 1.2em 0; }
.files a { margin-right: .8em; } .muted { color: #6e7781; }
svg text { font: 11px ui-monospace, monospace; }
"""


def esc(value):
    return html.escape("" if value is None else str(value), quote=True)


def anchor(row_id):
    return f"boot-{row_id}"


def badge(verdict, outcome=None):
    if outcome == "missing":
        return '<span class="v v-INFRA">MISSING</span>'
    name = verdict or "NOTRUN"
    return f'<span class="v v-{esc(name)}">{esc(verdict or "NOT RUN")}</span>'


def link(href, text):
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


# -- what a boot folder holds --------------------------------------------------

def console_events(path):
    """From console.jsonl: the first and last receive times and what was
    typed (time, text), each time in seconds since unpause."""
    return consolelog.timing(path, MAX_SENDS)


# -- the timeline ----------------------------------------------------------------

def secs(t):
    """A time since unpause as a label: milliseconds where seconds would read 0.00."""
    if t < 0.1:
        return f"{t * 1000:.1f}ms"
    return f"{t:.2f}s" if t < 100 else f"{t:.0f}s"


def _nice_step(span, ticks=8):
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


class _Lanes:
    """Label rows on one side of the axis: a label goes to the first row
    where it overlaps no other."""

    def __init__(self):
        self.rows = []

    def place(self, x0, x1):
        for i, taken in enumerate(self.rows):
            if all(x1 + 6 < a or x0 > b + 6 for a, b in taken):
                taken.append((x0, x1))
                return i
        if len(self.rows) < MAX_LANES:
            self.rows.append([(x0, x1)])
        else:
            self.rows[-1].append((x0, x1))
        return len(self.rows) - 1


COLOURS = {"milestone": "#1a7f37", "fatal": "#cf222e", "note": "#8c959f", "send": "#0969da",
           "first": "#57606a", "end": "#1b1f24", "stop": "#cf222e"}


def _marks(data, events):
    """(seconds, kind, label, side) of everything the timeline shows."""
    marks = [(m["seconds"], "milestone", f"{m['name']} {secs(m['seconds'])}", "up")
             for m in data.get("milestones") or [] if m.get("seconds") is not None]
    marks += [(f["seconds"], "fatal", f"{f['kind']}: {f['line'][:48]}", "up")
              for f in data.get("fatal") or [] if f.get("seconds") is not None]
    marks += [(n["seconds"], "note", n["name"], "up")
              for n in data.get("notes") or [] if n.get("seconds") is not None]
    marks += [(t, "send", "typed " + text.strip()[:32], "down") for t, text in events["sends"]]
    if events["first"] is not None:
        marks.append((events["first"], "first", f"first byte {secs(events['first'])}", "down"))
    verdict = data.get("verdict")
    activity = [t for t, *_ in marks] + [t for t in (events["last"],) if t is not None]
    # The judge starts at unpause, so its stage time is when the verdict came.
    judged = (data.get("durations") or {}).get("console")
    if judged is not None and verdict:
        end = data.get("end_reason")
        marks.append((judged, "end", f"{verdict}{', domain ' + end if end else ''} at {secs(judged)}", "down"))
    if verdict and verdict != Verdict.PASS.value:
        label = f"stopped: {verdict}" + (f" waiting for {data['failed_at']}" if data.get("failed_at") else "")
        marks.append((max(activity, default=0.0), "stop", label, "up"))
    return sorted(marks, key=lambda m: (m[0], m[1] != "stop"))


def timeline_svg(data, events):
    """Milestones (green), fatal lines (red) and notes (grey) above a time
    axis; what was typed (blue), the first byte and the verdict below it; a
    dashed red line where a failed boot last showed a sign of life. Times
    are seconds since unpause."""
    marks = _marks(data, events)
    span = max([t for t, *_ in marks] + [0.0]) * 1.08 or 1.0
    left, right = 14, SVG_WIDTH - 14

    def x(t):
        return left + (right - left) * t / span

    lanes = {"up": _Lanes(), "down": _Lanes()}
    placed = []
    for t, kind, text, side in marks:
        px, width = x(t), len(text) * CHAR_WIDTH
        at_end = px + width > right
        x0 = px - width if at_end else px
        placed.append((px, at_end, lanes[side].place(x0, x0 + width), t, kind, text, side))
    axis_y = 24 + LANE * max(1, len(lanes["up"].rows))
    height = axis_y + 34 + LANE * max(1, len(lanes["down"].rows))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{SVG_WIDTH}" '
           f'height="{height}" viewBox="0 0 {SVG_WIDTH} {height}" role="img" '
           f'aria-label="timeline of the boot since unpause">',
           f'<line x1="{left}" y1="{axis_y}" x2="{right}" y2="{axis_y}" stroke="#57606a"/>']
    step = _nice_step(span)
    for i in range(int(span / step) + 1):
        tick = i * step
        out.append(f'<line x1="{x(tick):.1f}" y1="{axis_y}" x2="{x(tick):.1f}" y2="{axis_y + 4}" stroke="#57606a"/>'
                   f'<text x="{x(tick):.1f}" y="{axis_y + 15}" text-anchor="middle" fill="#57606a">'
                   f'{secs(tick) if tick else "0"}</text>')
    for px, at_end, lane, t, kind, text, side in placed:
        colour = COLOURS[kind]
        label_y = axis_y - 10 - LANE * lane if side == "up" else axis_y + 30 + LANE * lane
        if kind == "stop":
            stem = (f'<line x1="{px:.1f}" y1="2" x2="{px:.1f}" y2="{height - 2}" stroke="{colour}" '
                    f'stroke-dasharray="4 3"/>')
        else:
            stem = (f'<line x1="{px:.1f}" y1="{axis_y}" x2="{px:.1f}" y2="{label_y + (3 if side == "up" else -10)}" '
                    f'stroke="{colour}" stroke-width="0.6"/>')
        if kind == "fatal":
            shape = (f'<rect x="{px - 4:.1f}" y="{axis_y - 4}" width="8" height="8" fill="{colour}" '
                     f'transform="rotate(45 {px:.1f} {axis_y})"/>')
        elif kind == "end":
            shape = f'<rect x="{px - 4:.1f}" y="{axis_y - 4}" width="8" height="8" fill="{colour}"/>'
        elif kind == "stop":
            shape = ""
        else:
            shape = f'<circle cx="{px:.1f}" cy="{axis_y}" r="{4 if kind == "milestone" else 3}" fill="{colour}"/>'
        weight = ' font-weight="bold"' if kind == "stop" else ""
        out.append(f'<g class="mark {kind}">{stem}{shape}<text x="{px:.1f}" y="{label_y}" '
                   f'text-anchor="{"end" if at_end else "start"}" fill="{colour}"{weight}>'
                   f'<title>{secs(t)}</title>{esc(text)}</text></g>')
    out.append("</svg>")
    return "".join(out)


def stages_svg(durations):
    """The stages of one boot as a stacked bar: where its wall time went."""
    parts = [(name, secs) for name, secs in (durations or {}).items() if secs]
    total = sum(secs for _, secs in parts)
    if not total:
        return ""
    palette = ["#8c959f", "#bf8700", "#0969da", "#1a7f37", "#8250df", "#cf222e"]
    width, x = 600, 0.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="stages" width="{width + 200}" height="34" '
           f'viewBox="0 0 {width + 200} 34" role="img" aria-label="stage durations">']
    for i, (name, secs) in enumerate(parts):
        w = width * secs / total
        out.append(f'<rect x="{x:.1f}" y="2" width="{max(w, 1):.1f}" height="14" fill="{palette[i % len(palette)]}">'
                   f'<title>{esc(name)} {secs:.3f} s</title></rect>')
        if w > 60:
            out.append(f'<text x="{x + 3:.1f}" y="13" fill="#fff">{esc(name)} {secs:.2f}s</text>')
        x += w
    legend = ", ".join(f"{name} {secs:.2f}s" for name, secs in parts)
    out.append(f'<text x="0" y="30" fill="#57606a">{esc(legend)} (total {total:.2f}s)</text></svg>')
    return "".join(out)


# -- benchmarks over time -----------------------------------------------------------

def bench_svg(name, series):
    """One figure over the bench runs: median dots joined, min-max whiskers."""
    width, height, pad = 320, 120, 30
    values = [v for p in series for v in (p["min"], p["max"], p["median"]) if v is not None]
    if not values:
        return ""
    low, high = min(values), max(values)
    high = high if high > low else low + (abs(low) or 1.0)
    n = len(series)

    def px(i):
        return pad + (width - 2 * pad) * (i / (n - 1) if n > 1 else 0.5)

    def py(v):
        return height - pad + 10 - (height - 2 * pad) * (v - low) / (high - low)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="bench" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(name)} over time">',
           f'<text x="4" y="12" fill="#1b1f24">{esc(series[-1]["label"])}</text>',
           f'<text x="4" y="{height - 4}" fill="#57606a">{low:.3g}..{high:.3g} {esc(series[-1]["unit"])}, '
           f'{n} run{"s" if n != 1 else ""}</text>']
    points = []
    for i, p in enumerate(series):
        if p["min"] is not None and p["max"] is not None:
            out.append(f'<line x1="{px(i):.1f}" y1="{py(p["min"]):.1f}" x2="{px(i):.1f}" '
                       f'y2="{py(p["max"]):.1f}" stroke="#8c959f"/>')
        points.append(f"{px(i):.1f},{py(p['median']):.1f}")
        out.append(f'<circle cx="{px(i):.1f}" cy="{py(p["median"]):.1f}" r="3" fill="#0969da">'
                   f'<title>{esc(p.get("when", ""))}: {p["median"]:.4g} {esc(p["unit"])}</title></circle>')
    if len(points) > 1:
        out.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="#0969da"/>')
    out.append("</svg>")
    return "".join(out)


# A bench figure this much worse than before is flagged: more than the run
# to run spread of a shared 2-core machine, less than a real regression.
WORSE = 1.2
# Before: the median of the previous runs' medians, up to this many.
WORSE_BASE_RUNS = 5
# ...and a time must be longer by more than this too: figures of tens of
# milliseconds (unpause to the first guest byte) move by half from one
# run to the next on the scheduler's whim alone.
WORSE_FLOOR_S = 0.05


def worse_than_before(history):
    """{figure: how many times worse} for the figures of the last bench run
    (history's last entry) more than WORSE times worse than before it: a
    time (s) longer (and by more than WORSE_FLOOR_S), a throughput (MB/s) lower."""
    if not history:
        return {}
    flagged = {}
    for name, figure in history[-1].get("figures", {}).items():
        before = [entry["figures"][name]["median"] for entry in history[-1 - WORSE_BASE_RUNS:-1]
                  if (entry.get("figures", {}).get(name) or {}).get("median")]
        if not figure.get("median") or not before:
            continue
        base = statistics.median(before)
        ratio = base / figure["median"] if figure.get("unit") == "MB/s" else figure["median"] / base
        if figure.get("unit") == "s" and figure["median"] - base <= WORSE_FLOOR_S:
            continue
        if ratio > WORSE:
            flagged[name] = round(ratio, 2)
    return flagged


def bench_section(history):
    if not history:
        return ('<p class="muted">No benchmark history (out/bench/history.jsonl): '
                'run <code>make bench</code> before the nightly to plot it here.</p>')
    names = list(history[-1].get("figures", {}))
    worse = worse_than_before(history)
    charts = []
    if worse:
        charts.append('<p class="unexpected">Worse than the runs before (median of up to '
                      f'{WORSE_BASE_RUNS}): ' + ", ".join(f"{esc(name)} {ratio:.2f}x"
                                                        for name, ratio in worse.items()) + "</p>")
    for name in names:
        series = [dict(entry["figures"][name], when=entry.get("when"))
                  for entry in history if entry.get("figures", {}).get(name, {}).get("median") is not None]
        if series:
            charts.append(bench_svg(name, series))
    return "\n".join(charts)


# -- the page -------------------------------------------------------------------------

def _links(run_dir, folder, names):
    """Links to those of `names` in the folder that exist, so none is dead."""
    return " ".join(link(f"{folder}/{name}", name) for name in names
                    if (run_dir / folder / name).exists())


def _boot_files(run_dir, folder):
    diagnosis = run_dir / folder / "diagnosis"
    found = [f"diagnosis/{name}" for name in sorted(os.listdir(diagnosis))] if diagnosis.is_dir() else []
    return _links(run_dir, folder, BOOT_FILES + tuple(found))


def _mib(memory):
    return f"{memory} MB" if memory else ""


def _got_to(row):
    """How far the boot got, at a glance (a memory sweep's rows side by
    side): the last milestone passed, and the one it failed at."""
    reached, failed = row.get("reached"), row.get("failed_at")
    if failed:
        return f"{reached or 'nothing'}, not {failed}"
    return reached or ""


def boots_table(rows):
    sharded = any("shard" in row for row in rows)
    head = ("<tr><th>boot</th>" + ("<th>shard</th>" if sharded else "") + "<th>kernel</th><th>spec</th>"
            "<th>host</th><th>memory</th><th>command line</th><th>expected</th><th>verdict</th><th>got to</th>"
            "<th>outcome</th><th>attempts</th><th>message</th></tr>")
    body = []
    for row in rows:
        outcome = row["outcome"]
        flag = f' <span class="flag">{esc(row["flag"])}</span>' if row.get("flag") else ""
        message = row.get("reason") if outcome in UNBOOTED else row.get("message")
        shard = f'<td>{esc(row.get("shard"))}</td>' if sharded else ""
        body.append(
            f'<tr id="row-{esc(row["id"])}"><td>{link("#" + anchor(row["id"]), row["id"])}</td>{shard}'
            f'<td>{esc(row["kernel"])}</td><td>{esc(row["spec"])}</td><td>{esc(row["host"])}</td>'
            f'<td>{esc(_mib(row.get("memory")))}</td>'
            f'<td><code>{esc(row["cmdline"])}</code></td><td>{esc(row["expect"])}</td>'
            f'<td>{badge(row["verdict"], row["outcome"])}</td><td>{esc(_got_to(row))}</td><td class="{esc(outcome)}">{esc(outcome)}</td>'
            f'<td>{len(row["attempts"])}{flag}</td><td>{esc(message)}</td></tr>')
    return f'<table id="boots-table">{head}{"".join(body)}</table>'


def kernels_table(run_dir, kernels):
    rows = []
    for name, k in kernels.items():
        state = badge(k.get("verdict")) if "not_run" not in k else badge(None)
        what = k.get("not_run") or k.get("message") or k.get("path") or ""
        # A merged run's kernels stay in their shard's folder.
        files = _links(run_dir, k.get("folder") or f"kernels/{name}", ("result.json", "build.log", "build.json"))
        rows.append(f"<tr><td>{esc(name)}</td><td>{state}</td><td>{esc(what)}</td>"
                    f"<td><code>{esc((k.get('sha256') or '')[:16])}</code></td><td>{files}</td></tr>")
    return ("<table><tr><th>kernel</th><th>state</th><th>what</th><th>sha256</th><th>files</th></tr>"
            + "".join(rows) + "</table>")


def shards_table(shards):
    """A merged run's shards: each one's folder and what became of it."""
    if not shards:
        return ""
    rows = "".join(f'<tr><td>{esc(s["index"] or "?")}/{esc(s["count"])}</td>'
                   f'<td class="{"as-expected" if s["state"] == "ok" else "unexpected"}">{esc(s["state"])}</td>'
                   f'<td>{esc(s["rows"])}</td><td>{esc(s["seconds"])}</td><td><code>{esc(s["folder"])}</code></td></tr>'
                   for s in shards)
    return ('<table id="shards-table"><tr><th>shard</th><th>state</th><th>rows</th><th>seconds</th>'
            f'<th>folder</th></tr>{rows}</table>')


def boot_section(run_dir, row):
    parts = [f'<section class="boot" id="{esc(anchor(row["id"]))}">',
             f'<h3>{esc(row["id"])} {badge(row["verdict"], row["outcome"])} '
             f'<span class="{esc(row["outcome"])}">{esc(row["outcome"])}</span> '
             f'<a class="muted" href="#row-{esc(row["id"])}">back to the table</a></h3>',
             f'<p>kernel <b>{esc(row["kernel"])}</b>, spec <b>{esc(row["spec"])}</b>, host '
             f'<b>{esc(row["host"])}</b>, command line <code>{esc(row["cmdline"]) or "(none)"}</code>, '
             f'expected {esc(row["expect"])}.</p>']
    if row["outcome"] in UNBOOTED:
        parts.append(f'<p class="{esc(row["outcome"])}">{UNBOOTED[row["outcome"]]}: {esc(row["reason"])}</p>'
                     '</section>')
        return "".join(parts)
    if row.get("flag"):
        parts.append(f'<p><span class="flag">flagged: {esc(row["flag"])}</span></p>')
    folder = row["folder"]
    data = read_json(run_dir / folder / "result.json")
    events = console_events(run_dir / folder / "console.jsonl")
    parts.append(f'<p>{esc(data.get("message") or row.get("message"))}</p>')
    if data.get("failed_at"):
        parts.append(f'<p>Stopped waiting for milestone <b>{esc(data["failed_at"])}</b>.</p>')
    parts.append(f'<p class="files">{_boot_files(run_dir, folder)}</p>')
    if len(row["attempts"]) > 1:
        earlier = "".join(f'<li>{link(a["folder"] + "/result.json", a["folder"])}: {badge(a["verdict"])} '
                          f'{esc(a["message"])}</li>' for a in row["attempts"][:-1])
        parts.append(f"<p>Earlier attempts (INFRA, retried on a fresh host):</p><ul>{earlier}</ul>")
    parts.append("<h4>Timeline since unpause</h4>" + timeline_svg(data, events))
    parts.append(stages_svg(data.get("durations")))
    # The symbolize stage's text where it named addresses: each kernel
    # address with its function and file:line (result.json keeps the raw).
    decoded = data.get("symbolized") or {}
    console = (decoded.get("console") or {}).get("file") or "console.log"
    tail = console_tail(run_dir / folder / console, TAIL_LINES, TAIL_BYTES)
    parts.append(f"<h4>Last console lines</h4><pre>{esc(chr(10).join(tail)) or '(no console output)'}</pre>")
    if decoded.get("note"):
        parts.append(f'<p class="muted">{esc(decoded["note"])}</p>')
    replies = decoded.get("debugger") or data.get("debugger") or []
    if replies:
        parts.append("<h4>Debugger replies</h4>" + "".join(
            f"<details open><summary><code>{esc(r.get('command'))}</code></summary>"
            f"<pre>{esc(r.get('reply'))}</pre></details>" for r in replies))
    xen = data.get("xen") or {}
    if xen.get("messages"):
        parts.append(f"<h4>Xen's messages about the domain (xen.log)</h4>"
                     f"<pre>{esc(chr(10).join(decoded.get('xen') or xen['messages']))}</pre>")
    found = data.get("gdb") or {}
    if found:
        text = found.get("error") or "\n".join(found.get("backtrace", []) + [""] + found.get("instruction", []))
        parts.append(f"<h4>gdb on the domain (gdbsx)</h4><pre>{esc(text)}</pre>")
    diagnosis = data.get("diagnosis") or {}
    if diagnosis.get("xenctx"):
        xenctx = decoded.get("xenctx") or diagnosis["xenctx"]
        parts.append(f"<h4>Xen's view of the guest (xenctx)</h4><pre>{esc(chr(10).join(xenctx))}</pre>")
    parts.append("</section>")
    return "".join(parts)


def render(run_dir, summary):
    run_dir = pathlib.Path(run_dir)
    rows = summary.get("rows", [])
    c = summary.get("counts", {})
    src = summary.get("source", {})
    source_line = (f"freebsd-src {esc(src.get('state'))}"
                   + (f" ({esc(src.get('message'))})" if src.get("message") else "")
                   + (f", commit <code>{esc(src['commit'])}</code>" if src.get("commit") else "")
                   + (f", pinned <code>{esc(src['pinned'])}</code>" if src.get("pinned") else ", no pin"))
    hosts = {json.dumps(read_json(run_dir / r["folder"] / "result.json").get("host"), sort_keys=True)
             for r in rows if r.get("folder")}
    host_line = "; ".join(f"{h.get('kind')} Xen {h.get('xen_version')} ({h.get('accelerator') or 'native'})"
                          for h in map(json.loads, sorted(hosts)) if h)
    stages = "".join(f"<tr><td>{esc(name)}</td><td>{s['seconds']:.1f} s</td></tr>"
                     for name, s in summary.get("stages", {}).items())
    missing = f' <span class="missing">{c["missing"]} missing</span>,' if c.get("missing") else ""
    interrupted = (f'<p class="unexpected">Interrupted ({esc(summary["interrupted"])}): rows not reached '
                   f'are missing.</p>' if summary.get("interrupted") else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>freebsd-xen-ci nightly {esc(run_dir.name)}</title>
<style>{CSS}</style></head>
<body>
<h1>freebsd-xen-ci nightly <span class="muted">{esc(run_dir.name)}</span></h1>
<p>Started {esc(summary.get("started"))}, finished {esc(summary.get("finished"))}
({summary.get("seconds", 0):.0f} s); exit status {esc(summary.get("exit_status"))}.
<b>{c.get("rows", 0)}</b> rows: <span class="as-expected">{c.get("as-expected", 0)} as expected</span>,
<span class="unexpected">{c.get("unexpected", 0)} unexpected</span>,
<span class="not-run">{c.get("not-run", 0)} not run</span>,{missing} {c.get("retried", 0)} retried.</p>
{shards_table(summary.get("shards"))}
<p>{source_line}. Hosts: {esc(host_line) or "none started"}.
Files: {_links(run_dir, ".", ("matrix.toml", "summary.json", "junit.xml"))}</p>
{interrupted}
<h2 id="boots">Boots</h2>
{boots_table(rows)}
<h2 id="kernels">Kernels</h2>
{kernels_table(run_dir, summary.get("kernels", {}))}
<h2 id="stages">Stages</h2>
<table><tr><th>stage</th><th>time</th></tr>{stages}</table>
<h2 id="bench">Benchmarks over time</h2>
{bench_section(summary.get("bench"))}
<h2 id="details">Boot details</h2>
{"".join(boot_section(run_dir, row) for row in rows)}
</body></html>
"""


def write_report(run_dir):
    run_dir = pathlib.Path(run_dir)
    summary = read_json(run_dir / "summary.json")
    path = run_dir / "report.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render(run_dir, summary), encoding="utf-8")
    os.replace(tmp, path)
    return path
