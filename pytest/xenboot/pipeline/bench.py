"""`xenboot bench` (make bench): what the harness's stages cost, median of --count (3) with min and max.

For each lab flavour (Debian's release Xen, the debug build), each round
starts one embedded host (from the lab snapshot), boots the probe kernel on
it alone, twice (the host's first guest is slower), then four probe kernels
on it at once; then runs a whole `make boot` of the probe, on its own host
and on a lab server kept running (`xenboot lab serve`, one per flavour
for the whole bench, warmed by one boot first). Each round also
starts two Debian hosts at once, a probe boot on each, with multi-threaded
TCG and then single-threaded (what `make test`'s two workers do). One extra host
per flavour starts without the snapshot
(the cold figure; --no-cold skips it). The debug hypervisor's build time is
the one its lab cache layer recorded when it was built (once). The
matcher's throughput comes from bench_matcher over a generated FreeBSD-like
log.

When $XENBOOT_REAL_TREE_FIXED, $XENBOOT_REAL_TREE or $FREEBSD_SRC (the
first set) names a real FreeBSD tree, the kernel cross-build of i386 XEN is
timed once too: clean, again with no change, and with one object to remake;
then --count boots of that kernel (`make boot TARGET=i386`, nothing to
build) give the times from unpause to its milestones, and the developer's
loop is timed: one object to remake, `make boot`, verdict, on its own host
and again on a lab server (after one boot that warms it). A tree whose
kernel does not boot (stock 10.4 i386 XEN crashes early) gives no milestone
times; bench.json says its verdict. $XENBOOT_BRANCH_TREE (a reconstruction
of the amd64_xen_pv branch) gets the same for its amd64 XEN, booted with
128 MB (the size at which it gets past pmap_bootstrap), timed to its banner,
mountroot and its debugger's entry (the branch panics in a pmap stub).

Prints a table and writes <out>/bench.json, and appends the same to
<out>/history.jsonl, which the nightly report plots (default out/bench).
The last `make soak` of each flavour (soak.py: how often the lab itself
fails, and why) is printed after the table and kept in bench.json too: a
soak takes far longer than the bench, so it is run on its own.
"""
import collections
import contextlib
import copy
import dataclasses
import datetime
import functools
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import threading
import time

from xenboot.build import build
from xenboot.core import inputs, paths, result
from xenboot.judge import spec as specs
from xenboot.pipeline import bench_matcher, soak
from xenboot.report import report, summary
from xenboot.pipeline.boot import BootRequest, boot, shared_lab_host
from xenboot.core.errors import EXIT_GUEST_FAILED, EXIT_PASS, InfraError, Verdict
from xenboot.host.lab import cache as labcache, config as labconfig, remote, server as labserver
from xenboot.host.lab.qemu import lab_host
from xenboot.console.progress import Progress

SCHEMA = 2
GUESTS = 4
# Lab hosts started at once, as `make test`'s two workers run them.
HOSTS = 2


MILESTONE_LABELS = {"db": "its debugger's entry (db>)"}
# Where a loop's time goes: the stages a run's result.json times
# (durations), in the order they run, then what the total has beyond them
# (the tool's own start and make's, and anything no stage times).
LOOP_PARTS = {"build": "rebuild", "image": "root image", "check": "kernel check", "lab": "lab start",
              "create": "create", "console": "boot to the spec's end",
              "gdb": "gdb's session on the failed domain", "teardown": "teardown",
              "symbolize": "naming the console's addresses", "rest": "outside every stage"}
# gdb looks only at a domain that failed.
PASSING_LOOP_PARTS = tuple(part for part in LOOP_PARTS if part != "gdb")
# A KERNEL= boot builds nothing and makes no image (make builds the probe
# before the tool starts).
BOOT_PARTS = ("check", "lab", "create", "console", "teardown", "symbolize", "rest")


def loop_figures(name, what, parts):
    return {f"{name}.{part}": (f"{what}, {LOOP_PARTS[part]}", "s") for part in parts}


def _loop_parts(samples, name, data, total, suffix=""):
    """Each stage's seconds of a run that took `total`, and the rest."""
    durations = data.get("durations") or {}
    for part, seconds in durations.items():
        if f"{name}.{part}{suffix}" in samples:
            samples[f"{name}.{part}{suffix}"].append(seconds)
    samples[f"{name}.rest{suffix}"].append(round(total - sum(durations.values()), 3))


@dataclasses.dataclass(frozen=True)
class TimedTree:
    """A FreeBSD tree whose XEN kernel the bench builds and boots: where it
    is named, what it builds and boots as, and the names of its figures."""
    what: str                   # in the figures' labels
    variables: tuple            # the environment naming it, the first set wins
    target: str
    milestones: tuple           # timed from unpause; "db" is the debugger's entry
    build: str                  # figure names: <build>clean, <build>no_change, ...
    boot: str                   # <boot><milestone>, <boot>boot
    loop: str
    memory: int = None          # guest MiB, None: the tool's default
    loop_parts: tuple = PASSING_LOOP_PARTS

    def figures(self):
        return ({f"{self.build}clean": (f"{self.what} clean build (aim <= 90 s)", "s"),
                 f"{self.build}no_change": (f"{self.what} rebuild, no change (aim <= 3 s)", "s"),
                 f"{self.build}one_object": (f"{self.what} rebuild, one object (aim <= 10 s)", "s")}
                | {f"{self.boot}{name}": (f"{self.what}: unpause to {MILESTONE_LABELS.get(name, name)}", "s")
                   for name in self.milestones}
                | {f"{self.boot}boot": (f"{self.what}: whole `make boot`, nothing to build", "s"),
                   self.loop: (f"{self.what}: one object remade, `make boot`, verdict (aim <= 5 s)", "s")}
                | loop_figures(self.loop, f"{self.what}: that loop", self.loop_parts)
                | {f"{self.loop}_served": (f"{self.what}: one object remade, `make boot` on a lab server, verdict "
                                           f"(aim <= 5 s)", "s")}
                | loop_figures(f"{self.loop}_served", f"{self.what}: that loop on a lab server", self.loop_parts))


# The i386 tree's figure names are the ones bench history has always had.
I386_TREE = TimedTree("i386 XEN, real tree", ("XENBOOT_REAL_TREE_FIXED", "XENBOOT_REAL_TREE", "FREEBSD_SRC"),
                      "i386", ("banner", "mountroot", "init", "poweroff"), "kernel_", "real_", "dev_loop")
BRANCH_TREE = TimedTree("amd64 XEN, branch tree", ("XENBOOT_BRANCH_TREE",), "amd64",
                        ("banner", "mountroot", "db"), "branch_kernel_", "branch_", "branch_dev_loop", memory=128,
                        loop_parts=tuple(LOOP_PARTS))
TREES = (I386_TREE, BRANCH_TREE)
# The real kernel's milestones timed from unpause (freebsd-xen-pv-i386).
REAL_MILESTONES = I386_TREE.milestones
# The flavours compared side by side (configs/lab.toml [flavours]).
FLAVOURS = ("debian", "debug")
# name: (label, unit), in the order printed; measured on each flavour.
BOOT_FIGURES = {
    "host_start_warm": ("embedded host start to dom0 ready (snapshot)", "s"),
    "host_start_warm.restore": ("  of which QEMU loading the snapshot and running it", "s"),
    "host_start_cold": ("embedded host start to dom0 ready (cold boot)", "s"),
    "xl_create": ("xl create -p + console attach + unpause", "s"),
    "first_byte": ("unpause to first guest byte", "s"),
    "probe_result": ("unpause to `PROBE result` line", "s"),
    "whole_boot": ("whole `make boot KERNEL=probe SPEC=probe`", "s"),
    "guests_1": ("1 probe boot on a running host (its first)", "s"),
    "guests_1_warm": ("1 probe boot on a running host (its second)", "s"),
    "guests_1_warm.cpu": ("  the host's CPU for it (QEMU, every thread)", "s"),
    f"guests_{GUESTS}": (f"{GUESTS} probe boots at once on one host", "s"),
    f"guests_{GUESTS}.cpu": ("  the host's CPU for them", "s"),
    "served_boot": ("whole `make boot KERNEL=probe SPEC=probe` on a lab server", "s"),
} | loop_figures("whole_boot", "  that `make boot`", BOOT_PARTS) \
  | loop_figures("served_boot", "  that `make boot` on a lab server", BOOT_PARTS)
FIGURES = ({"debug_build": ("debug hypervisor build (once, when cached)", "s")}
           | {f"{name}@{flavour}": (f"{label} [{flavour}]", unit)
              for flavour in FLAVOURS for name, (label, unit) in BOOT_FIGURES.items()}
           | {f"hosts_{HOSTS}.{threads}": (f"{HOSTS} hosts at once, a probe boot on each, {threads}-threaded TCG "
                                           f"[{FLAVOURS[0]}]", "s") for threads in labconfig.TCG_THREADS}
           | {"matcher": ("matcher throughput (freebsd-xen-pv spec)", "MB/s")}
           | {name: figure for tree in TREES for name, figure in tree.figures().items()})
# Measured only with a real FreeBSD tree.
TREE_FIGURES = tuple(name for tree in TREES for name in tree.figures())
COUNT = inputs.Integer(1, 100, "rounds")
MATCHER_MB = inputs.Integer(1, 1024, "MB of console log")
OUT = inputs.OutputFolder("give a folder this user can write for bench.json")


def _quiet(line):
    pass


def _probe(folder, host):
    """One probe boot on `host`; its record, which must be a PASS."""
    data = boot(BootRequest(kernel="probe", spec="probe", out_dir=str(folder), lab=host.cache.flavour),
                progress=_quiet, shared_host=host).data
    if data["verdict"] != Verdict.PASS.value:
        raise InfraError(f"bench: the probe boot ended {data['verdict']}: {data['message']} ({folder})")
    return data


def _boot_figures(data, folder):
    result_line = next(m["seconds"] for m in data["milestones"] if m["name"] == "result")
    return {"xl_create": data["durations"]["create"],
            "first_byte": report.console_events(folder / "console.jsonl")["first"],
            "probe_result": result_line}


def _timed(func, *args):
    start = time.monotonic()
    value = func(*args)
    return time.monotonic() - start, value


def _at_once(run, count):
    """run(0) .. run(count - 1) at once, each on a thread of its own (the
    QEMU a thread starts dies with it); the first failure is raised."""
    errors = []

    def one(i):
        try:
            run(i)
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _many(folder, host, count):
    """`count` probe boots on one host at once; every one must pass."""
    _at_once(lambda i: _probe(folder / f"guest-{i}", host), count)


def hosts_at_once(samples, folder, lab_config):
    """HOSTS hosts started at once, a probe boot on each, under each TCG
    threading (lab.toml tcg_threads): why `make test`'s workers and a
    nightly wave of several hosts run single-threaded TCG."""
    for threads in labconfig.TCG_THREADS:
        def host_and_probe(i):
            place = folder / threads / f"host-{i}"
            with shared_lab_host(str(place), lab_config, _quiet, FLAVOURS[0], tcg_threads=threads) as host:
                _probe(place / "probe", host)
        seconds, _ = _timed(_at_once, host_and_probe, HOSTS)
        samples[f"hosts_{HOSTS}.{threads}"].append(seconds)


def host_round(samples, folder, lab_config, progress, flavour):
    """One host of `flavour`: its start, one guest alone, GUESTS guests at once."""
    folder.mkdir(parents=True)
    with shared_lab_host(str(folder), lab_config, progress, flavour) as host:
        kind = "host_start_warm" if host.timings["from_snapshot"] else "host_start_cold"
        samples[f"{kind}@{flavour}"].append(host.timings["dom0_ready"])
        if host.timings["from_snapshot"]:
            samples[f"host_start_warm.restore@{flavour}"].append(host.timings["restored"])
        seconds, data = _timed(_probe, folder / "one", host)
        samples[f"guests_1@{flavour}"].append(seconds)
        for name, value in _boot_figures(data, folder / "one").items():
            samples[f"{name}@{flavour}"].append(value)
        # A host's first guest pays for dom0's first xl run after the snapshot.
        for name, run in (("guests_1_warm", lambda: _probe(folder / "again", host)),
                          (f"guests_{GUESTS}", lambda: _many(folder / "many", host, GUESTS))):
            cpu = host.cpu_seconds()
            seconds, _ = _timed(run)
            samples[f"{name}@{flavour}"].append(seconds)
            samples[f"{name}.cpu@{flavour}"].append(host.cpu_seconds() - cpu)


def cold_start(samples, folder, lab_config, progress, flavour):
    """A host that boots Xen and dom0 instead of restoring the snapshot."""
    config = labconfig.load(lab_config)
    raw = copy.deepcopy(config.raw)
    raw["qemu"]["snapshot"] = False
    folder.mkdir(parents=True)
    with lab_host(str(folder), str(folder), labconfig.LabConfig(config.path, raw), progress, flavour=flavour) as host:
        samples[f"host_start_cold@{flavour}"].append(host.timings["dom0_ready"])


def _timed_command(argv, what, accepted=(EXIT_PASS,), server=None):
    """Seconds `argv` took (on the lab servers sharing `server`, if given);
    an exit status not `accepted` stops the bench, naming `what` and the
    command's last line."""
    # Never a server of the user's own for the figures of a host of its own.
    env = {k: v for k, v in os.environ.items() if k != remote.SERVER_ENV} | (
        {remote.SERVER_ENV: str(server)} if server else {})
    seconds, proc = _timed(lambda: subprocess.run(argv, cwd=paths.REPO, capture_output=True, text=True, env=env))
    if proc.returncode not in accepted:
        last = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
        raise InfraError(f"bench: {what} exited {proc.returncode}: {last[0]}")
    return seconds


def whole_boot(samples, folder, flavour, server=None, name="whole_boot"):
    argv = ["make", "--no-print-directory", "boot", "KERNEL=probe", "SPEC=probe", f"LAB={flavour}", f"OUT={folder}"]
    seconds = _timed_command(argv, f"make boot KERNEL=probe LAB={flavour}", server=server)
    samples[f"{name}@{flavour}"].append(seconds)
    with open(folder / "result.json") as f:
        _loop_parts(samples, name, json.load(f), seconds, f"@{flavour}")


def debug_build(samples, lab_config):
    """The debug hypervisor's build time, as its cache layer recorded it."""
    cache = labcache.LabCache(labconfig.load(lab_config), flavour="debug")
    with open(cache.xen_dir / "manifest.json") as f:
        samples["debug_build"].append(json.load(f)["build_seconds"])


def matcher(samples, size_mb):
    spec = specs.load_spec("freebsd-xen-pv")
    data = bench_matcher.make_log(size_mb * bench_matcher.MB)
    samples["matcher"].append(len(data) / bench_matcher.MB / bench_matcher.judge_bytes(spec, data))


def real_tree(timed=I386_TREE):
    """The real FreeBSD tree to time builds and boots of, or None (a fixture
    is not one)."""
    tree = next((os.environ[k] for k in timed.variables if os.environ.get(k)), None)
    if not tree or (pathlib.Path(tree) / build.FIXTURE_MARKER).exists():
        return None
    return tree


def kernel_builds(samples, folder, tree, timed=I386_TREE):
    """Once, not per round: a clean build takes a minute or more. The one
    object is machdep.o, removed from the object folder, which costs make
    what a touched machdep.c would without writing the tree."""
    objdir = folder / "obj"

    def one(name, run):
        (folder / run).mkdir(parents=True)
        info = {}
        seconds, _ = _timed(build.build_kernel, folder / run, info, tree, "XEN", objdir, None, timed.target)
        samples[f"{timed.build}{name}"].append(seconds)
        return info

    info = one("clean", "clean")
    one("no_change", "no-change")
    _remove_one_object(info)
    one("one_object", "one-object")
    return info


def _remove_one_object(info):
    (pathlib.Path(info["built"]["path"]).parent / "machdep.o").unlink()


def _freebsd_boot(folder, tree, objdir, timed, server=None):
    """`make boot TARGET=... FREEBSD_SRC=tree [MEMORY=...]`: seconds and
    result.json. A guest that fails is a figure too; anything else stops
    the bench."""
    argv = [str(paths.REPO / "ci" / "xenboot"), "freebsd", "--src", tree, "--target", timed.target,
            "--objdir", str(objdir), "--out", str(folder)]
    if timed.memory:
        argv += ["--memory", str(timed.memory)]
    seconds = _timed_command(argv, f"make boot TARGET={timed.target} FREEBSD_SRC={tree}",
                             (EXIT_PASS, EXIT_GUEST_FAILED), server)
    with open(folder / "result.json") as f:
        return seconds, json.load(f)


def _milestone_times(data):
    """Seconds after unpause of each milestone reached, and of the
    debugger's entry ("db") when the kernel entered it."""
    reached = {m["name"]: m["seconds"] for m in data["milestones"]}
    entry = next((f["seconds"] for f in data.get("fatal") or [] if f["kind"] == "debugger"), None)
    return reached | ({"db": entry} if entry is not None else {})


def kernel_boots(samples, folder, tree, info, count, timed=I386_TREE):
    """The built kernel booted `count` times, then the developer's loop."""
    objdir = folder / "obj"
    verdicts = []
    for i in range(count):
        seconds, data = _freebsd_boot(folder / f"boot-{i}", tree, objdir, timed)
        samples[f"{timed.boot}boot"].append(seconds)
        verdicts.append(data["verdict"])
        reached = _milestone_times(data)
        for name in timed.milestones:
            if reached.get(name) is not None:
                samples[f"{timed.boot}{name}"].append(reached[name])
    _remove_one_object(info)
    seconds, data = _freebsd_boot(folder / "dev-loop", tree, objdir, timed)
    samples[timed.loop].append(seconds)
    _loop_parts(samples, timed.loop, data, seconds)
    # The same loop with the host kept running: its first boot warms it.
    with labserver.ServerProcess(folder, labconfig.flavour(labconfig.load(), freebsd=True)[0]):
        _freebsd_boot(folder / "served-first", tree, objdir, timed, folder)
        _remove_one_object(info)
        seconds, served = _freebsd_boot(folder / "dev-loop-served", tree, objdir, timed, folder)
    samples[f"{timed.loop}_served"].append(seconds)
    _loop_parts(samples, f"{timed.loop}_served", served, seconds)
    return {"path": info["source"]["path"], "freebsd_version": info["source"]["freebsd_version"],
            "kernel_sha256": data["kernel"]["sha256"], "verdicts": verdicts + [data["verdict"]]}


def summarize(samples):
    figures = {}
    for name, (label, unit) in FIGURES.items():
        values = samples.get(name) or []
        figures[name] = {"label": label, "unit": unit, "samples": [round(v, 4) for v in values],
                         "median": round(statistics.median(values), 4) if values else None,
                         "min": round(min(values), 4) if values else None,
                         "max": round(max(values), 4) if values else None}
    return figures


def _cell(f):
    """median (min-max), or - when not measured."""
    if f["median"] is None:
        return "-"
    return f"{f['median']:.3f} ({f['min']:.2f}-{f['max']:.2f})"


def table(figures):
    """The boot figures with the flavours side by side, then the others;
    each cell the median (min-max)."""
    width = max(len(label) for label, _ in FIGURES.values())
    lines = [f"{'figure':<{width}} " + " ".join(f"{flavour:>22}" for flavour in FLAVOURS) + "  unit"]
    for name, (label, unit) in BOOT_FIGURES.items():
        lines.append(f"{label:<{width}} " + " ".join(f"{_cell(figures[f'{name}@{flavour}']):>22}"
                                                    for flavour in FLAVOURS) + f"  {unit}")
    for name, f in figures.items():
        # One column: the figures not per flavour; a real tree's only with one.
        if "@" not in name and (f["median"] is not None or name in ("debug_build", "matcher")):
            lines.append(f"{f['label']:<{width}} {_cell(f):>22}  {f['unit']}")
    for flavour in FLAVOURS:
        many = figures[f"guests_{GUESTS}@{flavour}"]["median"]
        for one_name, which in (("guests_1", "first"), ("guests_1_warm", "second")):
            one = figures[f"{one_name}@{flavour}"]["median"]
            if one and many:
                lines.append(f"{flavour}: {GUESTS} guests on one host take {many / one:.2f}x the time of one "
                             f"(the host's {which} guest; {many / GUESTS:.2f} s a guest against {one:.2f} s)")
        lines.extend(_cpu_bound(figures, flavour))
    return "\n".join(lines)


def _cpu_bound(figures, flavour, cores=None):
    """Why GUESTS guests take what they take: one guest alone already keeps
    this many cores busy, and GUESTS of them cannot run faster than their
    CPU time over the machine's cores."""
    one, many = (figures[f"{name}@{flavour}"]["median"] for name in ("guests_1_warm", f"guests_{GUESTS}"))
    one_cpu, many_cpu = (figures[f"{name}.cpu@{flavour}"]["median"] for name in ("guests_1_warm", f"guests_{GUESTS}"))
    if not (one and one_cpu and many_cpu):
        return []
    cores = cores or os.cpu_count()
    return [f"{flavour}: the host's CPU: {one_cpu:.2f} s for one guest ({one_cpu / one:.2f} cores while it ran), "
            f"{many_cpu:.2f} s for {GUESTS}; on {cores} cores {GUESTS} take at least {many_cpu / cores:.2f} s "
            f"({many_cpu / cores / one:.2f}x one)"]


def last_soaks():
    """{flavour: the figures of its last soak}, for the flavours soaked."""
    found = {}
    for flavour in FLAVOURS:
        with contextlib.suppress(OSError, ValueError):
            found[flavour] = json.loads(soak.last_path(flavour).read_text())
    return found


def run_bench(out, count=3, cold=True, matcher_mb=10, lab_config=None, progress=None):
    progress = progress or Progress()
    out = pathlib.Path(out)
    COUNT(count, "--count", None)
    MATCHER_MB(matcher_mb, "--matcher-mb", None)
    OUT(str(out), "--out", None)
    samples = {name: [] for name in FIGURES}
    # The last run's boot folders stay until the next run, as evidence
    # when a figure looks wrong or a boot failed.
    work = out / "last-run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, mode=0o700)
    # The figures are of a warm lab: the cache built (the debug hypervisor
    # too) and the booted host saved, as on every boot but a machine's first.
    for flavour in FLAVOURS:
        progress.stage(f"bench: warming the {flavour} lab (cache and snapshot)")
        warm = work / flavour / "warm-up"
        warm.mkdir(parents=True)
        with lab_host(str(warm), str(warm), lab_config, progress, flavour=flavour):
            pass
    debug_build(samples, lab_config)
    with contextlib.ExitStack() as servers:
        # Each flavour's server, warmed by one boot first, as a developer's is.
        for flavour in FLAVOURS:
            servers.enter_context(labserver.ServerProcess(work / flavour, flavour))
            whole_boot(collections.defaultdict(list), work / flavour / "served-first", flavour, work / flavour,
                       "served_boot")
        for i in range(count):
            for flavour in FLAVOURS:
                progress.stage(f"bench: round {i + 1} of {count}, {flavour}: host, 1 guest, {GUESTS} guests, "
                               f"make boot, on its own host and on a lab server")
                host_round(samples, work / flavour / f"round-{i}", lab_config, progress, flavour)
                whole_boot(samples, work / flavour / f"make-boot-{i}", flavour)
                whole_boot(samples, work / flavour / f"served-boot-{i}", flavour, work / flavour, "served_boot")
    for i in range(count):
        progress.stage(f"bench: round {i + 1} of {count}: {HOSTS} hosts at once, each TCG threading")
        hosts_at_once(samples, work / f"hosts-{i}", lab_config)
        matcher(samples, matcher_mb)
    if cold:
        for flavour in FLAVOURS:
            progress.stage(f"bench: cold host start, {flavour}")
            cold_start(samples, work / flavour / "cold", lab_config, progress, flavour)
    trees = {}
    for timed in TREES:
        tree = real_tree(timed)
        if tree:
            folder = work / f"kernel-{timed.target}"
            progress.stage(f"bench: {timed.target} XEN kernel builds of {tree}")
            info = kernel_builds(samples, folder, tree, timed)
            progress.stage(f"bench: {count} boots of that kernel, then the developer's loop")
            trees[timed.target] = kernel_boots(samples, folder, tree, info, count, timed)
    with open(work / FLAVOURS[0] / "round-0" / "one" / "result.json") as f:
        host = json.load(f)["host"]
    data = {"schema": SCHEMA,
            "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "count": count, "matcher_mb": matcher_mb, "cpus": os.cpu_count(),
            "host": {k: host.get(k) for k in ("kind", "accelerator", "xen_version", "qemu_version",
                                              "cpu_model", "vcpus", "tcg_threads")},
            "kernel_tree": trees.get(I386_TREE.target), "branch_tree": trees.get(BRANCH_TREE.target),
            "figures": summarize(samples), "soak": last_soaks()}
    data["worse_than_before"] = report.worse_than_before(summary.bench_history(out) + [data])
    result.write_json(str(out / "bench.json"), data)
    with open(out / "history.jsonl", "a") as f:
        f.write(json.dumps(data, sort_keys=True) + "\n")
    return data



def _command(args):
    out = pathlib.Path(args.out or paths.out_root() / "bench")
    with Progress() as progress:
        data = run_bench(out, args.count, not args.no_cold, args.matcher_mb, args.lab_config, progress)
    print(table(data["figures"]))
    for name, ratio in data["worse_than_before"].items():
        print(f"bench: {data['figures'][name]['label']}: {ratio:.2f}x worse than the runs before")
    for figures in data["soak"].values():
        print("\n".join(soak.lines(figures)))
    print(f"xenboot: bench: median of {data['count']} on {data['host']['kind']} "
          f"({data['host']['accelerator']}, Xen {data['host']['xen_version']}, "
          f"{data['host']['qemu_version']}); {out / 'bench.json'}",
          flush=True)
    return EXIT_PASS


def add_parser(sub):
    p = sub.add_parser("bench", help="performance figures of the harness (median of 3, min, max)",
                       description=__doc__.splitlines()[0])
    option = functools.partial(inputs.option, p)
    option("--count", default=3, help="rounds (default 3)", check=COUNT)
    p.add_argument("--no-cold", action="store_true", help="skip the host start without the snapshot")
    option("--matcher-mb", default=10, help="size of the matcher's log, MB (default 10)", check=MATCHER_MB)
    option("--out", help="folder for bench.json and history.jsonl (default out/bench)", check=OUT)
    option("--lab-config", help="lab config (default configs/lab.toml)", check=labconfig.CONFIG_INPUT)
    p.set_defaults(func=_command)
