"""The console stage: a pexpect session on the guest console that judges the
boot against a spec, types at the kernel debugger, and stays usable after the
verdict for interactive tests.

Every byte goes to console.log as it arrives (so a killed run still leaves
it), and every receive, send and match to console.jsonl, one JSON object a
line with the monotonic time since unpause.
"""
import contextlib
import math
import os
import threading
import time

import pexpect
from pexpect import fdpexpect

from xenboot.core import consolelog, terminal
from xenboot.core.errors import Verdict
from xenboot.judge.matcher import FATAL_KINDS, XEN, BlockSearch, Judge, Outcome, Pattern, Scanner
from xenboot.core.text import clean
from xenboot.judge.spec import Spec, load_spec
from xenboot.judge.verdict import from_diagnosis

__all__ = ["ConsoleSession", "ExpectFailed", "Outcome", "judge"]

DEFAULT_LOG_CAP = 16 * 1024 * 1024
READ_SIZE = 64 * 1024
# How often the domain is asked whether it still runs: its console channel
# does not end when the domain does.
POLL = 0.1
# After the domain ends, its last output may still be on its way through
# xenconsoled and the relay; it is read until the console has been quiet
# this long, or DRAIN_MAX at most.
DRAIN_QUIET = 0.5
DRAIN_MAX = 5.0
# Once the domain says its console is complete (dom0's relay has ended), the
# relay's last bytes may still cross QEMU on their own virtio-serial port,
# which nothing orders against the port that reported the end.
DRAIN_COMPLETE_QUIET = 0.05


class ExpectFailed(Exception):
    """ConsoleSession.expect did not see its pattern; `verdict` says why."""

    def __init__(self, verdict, message):
        super().__init__(f"{verdict.value}: {message}")
        self.verdict = verdict
        self.message = message


class Match:
    """What expect() found: the cleaned line, the regex match, and when."""

    def __init__(self, line, match, seconds):
        self.line = line
        self.match = match
        self.seconds = seconds

    def group(self, *names):
        return self.match.group(*names)

    def __repr__(self):
        return f"Match({self.line!r} at {self.seconds:.3f} s)"


class ConsoleSession:
    """The guest console, both ways, on a connected file descriptor.

    `domain` is None (a transcript, or a log being replayed) or an object with
    end_reason() -> None | "poweroff" | "reboot" | "crash" | "destroyed" |
    "unknown", console_complete() -> True once nothing more can come on the
    console (its relay has ended), and diagnose(verdict) -> dict | None. `t0` is the monotonic
    time of unpause. `send(bytes)` replaces writing to fd for input.
    `on_match(event)` sees each match event (a milestone reached, a fatal
    line) as it happens, e.g. to show progress while the guest runs.
    `clock` is what the session's times are read from: time.monotonic, or
    a transcript player's, which stands still while it trickles a burst
    out in pieces (a guest's burst takes no time on its own timeline).
    `lost(channel_closed)`, if given, says why the console no longer shows
    a running guest (the harness lost it: its host, its relay), or None.
    """

    def __init__(self, fd, spec, out_dir, domain=None, t0=None, log_cap=DEFAULT_LOG_CAP,
                 send=None, on_match=None, xen=None, lost=None, clock=time.monotonic):
        self.spec = spec if isinstance(spec, Spec) else load_spec(spec)
        self.domain = domain
        self._clock = clock
        self.t0 = clock() if t0 is None else t0
        self.log_cap = log_cap
        self.logged = 0
        self.log_truncated = False
        self.end_reason = None
        self.ended_at = None
        self.console_lost = False
        self._lost = lost
        # Why console.log or console.jsonl cannot be written (a full disk).
        self.log_error = None
        self.outcome = None
        self.last_received = 0.0    # seconds since t0
        self._child = fdpexpect.fdspawn(fd, use_poll=True)
        self._write = send or self._child.send
        self._on_match = on_match
        # The domain's console_io lines (xenconsole.XenConsole), or None.
        self._xen = xen
        self._send_lock = threading.Lock()
        self._jsonl_lock = threading.Lock()
        # Called with every byte received, e.g. ConsoleMirror.broadcast.
        self.tee = None
        self._scanner = Scanner()
        self._judge = None          # the Judge while judge() runs
        self._pending = ""          # cleaned complete lines nobody has judged yet
        self._tail = None           # the unfinished last line (None once it ends or a prompt matched it)
        self._next_poll = 0.0
        self._log = open(os.path.join(out_dir, "console.log"), "ab", buffering=0)
        self._jsonl = open(os.path.join(out_dir, consolelog.FILE), "a", encoding="utf-8",
                           buffering=1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Closes the logs; the descriptor stays the caller's."""
        # A log that could not be written cannot be flushed either.
        for log in (self._log, self._jsonl):
            with contextlib.suppress(OSError):
                log.close()

    def now(self):
        return self._clock() - self.t0

    # -- judging -------------------------------------------------------------

    def judge(self, spec=None):
        """Runs the spec (the session's, or another one from here on, e.g. for
        a reboot) to its verdict and returns the Outcome."""
        spec = self.spec if spec is None else spec if isinstance(spec, Spec) else load_spec(spec)
        judge = self._judge = Judge(spec, start=self.now() if self.outcome else 0.0)
        try:
            if self._pending or self._tail is not None:
                block, tail = self._pending, self._tail
                self._pending, self._tail = "", None
                self._hand_over(block, tail, round(self.now(), 3))
            while not judge.done:
                if trouble := self._trouble():
                    judge.abort(Verdict.INFRA, trouble, self.now())
                elif self.end_reason is not None:
                    judge.end(self.end_reason, self.ended_at)
                else:
                    judge.tick(self.now())
                self._drain_judge()
                if not judge.done:
                    self._pump(judge.next_deadline())
        finally:
            self._judge = None
        outcome = judge.outcome
        outcome.log_truncated = self.log_truncated
        if self.end_reason is not None:
            outcome.end_reason = self.end_reason
        if outcome.verdict in (Verdict.HANG, Verdict.TIMEOUT) and self.domain is not None:
            outcome.diagnosis = self._diagnose(outcome.verdict)
            if from_diagnosis(outcome):
                self._jsonl_write(consolelog.judged(self.now(), f"verdict DEBUGGER: {outcome.message}",
                                                     verdict="DEBUGGER"))
        self.outcome = outcome
        return outcome

    def _hand_over(self, block, tail, t):
        """Gives the judge what arrived at t; what it leaves once done stays
        for expect()."""
        judge = self._judge
        used = judge.feed(block, None, t)
        self._pending += block[used:]
        if tail is not None and not judge.done:
            judge.feed("", tail, t)
            tail = None
        self._tail = tail
        self._drain_judge()

    def _drain_judge(self):
        judge = self._judge
        for event in judge.events:
            self._jsonl_write(event)
            if self._on_match:
                self._on_match(event)
        judge.events.clear()
        for text in judge.sends:
            self.send(text)
        judge.sends.clear()

    def _diagnose(self, verdict):
        # The diagnosis only helps explain a HANG or TIMEOUT: whatever goes
        # wrong collecting it must not replace the verdict.
        try:
            return self.domain.diagnose(verdict)
        except Exception as e:  # noqa: BLE001
            return {"error": f"diagnose failed: {type(e).__name__}: {e}"}

    # -- interactive use -------------------------------------------------------

    def send(self, text):
        self.send_bytes(text.encode("utf-8"))

    def send_bytes(self, data):
        """Types `data` at the guest, logged; also from other threads (a
        person on `make console`)."""
        with self._send_lock:
            self._jsonl_write(consolelog.typed(self.now(), data.decode("utf-8", "backslashreplace")))
            self._write(data)

    def send_line(self, text):
        self.send(text + self.spec.newline)

    def expect(self, pattern, timeout=30, fatal=True, prompt=False):
        """Waits for a complete line matching `pattern` (a regex, one line at
        a time) and returns a Match; with prompt=True the unfinished last
        line may match too (a prompt waits for input and never ends its
        line), as may a fatal pattern the spec marks partial. Any other
        line is matched only once it ends: its unfinished tail depends on
        how the guest's bytes happen to be chunked. Raises ExpectFailed: at
        `timeout`, HANG if the guest has been silent for the spec's hang
        budget, else TIMEOUT; the verdict of a fatal line of the spec seen
        first (unless fatal=False); CRASH/MILESTONE_MISSING if the domain
        ends."""
        target = Pattern(pattern)
        entries = [(target, None)]
        if fatal:
            entries += [(f.pattern, f) for f in self.spec.fatal]
        tail_entries = [(p, f) for p, f in entries if (f.partial if f is not None else prompt)]
        deadline = self.now() + timeout
        while True:
            found = self._expect_in_pending(entries) or self._expect_in_tail(tail_entries)
            if found:
                fatal_entry, line, match = found
                if fatal_entry is not None:
                    raise ExpectFailed(FATAL_KINDS[fatal_entry.kind][0],
                                       f"{line!r} while waiting for {pattern!r}")
                seconds = self.now()
                self._jsonl_write(consolelog.judged(seconds, line, expect=pattern))
                return Match(line, match, seconds)
            if trouble := self._trouble():
                raise ExpectFailed(Verdict.INFRA, f"{trouble}, waiting for {pattern!r}")
            if self.end_reason is not None:
                raise ExpectFailed(Verdict.CRASH if self.end_reason == "crash"
                                   else Verdict.MILESTONE_MISSING,
                                   f"the domain ended ({self.end_reason}) while waiting for"
                                   f" {pattern!r}")
            if self.now() >= deadline:
                silent = self.now() - self.last_received
                if silent >= self.spec.hang:
                    raise ExpectFailed(Verdict.HANG, f"no output for {silent:.1f} s while waiting"
                                       f" for {pattern!r}")
                raise ExpectFailed(Verdict.TIMEOUT, f"no {pattern!r} within {timeout:g} s")
            self._pump(deadline)

    def _expect_in_pending(self, entries):
        if not self._pending:
            return None
        hit = BlockSearch(self._pending).earliest(entries, 0)
        if hit is None:
            self._pending = ""
            return None
        payload, start, end, match = hit
        line = self._pending[start:end]
        self._pending = self._pending[end + 1:]
        return payload, line, match

    def _expect_in_tail(self, entries):
        # A tail that matched is used up; one that did not stays, as the
        # line may still complete or a later expect may want it.
        tail = self._tail
        for pattern, payload in entries if tail is not None else ():
            match = pattern.regex.search(tail)
            if match:
                self._tail = None
                return payload, tail, match
        return None

    def _trouble(self):
        """Why judging cannot go on, by no doing of the guest's, or None."""
        if self.log_error:
            return f"the run folder cannot keep the console: {self.log_error}"
        lost = (self._lost(self.console_lost)
                if self._lost and (self.console_lost or self.end_reason in (None, "lost")) else None)
        if self.console_lost:
            closed = "the console channel closed while the domain was still running"
            return f"{closed}: {lost}" if lost else closed
        return lost

    # -- reading -------------------------------------------------------------

    def _pump(self, deadline):
        """Waits for console output until `deadline` (seconds since t0) at
        most, and notices the domain's end."""
        wait = math.inf if deadline is None else max(0.0, deadline - self.now())
        if self.domain is not None:
            wait = min(wait, POLL)
        self._read(None if wait == math.inf else wait)
        self._read_xen()
        if self.domain is not None and self.end_reason is None and self.now() >= self._next_poll:
            self._next_poll = self.now() + POLL
            reason = self.domain.end_reason()
            if reason is not None:
                self._ended(reason)
                self._drain()

    def _ended(self, reason):
        """Notes the domain's end when it is seen; output read after this (the
        drain) is judged, but no deadline runs out in it, live or replayed."""
        self.end_reason, self.ended_at = reason, self.now()
        self._jsonl_write(consolelog.domain_end(self.ended_at, reason))

    def _drain(self):
        stop = self.now() + DRAIN_MAX
        while (left := stop - self.now()) > 0:
            quiet = DRAIN_COMPLETE_QUIET if self.domain.console_complete() else DRAIN_QUIET
            if not self._read(min(quiet, left)):
                break
        # The follower reads Xen's console at its own pace; a drain cut
        # short by a complete console must not leave its last lines behind.
        self._read_xen(catch_up=True)

    def _read_xen(self, catch_up=False):
        """The domain's console_io lines since last time (with `catch_up`,
        Xen's console read up to now first): logged, and judged as the
        "xen" source while a judge runs (expect() reads the console)."""
        if self._xen is None:
            return
        if catch_up:
            self._xen.poll()
        lines = self._xen.take()
        if not lines:
            return
        t = round(self.now(), 3)
        for line in lines:
            self._jsonl_write(consolelog.xen_line(t, line))
        if self._judge is not None and not self._judge.done:
            self._judge.feed("".join(clean(line.encode("utf-8")) + "\n" for line in lines),
                             None, t, source=XEN)
            self._drain_judge()

    def _read(self, wait):
        """Reads what the console has within `wait` seconds; True if anything came."""
        if self.console_lost or (self.end_reason is not None and self.domain is None):
            return False
        try:
            data = self._child.read_nonblocking(READ_SIZE, timeout=wait)
        except pexpect.TIMEOUT:
            return False
        except pexpect.EOF:
            self._eof()
            return False
        self._received(data)
        return True

    def _eof(self):
        reason = "unknown" if self.domain is None else self.domain.end_reason()
        if reason is None:
            self.console_lost = True
        else:
            self._ended(reason)

    def _received(self, data):
        if self.tee:
            self.tee(data)
        self.last_received = self.now()
        t = round(self.last_received, 3)
        room = self.log_cap - self.logged
        if room > 0:
            kept = data[:room]
            self._keep(self._log, "console.log", kept)
            self.logged += len(kept)
            self._jsonl_write(consolelog.console_bytes(t, kept))
        if len(data) > room and not self.log_truncated:
            self.log_truncated = True
            self._jsonl_write(consolelog.judged(t, f"console.log reached its cap of {self.log_cap} bytes;"
                                                   " later output is judged but not kept",
                                                log_cap=self.log_cap))
        block, tail = self._scanner.feed(data)
        if self._judge is not None and not self._judge.done:
            self._hand_over(block, tail, t)
        else:
            self._pending += block
            self._tail = tail

    def interact(self, escape=terminal.ESCAPE):
        """Hands the live console to the user's terminal until the escape
        key or the domain's end; both directions keep going to console.log
        and console.jsonl. Returns why it ended."""
        def read():
            data = self._child.read_nonblocking(READ_SIZE, timeout=0)
            self._received(data)
            # The person reads it; nothing waits to match it later.
            self._pending, self._tail = "", None
            return data

        def ended():
            return self.domain is not None and self.domain.end_reason() is not None

        try:
            return terminal.bridge(self._child.child_fd, read, self.send_bytes, stop=ended, escape=escape)
        except pexpect.EOF:
            return "closed"

    def _jsonl_write(self, record):
        with self._jsonl_lock:
            self._keep(self._jsonl, consolelog.FILE, consolelog.encode(record))

    def _keep(self, log, name, data):
        """Writes to a log until the first failure, which stops judging
        (INFRA): a verdict nobody can check afterwards is worth nothing."""
        if self.log_error:
            return
        try:
            log.write(data)
        except OSError as e:
            self.log_error = f"{name}: {e}"


def judge(fd, spec, out_dir, domain=None, t0=None, log_cap=DEFAULT_LOG_CAP, send=None):
    """Judges the console on `fd` against `spec` (a Spec, NAME or path) and
    returns the Outcome; out_dir receives console.log and console.jsonl."""
    with ConsoleSession(fd, spec, out_dir, domain=domain, t0=t0, log_cap=log_cap,
                        send=send) as session:
        return session.judge()
