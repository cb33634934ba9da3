"""`xenboot check-log LOG --spec NAME|PATH`: judges a recorded console.log
again, e.g. after a spec changed, and writes result.json and junit.xml.

The same Judge as the live run does the work. With --jsonl (the run's
console.jsonl) it gets the recorded timing: each recv record says when its
bytes of the log arrived, so budgets, HANG and TIMEOUT apply as they did live,
and the recorded domain end is used (none recorded: the domain still ran
when the recording stopped), and the domain's console_io lines it
recorded from Xen's console are judged as the "xen" source, in order.
Without it there are no timestamps and no deadlines, and the log's end is
the domain's end given by --end-reason. A run folder's console.jsonl is
used when it is beside the log, and so is what Xen said about the domain
(the recorded result.json's `xen`, else xen.log): the verdict quotes Xen
as the live run's did. With --kernel every kernel address is named from
that kernel's symbols and DWARF (its kernel.debug when beside it), as a boot
does: result.json `symbolized` and console.decoded.log in the out folder.
"""
import functools
import json
import os

from xenboot.console import xenconsole
from xenboot.core import consolelog, inputs
from xenboot.core.errors import BadInput, HarnessError
from xenboot.guest import kernelcheck, symbolize
from xenboot.judge.matcher import XEN, Judge, Scanner
from xenboot.judge.verdict import QUIET, XEN_QUOTED, from_diagnosis, from_xen
from xenboot.core.result import RunRecord, prepare_run_dir
from xenboot.judge.spec import SPEC_INPUT, load_spec
from xenboot.core.text import clean

CHUNK = 1024 * 1024
END_REASONS = ("poweroff", "reboot", "crash", "destroyed", "unknown", "alive")
# A silent guest's console.log is empty, and still worth judging; the log
# cap (console.DEFAULT_LOG_CAP) keeps a live one far smaller.
LOG_FILE = inputs.File("console log", "give a recorded console.log", 4 * inputs.GiB, empty_ok=True)
JSONL_FILE = inputs.File(consolelog.FILE, "give the run's console.jsonl", 4 * inputs.GiB, text=True)
# Default: check-log/ beside the log.
OUT = inputs.RunFolder(lambda value, args, what: prepare_run_dir(
    value or os.path.join(os.path.dirname(os.path.abspath(args.log)), "check-log"), what))


def add_parser(subparsers):
    p = subparsers.add_parser(
        "check-log", help="judge a recorded console.log against a spec",
        description=__doc__.split("\n\n")[0])
    option = functools.partial(inputs.option, p)
    option("log", metavar="LOG", help="a console.log (raw console bytes)", check=LOG_FILE)
    option("--spec", required=True, help="spec NAME (configs/milestones/NAME.toml) or path", check=SPEC_INPUT)
    option("--jsonl", help="the run's console.jsonl, for timestamps and the domain's end"
                            " (default: the one beside LOG, if any)", check=JSONL_FILE)
    option("--out", help="folder for result.json and junit.xml (default: check-log/ next to LOG)", check=OUT)
    option("--kernel", help="the kernel that printed the log: its addresses are named (file:line with DWARF)",
           check=kernelcheck.KERNEL_FILE)
    option("--end-reason", check=inputs.Choice(END_REASONS),
           help=f"how the domain ended where the log ends ({', '.join(END_REASONS)}); 'alive': the recording"
                " stopped while it ran (default: the end --jsonl records, else alive"
                " with --jsonl and unknown without)")
    p.set_defaults(func=run, refuse=refuse)


def _record(args):
    record = RunRecord(args.out, name="check-log")
    record["log"] = os.path.abspath(args.log)
    return record


def _finish(record, verdict, message):
    status = record.finish(verdict, message)
    print(f"xenboot: {verdict.value}: {message}")
    return status


def refuse(args, error):
    """An input refused before judging: the verdict as a judgement's would be."""
    return _finish(_record(args), error.verdict, error.message)


def run(args):
    record = _record(args)
    jsonl = args.jsonl or _beside(args.log, "console.jsonl")
    try:
        with record.stage("check-log"):
            spec = load_spec(args.spec)
            record["spec"] = spec.name
            outcome = check_log(args.log, spec, jsonl, args.end_reason, recorded_diagnosis(args.log))
            xen = recorded_xen(args.log)
            if xen and outcome.verdict in XEN_QUOTED:
                record["xen"] = xen
            from_xen(outcome, xen)
        outcome.to_result(record)
        if args.kernel:
            with record.stage("symbolize"):
                record["symbolized"] = _symbolized(args.kernel, record, args.log, args.out)
        verdict, message = outcome.verdict, outcome.message
    except HarnessError as e:
        verdict, message = e.verdict, e.message
    return _finish(record, verdict, message)


def _symbolized(kernel, record, log, out):
    """The log's addresses named from `kernel` (a bzImage's ELF unpacked
    into `out`, as a boot stages it)."""
    info, elf = kernelcheck.inspect_kernel(kernel)
    path = symbolize.debug_file(kernel)
    if path == kernel and info["format"] != "elf":
        path = os.path.join(out, "kernel.elf")
        with open(path, "wb") as f:
            f.write(elf)
    return symbolize.decode_run(symbolize.Symbolizer(path), record.data, log, out)


def check_log(log_path, spec, jsonl_path=None, end_reason=None, diagnosis=None):
    """The Outcome of judging the log at log_path against spec; `diagnosis`
    is what the live run found when its guest went quiet (result.json), so
    that a HANG in the kernel debugger is judged as live."""
    judge, scanner = Judge(spec), Scanner()
    try:
        log = open(log_path, "rb")
    except OSError as e:
        raise BadInput(f"{log_path}: cannot read the console log: {e.strerror}") from None
    with log:
        if jsonl_path:
            t, recorded_end = _replay_timed(judge, scanner, log, jsonl_path)
        else:
            t, recorded_end = None, None
        while not judge.done and (data := log.read(CHUNK)):
            _feed(judge, scanner, data, t)
    if not judge.done:
        judge.end(end_reason or recorded_end or ("alive" if jsonl_path else "unknown"), t)
    outcome = judge.outcome
    if diagnosis and outcome.verdict in QUIET:
        outcome.diagnosis = diagnosis
        from_diagnosis(outcome)
    return outcome


def _beside(log_path, name):
    path = os.path.join(os.path.dirname(os.path.abspath(log_path)), name)
    return path if os.path.isfile(path) else None


def _recorded(log_path):
    """The result.json next to a run's console.log, or {}."""
    # Only a file is opened (opening a FIFO would block).
    path = _beside(log_path, "result.json")
    try:
        with open(path) as f:
            data = json.load(f)
    except (TypeError, OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recorded_diagnosis(log_path):
    """The diagnosis in the result.json next to a run's console.log, if any."""
    return _recorded(log_path).get("diagnosis")


def recorded_xen(log_path):
    """What Xen said about the run's domain: result.json's `xen` as the live
    run wrote it (RIP named with the kernel's symbols), else the facts of
    the xen.log beside the log (RIP an address), else None."""
    xen = _recorded(log_path).get("xen")
    if isinstance(xen, dict) and xen.get("summary"):
        return xen
    path = _beside(log_path, "xen.log")
    if path is None:
        return None
    with open(path, encoding="utf-8", errors="replace") as f:
        messages = [m.group(3) for line in f.read().splitlines()
                    if (m := xenconsole.PREFIX.match(line)) and m.group(1) == "XEN"]
    facts = xenconsole.crash_facts(messages)
    return {"log": "xen.log", **facts} if facts else None


def _replay_timed(judge, scanner, log, jsonl_path):
    """Feeds the log as the recv records of console.jsonl say it arrived.
    Returns the time and reason of the recorded domain end, or the last
    recorded time and None. As live, output after the end is judged but no
    deadline runs out in it."""
    t, recorded_end = 0.0, None
    for record in consolelog.read(jsonl_path):
        t = consolelog.time_of(record, t)
        if recorded_end is None:
            _advance(judge, t)
        if judge.done:
            break
        if consolelog.is_xen(record):
            judge.feed(clean(record.get("text", "").encode("utf-8")) + "\n", None, t, source=XEN)
            _drop_actions(judge)
        elif consolelog.is_console(record):
            _feed(judge, scanner, log.read(record["n"]), t)
        elif record.get("end_reason") and recorded_end is None:
            recorded_end, end_t = record["end_reason"], t
    if recorded_end is None:
        _advance(judge, t)
        return t, None
    return end_t, recorded_end


def _advance(judge, t):
    """Lets every deadline up to time t act at its own time."""
    while not judge.done and (deadline := judge.next_deadline()) is not None and deadline <= t:
        judge.tick(deadline)
        if judge.next_deadline() == deadline:
            break


def _feed(judge, scanner, data, t):
    block, tail = scanner.feed(data)
    judge.feed(block, None, t)
    if tail is not None and not judge.done:
        judge.feed("", tail, t)
    _drop_actions(judge)


def _drop_actions(judge):
    judge.sends.clear()
    judge.events.clear()

