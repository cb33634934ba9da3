"""`xenboot soak` (make soak): many probe boots on one lab flavour, to see how often the lab itself fails (INFRA) and why.

The boots are nightly rows (the probe kernel and its spec, --parallel at a
time on a fresh host per wave, INFRA retried on a fresh host), so what a
soak finds is what a nightly meets. It prints the boots, the verdicts of
every attempt, the INFRA count and its causes (each INFRA attempt's
message with its numbers taken out, and the crashes dom0's kernel logged in
those boots), the wall time and the machine's load (other work on a
2-core machine shows as slower boots), and writes soak.json into the run
folder and out/soak/last-<flavour>.json, which `make bench` shows.
"""
import collections
import functools
import os
import pathlib
import re
import threading

from xenboot.core import inputs, paths, result
from xenboot.pipeline.nightly import run as nightly, schedule
from xenboot.pipeline.boot import Terminated, sigterm_raises
from xenboot.core.errors import BadInput, Verdict
from xenboot.host.lab import config as labconfig
from xenboot.console.progress import Progress

SCHEMA = 1
# What dom0's kernel says when one of its programs crashes.
DOM0_CRASH = re.compile(r"\] (?:traps: )?(\S+?)\[\d+\]:? (segfault at \S+ ip \S+|[\w ]+ fault ip:\S+)")
# How often the load is sampled while the soak runs.
LOAD_EVERY = 10.0


# The probe build each lab CPU profile runs: the PV probe on pv, its PVH
# build on hvm (a row's profile follows its kernel's guest type).
PROBE_FOR_CPU = {labconfig.PV_PROFILE: "probe", "hvm": "probe-pvh32"}


def matrix(boots, flavour, cpu_profile=labconfig.PV_PROFILE):
    """`boots` rows of the probe kernel with its spec on lab `flavour`, the
    probe build that `cpu_profile` runs."""
    rows = "".join(f'\n[[boot]]\nname = "soak-{i:04d}"\nkernel = "probe"\nspec = "probe"\nlab = "{flavour}"\n'
                   for i in range(1, boots + 1))
    return f'[kernel.probe]\nfrom = "probe"\nfile = "{PROBE_FOR_CPU[cpu_profile]}"\n' + rows


def cause(message):
    """An INFRA message with what differs from one boot to the next (ptys,
    domids, seconds, folders) taken out, so that one cause counts once;
    exit statuses stay."""
    message = re.sub(r"\(([\w.-]+/)*[\w.-]+\.log\)", "", message or "").strip()
    return re.sub(r"(?<!exit status )(?<!exited )\b\d+(\.\d+)?\b", "N", message)


def dom0_crashes(folder):
    """The program crashes dom0's kernel logged, as `program: what`."""
    found = []
    for dmesg in folder.glob("dom0*/dmesg.txt"):
        found += [f"{m.group(1)}: {m.group(2)}" for m in DOM0_CRASH.finditer(dmesg.read_text(errors="replace"))]
    return sorted(set(found))


class LoadSampler:
    """The 1-minute load average while the soak runs."""

    def __init__(self):
        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def _run(self):
        while not self._stop.wait(LOAD_EVERY):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def figures(self):
        return {"start": round(self.samples[0], 2), "end": round(self.samples[-1], 2),
                "mean": round(sum(self.samples) / len(self.samples), 2), "max": round(max(self.samples), 2)}


def summarize(summary, run_dir, flavour, load):
    """The soak's figures from the nightly summary of its rows."""
    attempts = [a for row in summary["rows"] for a in row["attempts"]]
    verdicts = collections.Counter(a["verdict"] for a in attempts)
    causes, examples, crashes = collections.Counter(), {}, collections.Counter()
    for attempt in attempts:
        if attempt["verdict"] != Verdict.INFRA.value:
            continue
        key = cause(attempt["message"])
        causes[key] += 1
        examples.setdefault(key, attempt["folder"])
        crashes.update(dom0_crashes(run_dir / attempt["folder"]))
    # How long dom0 took to see a boot's guest.cfg (boot.py `share_wait`).
    waits = [w for attempt in attempts if (w := attempt.get("share_wait"))]
    rows = collections.Counter(row["verdict"] for row in summary["rows"])
    return {"schema": SCHEMA, "when": summary["finished"], "run_dir": str(run_dir), "flavour": flavour,
            "parallel": summary["parallel"], "rows": len(summary["rows"]), "boots": len(attempts),
            "verdicts": dict(verdicts), "infra": verdicts.get(Verdict.INFRA.value, 0),
            "row_verdicts": dict(rows), "retried_rows": summary["counts"]["retried"],
            "causes": [{"count": n, "cause": key, "example": examples[key]} for key, n in causes.most_common()],
            "dom0_crashes": dict(crashes.most_common()),
            "share_waits": {"boots": len(waits), "enoent": sum(w["enoent"] for w in waits),
                            "max_seconds": max((w["seconds"] for w in waits), default=0)},
            "seconds": summary["seconds"], "load": load, "cpus": os.cpu_count(),
            "exit_status": summary["exit_status"]}


def lines(data):
    """The soak's figures as a person reads them."""
    verdicts = ", ".join(f"{v} {n}" for v, n in sorted(data["verdicts"].items()))
    rows = ", ".join(f"{v} {n}" for v, n in sorted(data["row_verdicts"].items()))
    load = data["load"]
    out = [f"soak [{data['flavour']}]: {data['boots']} boots for {data['rows']} rows, {data['parallel']} at once, "
           f"in {data['seconds']:.0f} s (load {load['start']} at the start, mean {load['mean']}, max {load['max']}, "
           f"on {data['cpus']} cpus)",
           f"  every boot: {verdicts}; INFRA {data['infra']} of {data['boots']} "
           f"({100 * data['infra'] / max(1, data['boots']):.1f}%)",
           f"  rows: {rows} ({data['retried_rows']} retried after INFRA)"]
    if data["causes"]:
        out.append("  INFRA causes:")
        out += [f"    {c['count']:4d}  {c['cause']}  (e.g. {c['example']})" for c in data["causes"]]
    waits = data.get("share_waits")
    if waits and waits["boots"]:
        out.append(f"  dom0 saw a just-written guest.cfg only after {waits['enoent']} ENOENT answer(s) in "
                   f"{waits['boots']} boots (waited at most {waits['max_seconds']} s; no create failed on it)")
    if data["dom0_crashes"]:
        out.append("  crashes in dom0 during those boots (its kernel's log):")
        out += [f"    {n:4d}  {what}" for what, n in data["dom0_crashes"].items()]
    return out


def last_path(flavour, root=None):
    return pathlib.Path(root or paths.out_root() / "soak") / f"last-{flavour}.json"


def run_soak(boots, flavour=None, parallel=4, out=None, lab_config=None, progress=None, cpu_profile=None):
    if boots < 1:
        raise BadInput(f"--boots {boots}: at least 1")
    flavour = labconfig.flavour(labconfig.load(lab_config), flavour)[0]
    run_dir = pathlib.Path(result.run_dir(out, "soak"))
    matrix_path = run_dir / "soak-matrix.toml"
    matrix_path.write_text(matrix(boots, flavour, cpu_profile or labconfig.PV_PROFILE))
    with LoadSampler() as load:
        summary = nightly.run_nightly(matrix_path, run_dir / "nightly", parallel, lab_config=lab_config,
                                      progress=progress)
    data = summarize(summary, run_dir / "nightly", flavour, load.figures())
    result.write_json(str(run_dir / "soak.json"), data)
    last = last_path(flavour)
    last.parent.mkdir(parents=True, exist_ok=True)
    result.write_json(str(last), data)
    return data


def _command(args):
    try:
        with sigterm_raises(), Progress() as progress:
            data = run_soak(args.boots, args.lab, args.parallel, args.out, args.lab_config, progress,
                            cpu_profile=args.lab_cpu)
    except (KeyboardInterrupt, Terminated):
        print("xenboot: INFRA: soak interrupted; its boots are in its run folder", flush=True)
        return Verdict.INFRA.exit_status
    print("\n".join(lines(data)))
    print(f"xenboot: soak: {data['infra']} INFRA in {data['boots']} boots on {data['flavour']}; "
          f"{data['run_dir']}/report.html", flush=True)
    return data["exit_status"]


BOOTS = inputs.Integer(1, 100000, "probe boots")
OUT = inputs.OutputFolder("give a folder this user can write for the soak's run")


def add_parser(sub):
    p = sub.add_parser("soak", help="many probe boots on one lab flavour: INFRA count and causes",
                       description=__doc__.splitlines()[0])
    option = functools.partial(inputs.option, p)
    option("--boots", default=500, help="probe boots (rows; default 500)", check=BOOTS)
    option("--lab", help="lab flavour: debian or debug (default lab.toml's)", check=labconfig.FLAVOUR_INPUT)
    option("--lab-cpu", help="the lab's CPU: pv (the PV probe, default) or hvm (the PVH probe)",
           check=labconfig.CPU_PROFILE_INPUT)
    option("--parallel", default=4, help="guests booting at once (default 4)", check=schedule.PARALLEL)
    option("--out", help="run folder (default out/soak/<UTC time>-<id>)", check=OUT)
    option("--lab-config", help="lab config (default configs/lab.toml)", check=labconfig.CONFIG_INPUT)
    p.set_defaults(func=_command)
