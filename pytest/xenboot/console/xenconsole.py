"""The Xen console per domain: what Xen itself says about one guest.

Xen's console (the lab's serial, host.log; on HOST=xl the `xl dmesg` ring)
mixes every domain on the host with Xen's and dom0's own lines. This stage
follows it live from just before the domain is built and keeps, in the run
folder's xen.log, only the lines of that run's domain:

- its console_io writes, which Xen prints as `(dN) text` (a debug Xen or a
  console domain only: Debian's release Xen refuses a domU's console_io);
  these are also handed to the judge as the "xen" source, each line once
  (Resends);
- Xen's messages naming it: `dNvM` (%pv), `dN` (%pd), `Domain N`, `domN`;
- the unnamed lines that continue such a message: the register dump and
  guest stack after "Domain N (vcpu#M) crashed", a page-table walk, and the
  `domain_crash_sync called from` line printed just before the crash line.

Xen prints a register dump under its console lock, so it is never split by
another CPU's message; the separate printk calls around it can be, in
principle, by a message of another domain, which then takes over what
follows. What Xen reported about the crash (reason, RIP, cr2) becomes
result.json `xen` and the first words of the verdict.
"""
import collections
import os
import re
import threading
import time

from xenboot.core.errors import HarnessError
from xenboot.judge.matcher import CONSOLE, XEN
from xenboot.judge.verdict import XEN_QUOTED, from_xen
from xenboot.host.xenlog import POLL

# The domain's Xen messages read for the crash facts, and the last of them
# kept in result.json (xen.log has all).
MESSAGES_READ = 2000
MESSAGES_KEPT = 60
# How long, after the domain crashed, Xen's report of it may take to arrive
# (Xen's serial output is buffered and emulated).
CRASH_REPORT_WAIT = 3.0

PREFIX = re.compile(r"^\((XEN|d(\d+))\) (?:\[[^\]\n]*\] )?(.*)$")
# The ways Xen 4.17 names a domain in its own messages.
# %pd prints no leading zeros and domids stay below 0x7ff0, so a hex word
# of a register or stack dump ("d0123456") never reads as a domain.
_DOMID = r"(0|[1-9]\d{0,4})"
_NAMES = re.compile(rf"\b(?:d{_DOMID}(?:v\d+)?|Domain {_DOMID}|[Dd]om{_DOMID})\b")
# Unnamed lines that carry on the message before them: x86 show_registers
# (64-bit and compat), the guest stack, show_page_walk, domain_crash_sync.
_CONTINUES = re.compile(
    r"^(?:----\[ Xen-|CPU:\s|[RE]IP:\s|[RE]FLAGS:\s|[a-z0-9]{2,3}:\s+[0-9a-f]+\b"
    r"|Guest stack trace|Stack empty|\s+(?:[0-9a-f]{8,16}\s*)+$|\s+\[<[0-9a-f]+>\]"
    r"|Pagetable walk from| L[1-4]\[0x|domain_crash_sync called from)")
_BEFORE_CRASH = re.compile(r"^domain_crash_sync called from")

_CRASHED = re.compile(r"Domain (\d+) \(vcpu#(\d+)\) crashed")
# What a debug Xen says about every domain that runs normally (a guest's
# grant table grows as its first devices connect): not a reason for
# anything, so never quoted in a verdict.
_ROUTINE = re.compile(r"Expanding d\d+ grant table")
_UNHANDLED = re.compile(r"\bd\d+v\d+ Unhandled: (?P<what>.*)")
_SYNC = re.compile(r"domain_crash_sync called from (?P<where>[^\s:]+)(?:: fault at (?P<addr>[0-9a-f]+)"
                   r"(?: (?P<sym>\S+))?)?")
_CRASH_FROM = re.compile(r"domain_crash called from (?P<where>\S+)")
_RIP = re.compile(r"^[RE]IP:\s+[0-9a-f]{4}:\[<(?P<addr>[0-9a-f]+)>\]")
_CR2 = re.compile(r"\bcr2: (?P<addr>[0-9a-f]+)")



class Splitter:
    """Xen console text in, the lines of domain `domid` out.

    feed() returns (kind, raw line, text): kind CONSOLE for its console_io
    lines (text without the `(dN)` prefix and timestamp), XEN for Xen's
    messages about it (text without `(XEN)` and timestamp)."""

    def __init__(self, domid):
        self.domid = domid
        self._partial = ""
        self._owner = None          # the domain the last named Xen message was about
        self._held = None           # an unnamed line that names its domain on the next one

    def feed(self, text):
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        out = []
        for raw in lines:
            out.extend(self._line(raw.rstrip("\r")))
        return out

    def _line(self, raw):
        m = PREFIX.match(raw)
        if m is None:
            # dom0's own console, the harness's markers: no Xen message goes on.
            self._owner, self._held = None, None
            return []
        held, self._held = self._held, None
        text = m.group(3)
        if m.group(2) is not None:
            return [(CONSOLE, raw, text)] if int(m.group(2)) == self.domid else []
        if self._owner is not None and _CONTINUES.match(text):
            return [(XEN, raw, text)] if self._owner == self.domid else []
        named = {int(next(g for g in n.groups() if g is not None)) for n in _NAMES.finditer(text)}
        if named:
            mine = self.domid in named
            self._owner = self.domid if mine else min(named)
            if mine and held is not None and _CRASHED.search(text):
                return [(XEN, held[0], held[1]), (XEN, raw, text)]
            return [(XEN, raw, text)] if mine else []
        self._owner = None
        if _BEFORE_CRASH.match(text):
            self._held = (raw, text)
        return []


class Resends:
    """A guest's console_io lines, each once: which lines are new, not a
    re-send of what Xen already printed.

    FreeBSD's Xen console (sys/dev/xen/console/console.c, __xencons_tx_flush
    with `remove_after_debug`, in the amd64_xen_pv branch and 10.x) writes
    its whole unsent backlog to console_io on every flush, and only then
    offers it to the console ring, whose acceptance decides what counts as
    sent. While the ring is full (before xenconsoled drains it) every
    character printed re-sends everything from the oldest byte the ring has
    not taken: Xen's copy repeats runs of lines it printed, each run a
    later part of what came before (the branch's amd64 kernel at 128 MB:
    585 lines for a 311-line console). A line that starts such a run, or
    goes on with one, is a re-send; the judge sees the rest, xen.log all."""

    # The backlog is console.c's 4 KiB write buffer: a re-send reaches this
    # many lines back at the most.
    WINDOW = 256
    # Shorter lines ("done.", blank) recur of themselves: they never start a run.
    MIN_START = 8

    def __init__(self):
        self._kept = collections.deque(maxlen=self.WINDOW)
        self._next = None           # where in _kept the run being re-sent is

    def fresh(self, line):
        kept = self._kept
        if self._next is not None and self._next < len(kept) and kept[self._next] == line:
            self._next += 1
            return False
        self._next = None
        if len(line.strip()) >= self.MIN_START and line in kept:
            self._next = len(kept) - list(reversed(kept)).index(line)
            return False
        kept.append(line)
        return True


class XenConsole:
    """The domain's Xen console, followed by a thread from start() to
    close(): written to out/xen.log as it comes, console_io lines queued for
    the judge (take()), Xen's messages kept for the report (report())."""

    def __init__(self, source, domid, out_dir):
        self.source = source
        self.splitter = Splitter(domid)
        self.domid = domid
        self.path = os.path.join(out_dir, "xen.log")
        self.messages = collections.deque(maxlen=MESSAGES_READ)
        self.error = None
        self._lock = threading.Lock()
        self._queue = []
        self._resends = Resends()
        self._log = open(self.path, "a", encoding="utf-8", buffering=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name=f"xen-console-d{domid}", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def close(self):
        """Reads what is left, then stops following."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.poll()
        self._log.close()

    def _follow(self):
        while not self._stop.wait(self.source.interval):
            self.poll()

    def poll(self):
        with self._lock:
            if self._log.closed:
                return
            try:
                text = self.source.read()
            except (OSError, HarnessError) as e:
                # Xen's console is evidence, not the verdict: a failure to
                # read it is noted in the report and the run goes on.
                self.error = f"{type(e).__name__}: {e}"
                return
            for kind, raw, line in self.splitter.feed(text):
                self._log.write(raw + "\n")
                if kind == CONSOLE:
                    if self._resends.fresh(line):
                        self._queue.append(line)
                else:
                    self.messages.append(line)

    def take(self):
        """The console_io lines (text) that came since last asked."""
        with self._lock:
            lines, self._queue = self._queue, []
        return lines

    def conclude(self, outcome, symbolize=None):
        """After the verdict: result.json `xen` for a run that failed on
        the guest's side, with Xen's reason quoted in the verdict, or for
        any run Xen said something about (a refused page-table update in a
        run that passed); None otherwise."""
        if outcome.end_reason == "crash":
            self.wait_for_crash()
        else:
            self.poll()
        failed = outcome.verdict in XEN_QUOTED
        with self._lock:
            said = bool(self.messages)
        if not (failed or said):
            return None
        report = self.report(symbolize)
        if failed:
            from_xen(outcome, report)
        return report

    def wait_for_crash(self, timeout=CRASH_REPORT_WAIT):
        """After a crash, until Xen's report of it (the register dump's
        RIP) is in, the source has no more to give, or `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            complete = self.source.complete()
            self.poll()
            with self._lock:
                if complete or any(_RIP.match(m) for m in self.messages):
                    return
            time.sleep(POLL)

    def report(self, symbolize=None):
        """result.json `xen`: the domain's last Xen messages and what they
        say about a crash."""
        with self._lock:
            messages = list(self.messages)
        data = {"log": os.path.basename(self.path), "domid": self.domid,
                "messages": messages[-MESSAGES_KEPT:]}
        data.update(crash_facts(messages, symbolize))
        if self.error:
            data["error"] = self.error
        return data


def crash_facts(messages, symbolize=None):
    """What Xen's messages say about the domain's end: the fields found
    (unhandled, fault_in, crash_from, crashed, rip, rip_symbol, cr2) and
    `summary`, one line for the verdict, or {} when Xen said nothing."""
    facts = {}
    for line in messages:
        if (m := _UNHANDLED.search(line)) and "unhandled" not in facts:
            facts["unhandled"] = m.group("what").strip()
        elif (m := _SYNC.search(line)) and "fault_in" not in facts:
            facts["fault_in"] = _function(m.group("sym")) if m.group("sym") else m.group("where")
        elif (m := _CRASH_FROM.search(line)) and "crash_from" not in facts:
            facts["crash_from"] = m.group("where")
        elif _CRASHED.search(line):
            facts["crashed"] = line
        elif (m := _RIP.match(line)) and "rip" not in facts:
            facts["rip"] = "0x" + m.group("addr").lstrip("0").rjust(1, "0")
            name = symbolize(int(m.group("addr"), 16)) if symbolize else None
            if name:
                facts["rip_symbol"] = name
        if (m := _CR2.search(line)) and "cr2" not in facts:
            facts["cr2"] = "0x" + m.group("addr").lstrip("0").rjust(1, "0")
    parts = []
    if "unhandled" in facts:
        # "vec 14, #PF[0000]": the name says it, the number is in the facts.
        parts.append(f"unhandled {facts['unhandled'].split(', ')[-1]}")
    if "fault_in" in facts:
        parts.append(f"fault in {facts['fault_in']}")
    elif "crash_from" in facts:
        parts.append(f"domain_crash from {facts['crash_from']}")
    elif "crashed" in facts and not parts:
        parts.append("domain crashed")
    if "rip" in facts:
        parts.append(f"RIP {facts.get('rip_symbol', facts['rip'])}")
    if facts.get("cr2", "0x0") != "0x0":
        parts.append(f"cr2 {facts['cr2']}")
    said = next((m for m in messages if not _ROUTINE.search(m)), None)
    if not parts and said:
        parts.append(said)
    if parts:
        facts["summary"] = "Xen: " + ", ".join(parts)
    return facts


def _function(symbol):
    """Xen's %pS `file.S#name+0x14f/0x177` as `name`."""
    return symbol.split("#")[-1].split("+")[0]
