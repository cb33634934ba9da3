"""report.html: the table, the timelines (inline SVG), the debugger replies,
the bench plots; rendered in a real headless browser (Debian's chromium),
whose links must all lead somewhere.

The run folder here is made by the real pipeline with boot() faked (no
Xen), so every kind of row the report shows is there: a pass, a debugger
stop with replies and a diagnosis, a pass after an INFRA retry, a row not
run."""
import html.parser
import json
import pathlib
import shutil
import subprocess
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

from test_nightly import KERNELS, ends, fake_nightly
from xenboot.core import paths
from xenboot.report import report

XENBOOT = str(paths.REPO / "ci" / "xenboot")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(url, tmp_path, *args):
    binary = shutil.which("chromium")
    assert binary, "Debian's chromium is needed for the report tests: apt-get install chromium"
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    proc = subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def browser_dom(path, tmp_path):
    """The page as the browser built it (--dump-dom)."""
    return chromium(pathlib.Path(path).resolve().as_uri(), tmp_path, "--dump-dom")


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.hrefs = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and "href" in attrs:
            self.hrefs.append(attrs["href"])


def check_links(dom, folder):
    """Every link of the page leads to an element of it or a file in the run folder."""
    found = _Links()
    found.feed(dom)
    assert found.hrefs
    for href in found.hrefs:
        parts = urllib.parse.urlsplit(href)
        assert not parts.scheme and not parts.netloc, f"{href}: the report must work offline"
        if parts.path:
            assert (folder / urllib.parse.unquote(parts.path)).resolve().is_file(), f"dead link {href}"
        else:
            assert parts.fragment in found.ids, f"dead anchor {href}"
    return found


# -- a run folder with every kind of row ------------------------------------------

def boot_with(lines, events, **fields):
    """A fake boot: console.log from `lines`, console.jsonl from `events`
    ((t, dir, text)), result.json fields."""
    def fake(record, folder):
        (folder / "console.log").write_text("\r\n".join(lines) + "\r\n")
        with open(folder / "console.jsonl", "w") as f:
            for t, kind, text in events:
                f.write(json.dumps({"t": t, "dir": kind, "text": text}) + "\n")
        for key, value in fields.items():
            record[key] = value
        return fields["verdict"], fields["message"]
    return fake


PASS_BOOT = boot_with(
    ["PROBE begin freebsd-xen-ci probe 1", "PROBE result SUCCESS"],
    [(0.01, "recv", "PROBE begin"), (0.02, "recv", "PROBE result SUCCESS")],
    verdict="PASS", message="reached 2 milestone(s)",
    milestones=[{"name": "begin", "seconds": 0.01, "line": "PROBE begin"},
                {"name": "result", "seconds": 0.02, "line": "PROBE result SUCCESS"}],
    durations={"check": 0.05, "create": 0.8, "console": 0.03, "teardown": 0.3})

KDB_BOOT = boot_with(
    ["Copyright (c) 1992-2013 The FreeBSD Project.", "KDB: enter: panic", "db> bt",
     "Tracing pid 0 tid 100000 td 0xffffffff81234567", "db> <this is the last line>"],
    [(0.4, "recv", "KDB: debugger backends"), (2.5, "recv", "KDB: enter: panic"), (2.6, "send", "bt\r"),
     (2.7, "recv", "Tracing pid 0"), (3.1, "send", "show registers\r"), (3.4, "recv", "db> ")],
    verdict="DEBUGGER", message="the kernel entered its debugger before 'init'", failed_at="init",
    milestones=[{"name": "kdb-backends", "seconds": 0.4, "line": "KDB: debugger backends: ddb"},
                {"name": "banner", "seconds": 1.2, "line": "Copyright (c) 1992-2013 The FreeBSD Project."}],
    fatal=[{"kind": "debugger", "seconds": 2.5, "line": "KDB: enter: panic"}],
    debugger=[{"command": "bt", "reply": "Tracing pid 0 tid 100000 td 0xffffffff81234567\nkdb_enter() at kdb_enter+0x3b"},
              {"command": "show registers", "reply": "rip 0xffffffff80001234 <kdb_enter+0x3b>"}],
    diagnosis={"verdict": "DEBUGGER", "files": [], "xenctx": ["rip: ffffffff80001234 kdb_enter+0x3b"]},
    xen={"log": "xen.log", "domid": 1, "messages": ["d1v0 Bad L1 flags 800000"]},
    durations={"check": 0.05, "create": 0.9, "console": 3.6, "teardown": 0.3})

BENCH_HISTORY = [
    {"when": f"2026-11-2{i}T00:00:00+00:00",
     "figures": {"host_start_warm": {"label": "embedded host start to dom0 ready (snapshot)", "unit": "s",
                                     "median": 0.5 + i / 10, "min": 0.45 + i / 10, "max": 0.6 + i / 10},
                 "host_start_cold": {"label": "cold", "unit": "s", "median": None, "min": None, "max": None}}}
    for i in range(3)]


@pytest.fixture
def run(monkeypatch, tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in BENCH_HISTORY))
    matrix = KERNELS + "".join(f'[[boot]]\nname = "{name}"\nkernel = "probe"\nspec = "probe"\n'
                               for name in ("probe", "kdb", "flaky")) \
        + '[[boot]]\nkernel = "freebsd-XEN"\nspec = "freebsd-xen-pv"\n'
    summary, _ = fake_nightly(monkeypatch, tmp_path, matrix, {
        "probe": [PASS_BOOT], "kdb": [KDB_BOOT], "flaky": [ends("INFRA", "QEMU exited"), PASS_BOOT]},
        bench_dir=bench)
    return tmp_path / "run", summary


# -- the page ------------------------------------------------------------------------

def svgs(page):
    """Every inline SVG of the page, parsed: each must be well-formed XML."""
    found, pos = [], 0
    while (start := page.find("<svg ", pos)) >= 0:
        pos = page.index("</svg>", start) + len("</svg>")
        found.append(ET.fromstring(page[start:pos]))
    return found


def test_report_has_a_row_per_boot_with_its_verdict(run):
    folder, summary = run
    page = (folder / "report.html").read_text()
    for row in summary["rows"]:
        assert f'<tr id="row-{row["id"]}">' in page
        assert f'id="boot-{row["id"]}"' in page
    assert '<span class="v v-DEBUGGER">DEBUGGER</span>' in page
    assert '<span class="v v-NOTRUN">NOT RUN</span>' in page
    assert "flagged: passed after 1 INFRA retry" in page
    assert "Xen's messages about the domain (xen.log)</h4><pre>d1v0 Bad L1 flags 800000</pre>" in page


def test_timeline_shows_milestones_where_it_stopped_and_what_was_typed(run):
    folder, _ = run
    page = (folder / "report.html").read_text()
    kdb = page[page.index('id="boot-kdb"'):]
    kdb = kdb[:kdb.index("</section>")]
    (timeline, _stages) = svgs(kdb)[:2]
    texts = ["".join(t.itertext()) for t in timeline.iter("{http://www.w3.org/2000/svg}text")]
    assert any(t.endswith("kdb-backends 0.40s") for t in texts)
    assert any(t.endswith("banner 1.20s") for t in texts)
    assert any(t.endswith("debugger: KDB: enter: panic") for t in texts)
    assert any(t.endswith("stopped: DEBUGGER waiting for init") for t in texts)
    assert any(t.endswith("typed bt") for t in texts)
    assert any(t.endswith("typed show registers") for t in texts)
    # The debugger's replies and Xen's view of the guest, as text.
    assert "kdb_enter() at kdb_enter+0x3b" in kdb
    assert "rip: ffffffff80001234 kdb_enter+0x3b" in kdb
    # The last console lines, escaped.
    assert "db&gt; &lt;this is the last line&gt;" in kdb


def test_timeline_labels_do_not_overlap():
    data = {"verdict": "PASS", "durations": {"console": 1.0},
            "milestones": [{"name": f"milestone-{i}", "seconds": i / 1000} for i in range(6)]}
    svg = ET.fromstring(report.timeline_svg(data, {"first": 0.0, "last": 0.005, "sends": []}))
    boxes = []
    for text in svg.iter("{http://www.w3.org/2000/svg}text"):
        if not text.get("text-anchor") or text.get("text-anchor") == "middle":
            continue
        width = len(text.find("{http://www.w3.org/2000/svg}title").tail) * report.CHAR_WIDTH
        x = float(text.get("x"))
        x0 = x - width if text.get("text-anchor") == "end" else x
        boxes.append((float(text.get("y")), x0, x0 + width))
    for i, (y, a0, a1) in enumerate(boxes):
        for y2, b0, b1 in boxes[i + 1:]:
            assert y != y2 or a1 <= b0 or b1 <= a0, "labels overlap"


def test_bench_history_is_plotted(run):
    folder, _ = run
    page = (folder / "report.html").read_text()
    bench = page[page.index('id="bench"'):page.index('id="details"')]
    (plot,) = svgs(bench)
    assert len(list(plot.iter("{http://www.w3.org/2000/svg}circle"))) == 3
    assert "embedded host start to dom0 ready (snapshot)" in bench
    # Its last run, 0.7 s against 0.5 and 0.6 before: flagged.
    assert "Worse than the runs before (median of up to 5): host_start_warm 1.27x" in bench


def figure(median, unit="s"):
    return {"label": "a figure", "unit": unit, "median": median, "min": median, "max": median}


@pytest.mark.parametrize("before, last, unit, flagged", [
    ([1.0, 1.0, 1.1], 1.3, "s", 1.3),           # a time more than 20% longer
    ([1.0, 1.0, 1.1], 1.15, "s", None),         # within the spread
    ([0.02, 0.02, 0.03], 0.033, "s", None),     # 1.5x, but by 13 ms: scheduling noise
    ([0.10, 0.10], 0.16, "s", 1.6),             # 1.6x and by 60 ms
    ([9.0, 1.0, 1.0, 1.0, 1.0, 1.0], 1.1, "s", None),  # only the last 5 runs count
    ([100.0, 100.0], 80.0, "MB/s", 1.25),       # a throughput lower
    ([100.0, 100.0], 130.0, "MB/s", None),      # ...higher is better
    ([None, None], 5.0, "s", None),             # never measured before
    ([1.0], None, "s", None),                   # not measured now
])
def test_a_bench_figure_worse_than_the_runs_before_is_flagged(before, last, unit, flagged):
    history = [{"figures": {"f": figure(m, unit)}} for m in before] + [{"figures": {"f": figure(last, unit)}}]
    assert report.worse_than_before(history) == ({"f": flagged} if flagged else {})


def test_report_renders_in_a_browser_and_its_links_work(run, tmp_path):
    folder, summary = run
    dom = browser_dom(folder / "report.html", tmp_path)
    found = check_links(dom, folder)
    assert any(h.endswith("console.log") for h in found.hrefs)
    assert dom.count("<svg") >= 4
    # A link followed in the browser: the console log shows as text.
    log = next(h for h in found.hrefs if h.startswith("boots/kdb-1/") and h.endswith("console.log"))
    shown = chromium((folder / log).resolve().as_uri(), tmp_path, "--dump-dom")
    assert "KDB: enter: panic" in shown
    # And it paints: a screenshot of the page.
    shot = tmp_path / "report.png"
    chromium((folder / "report.html").resolve().as_uri(), tmp_path, f"--screenshot={shot}",
             "--window-size=1280,2000")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20000


def test_report_command_writes_it_again(run):
    folder, summary = run
    nightly_wrote = (folder / "report.html").read_text()
    (folder / "report.html").unlink()
    proc = subprocess.run([XENBOOT, "report", str(folder)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = (folder / "report.html").read_text()
    assert page == nightly_wrote
    assert all(f'<tr id="row-{row["id"]}">' in page for row in summary["rows"])
    proc = subprocess.run([XENBOOT, "report", str(folder / "boots")], capture_output=True, text=True)
    assert proc.returncode == 2 and "no such summary.json" in proc.stderr
