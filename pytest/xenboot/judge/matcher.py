"""Judging console text against a spec: the part of the console stage that needs no I/O.

The live driver (console.py), the offline re-judge (checklog.py) and the
benchmark all feed the same `Judge`, so a recorded log is judged exactly as the
live run judged it. Cost stays linear in the log size: text is cleaned and
searched once, in blocks of complete lines, and nothing already searched is
kept or searched again.
"""
import re
from re import _constants as sre_constants
from re import _parser as sre_parser

from xenboot.core import consolelog
from xenboot.core.consolelog import CONSOLE, XEN
from xenboot.core.errors import Verdict
from xenboot.core.text import clean
from xenboot.judge.verdict import crashed_message

# A line longer than this is cut, so an endless line cannot grow the window.
MAX_LINE = 64 * 1024
# The unfinished last line is matched (prompts) only while it is this short;
# prompts are, and skipping long partial lines keeps per-chunk work bounded.
PROMPT_MAX = 256
# One debugger reply kept in the report; the console log has all of it.
REPLY_CAP = 256 * 1024
NOTES_CAP = 100

class Scanner:
    """Console bytes in; cleaned complete lines and the cleaned unfinished line out."""

    def __init__(self):
        self._partial = []
        self._partial_len = 0

    def feed(self, data):
        """Returns (block, tail): `block` is the text of the lines this data
        completed, each ending in \\n; `tail` is the unfinished last line when
        this data added to it and it is short enough to be a prompt, else None."""
        cut = data.rfind(b"\n") + 1
        if cut:
            block = b"".join(self._partial) + data[:cut]
            self._partial = [data[cut:]] if cut < len(data) else []
            self._partial_len = len(data) - cut
        else:
            block = b""
            if data:
                self._partial.append(data)
                self._partial_len += len(data)
        if self._partial_len > MAX_LINE:
            block += b"".join(self._partial) + b"\n"
            self._partial, self._partial_len = [], 0
        tail = None
        if cut < len(data) and 0 < self._partial_len <= PROMPT_MAX:
            tail = clean(b"".join(self._partial))
        return (clean(block) if block else ""), tail


def _required_literal(regex):
    """The longest run of plain characters that every match contains, or ''.

    Python's re tries a line-anchored or class-led pattern at every position;
    str.find on this literal skips almost all of the log in C instead."""
    if regex.flags & re.IGNORECASE:
        return ""
    best = run = ""
    for op, arg in sre_parser.parse(regex.pattern, regex.flags):
        if op is sre_constants.LITERAL:
            run += chr(arg)
            continue
        best = max(best, run, key=len)
        run = ""
    return max(best, run, key=len)


class Pattern:
    """A spec regex, matched one line at a time (re.MULTILINE: ^ and $ are line ends)."""

    def __init__(self, source):
        self.source = source
        self.regex = re.compile(source, re.MULTILINE)
        self.literal = _required_literal(self.regex)

    def __repr__(self):
        return f"Pattern({self.source!r})"

    def first_hit(self, text, pos):
        """The first line at or after `pos` (a line start) that matches:
        (line start, line end, match), or None."""
        if not self.literal:
            m = self.regex.search(text, pos)
            if m is None:
                return None
            return _line_start(text, pos, m.start()), _line_end(text, m.start()), m
        while (i := text.find(self.literal, pos)) >= 0:
            start, end = _line_start(text, pos, i), _line_end(text, i)
            m = self.regex.search(text, start, end)
            if m:
                return start, end, m
            pos = end + 1
        return None


def _line_start(text, floor, i):
    nl = text.rfind("\n", floor, i)
    return nl + 1 if nl >= 0 else floor


def _line_end(text, i):
    end = text.find("\n", i)
    return end if end >= 0 else len(text)


class BlockSearch:
    """The earliest hit of several patterns in one block. Each pattern's next
    hit is kept until the position passes it, so each pattern searches each
    part of the block once however often the set of patterns changes."""

    def __init__(self, block):
        self.block = block
        self._next = {}

    def earliest(self, entries, pos):
        """entries: (pattern, payload) pairs in priority order. Returns
        (payload, line start, line end, match) of the earliest matching line at
        or after `pos`, a tie going to the earlier entry; or None."""
        best = None
        for pattern, payload in entries:
            searched_from, hit = self._next.get(pattern, (None, None))
            if searched_from is None or searched_from > pos or (hit is not None and hit[0] < pos):
                hit = pattern.first_hit(self.block, pos)
                self._next[pattern] = (pos, hit)
            if hit is not None and (best is None or hit[0] < best[1]):
                best = (payload, *hit)
        return best


class Outcome:
    """What the console stage concludes; `to_result` puts it into a RunRecord."""

    FIELDS = ("verdict", "message", "milestones", "failed_at", "debugger", "fatal",
              "notes", "end_reason", "log_truncated", "diagnosis")

    def __init__(self):
        self.verdict = None
        self.message = None
        self.milestones = []
        self.failed_at = None
        self.debugger = []
        self.fatal = []
        self.notes = []
        self.end_reason = None
        self.log_truncated = False
        self.diagnosis = None

    def as_dict(self):
        data = {name: getattr(self, name) for name in self.FIELDS}
        data["verdict"] = self.verdict.value if self.verdict else None
        return data

    def to_result(self, record):
        """Fills the record's console fields; the caller still calls
        record.finish(outcome.verdict, outcome.message)."""
        for name, value in self.as_dict().items():
            if name not in ("verdict", "message"):
                record[name] = value
        return record

    def __repr__(self):
        return f"Outcome({self.verdict}, {self.message!r}, failed_at={self.failed_at!r})"


# What each kind of fatal line means: the verdict, and whether the kernel's
# debugger may still come (its prompt is then awaited to run the script).
FATAL_KINDS = {
    "panic": (Verdict.PANIC, True),
    "fatal-trap": (Verdict.PANIC, True),
    "failsafe": (Verdict.PANIC, True),
    "debugger": (Verdict.DEBUGGER, True),
    "domain-crash": (Verdict.CRASH, False),
    "failure": (Verdict.MILESTONE_MISSING, False),
}

# Where a line comes from: the guest's console (its PV console ring) or Xen's
# console (its console_io writes, `(dN) text`). A spec pattern watches one or both.
BOTH = "both"
SOURCES = (CONSOLE, XEN, BOTH)

MATCHING, FATAL_WAIT, SESSION, DONE = "matching", "fatal-wait", "session", "done"
_MILESTONE, _FATAL, _NOTE, _PROMPT = "milestone", "fatal", "note", "prompt"


class _Session:
    """A debugger session in progress: which script, typed how far, for whom."""

    def __init__(self, script, milestone):
        self.script = script
        self.milestone = milestone      # the milestone that expected it; None after a fatal line
        self.asked_at = None            # when the debugger was last expected to answer
        self.deadline = None
        self.typed = 0
        self.command = None             # the command whose reply is coming
        self.reply = []
        self.reply_len = 0
        self.nudged = False             # the reply coming needed the [debugger] nudge

    def wait(self, t, budget):
        self.asked_at, self.deadline = t, _after(t, budget)

    def add_reply(self, text):
        if self.command is None or not text or self.reply_len >= REPLY_CAP:
            return
        self.reply.append(text[:REPLY_CAP - self.reply_len])
        self.reply_len += len(text)
        if self.reply_len >= REPLY_CAP:
            self.reply.append("\n[reply cut; console.log has all of it]")

    def take_reply(self):
        entry = {"command": self.command, "reply": "".join(self.reply).rstrip("\n")}
        if self.nudged:
            entry["nudged"] = True
        self.command, self.reply, self.reply_len, self.nudged = None, [], 0, False
        return entry


class Judge:
    """The spec as a state machine over console text, domain ends and clock ticks.

    Times are seconds since unpause, or None when judging a log without
    timestamps (then nothing has a deadline). What the judge wants typed
    collects in `sends` and what it matched in `events` (console.jsonl
    records); the driver drains both. Offline the sends are dropped: the log
    already holds the debugger's echo of what was typed live.
    """

    def __init__(self, spec, start=0.0):
        self.spec = spec
        self.outcome = Outcome()
        self.state = MATCHING
        self.index = 0
        self.since = start
        self.last_output = start
        # The last line received, unfinished or not (a HANG names it: a
        # prompt, or where the kernel stopped mid-line), and the last
        # complete one (a TIMEOUT names it: output kept coming, so an
        # unfinished line is only where the chunking happened to cut it).
        self.last_line = self.last_complete_line = ""
        self.sends = []
        self.events = []
        self._session = None
        self._fatal_at = 0.0
        self._fatal_script = None
        self._nudged_at = None          # when the nudge was typed in this wait for a prompt
        # What the unfinished last line has already been acted on as: it
        # grows chunk by chunk, and each sight of it must not act again.
        self._prompt_handled = False
        self._pager_answered = False
        # The milestone or fatal record a partial pattern made of the
        # unfinished line: it keeps that line as it grows, so what it
        # records does not depend on how the line was chunked.
        self._growing = None
        self._prompt_text = spec.debugger.prompt.rstrip()
        self._prompt_entry = (Pattern("^" + re.escape(spec.debugger.prompt)), (_PROMPT, None))
        # The debugger prompt is the guest console's; nothing else on Xen's.
        # A milestone marked note is noted also when it comes out of turn.
        self._fatal_entries = {
            source: [(f.pattern, (_FATAL, f)) for f in spec.fatal if _watches(f, source)]
            + [(n.pattern, (_NOTE, n)) for n in spec.notes if _watches(n, source)]
            + [(m.pattern, (_NOTE, m)) for m in spec.milestones if m.note and _watches(m, source)]
            + ([self._prompt_entry] if source == CONSOLE else [])
            for source in (CONSOLE, XEN)}
        self._entries_by_index = {}
        self._source = CONSOLE

    @property
    def done(self):
        return self.state is DONE

    # -- what drives it ----------------------------------------------------

    def feed(self, block, tail, t, source=CONSOLE):
        """Judges cleaned text received at time t (Scanner.feed's output)
        from `source` (CONSOLE, or XEN: whole lines, no tail). Returns how
        much of `block` it used: all unless it finished inside."""
        if t is not None:
            self.last_output = t
        if line := _last_line(block):
            self.last_line = self.last_complete_line = line
        self._source = source
        if source != CONSOLE:
            pos, search = 0, BlockSearch(block)
            while pos < len(block) and not self.done and self.state is not SESSION:
                pos = self._step(search, pos, 0, t)
            self._source = CONSOLE
            return len(block) if self.state is SESSION else pos
        skip_prompt = 0
        if block:
            self._pager_answered = False
        if self._prompt_handled and block:
            # The first line began with a prompt already handled as the tail.
            skip_prompt = _line_end(block, 0) + 1
            self._prompt_handled = False
            self._grow(block[:skip_prompt - 1])
            self._growing = None
        pos, search = 0, BlockSearch(block)
        while pos < len(block) and not self.done:
            pos = self._step(search, pos, skip_prompt, t)
        if tail is not None and not self.done:
            if tail.strip():
                self.last_line = tail
            self._tail(tail, t)
        return pos

    def tick(self, t):
        """Acts on the deadline if it has passed at time t."""
        deadline = self.next_deadline()
        if deadline is None or t < deadline:
            return
        if self.state is MATCHING:
            self._matching_deadline(t)
        elif self.state is FATAL_WAIT:
            if self._may_nudge() and t < self._fatal_at + self.spec.debugger.prompt_budget:
                self._nudge(t)
            else:
                self._finish(None, None, t)
        elif self._may_nudge() and t < self._session.deadline:
            self._nudge(t)
        else:
            self._session_deadline(t)

    def end(self, reason, t):
        """The domain ended (poweroff, reboot, crash, destroyed, unknown) or,
        offline, the log did ("alive": the recording stopped while it ran)."""
        if self.done:
            return
        self.outcome.end_reason = reason
        if self.state is SESSION:
            self._keep_unfinished_reply()
        if self.state is FATAL_WAIT or (self.state is SESSION and self._session.milestone is None):
            return self._finish(None, None, t)
        if self.state is SESSION:
            name = f"{self._session.milestone}:debugger"
        else:
            waiting = self._required()
            if waiting is None:
                return self._finish(Verdict.PASS, self._pass_message(), t)
            if reason in waiting.end or (reason == "alive" and waiting.alive):
                return self._reach(waiting, t, f"domain end: {reason}")
            name = waiting.name
        if reason == "crash":
            self._finish(Verdict.CRASH, crashed_message(name), t, failed_at=name)
        elif reason == "alive":
            self._finish(Verdict.MILESTONE_MISSING, f"the recording ends while waiting for"
                         f" '{name}'", t, failed_at=name)
        else:
            self._finish(Verdict.MILESTONE_MISSING, f"the domain ended ({reason}) before '{name}'",
                         t, failed_at=name)

    def abort(self, verdict, message, t):
        """Ends judging for a reason outside the guest (INFRA); a verdict a
        fatal line already set stands."""
        self._finish(verdict, message, t)

    def next_deadline(self):
        """When tick() must next be called (seconds since unpause), or None."""
        if self.state is MATCHING:
            waiting = self._required()
            if waiting is None or waiting.alive:
                return self._budget_end()
            return min(self._budget_end(), self.last_output + waiting.hang_budget(self.spec))
        if self.state is FATAL_WAIT:
            return min(self._fatal_at + self.spec.debugger.prompt_budget, self._quiet_end(self._fatal_at))
        if self.state is SESSION:
            deadline = self._session.deadline
            if deadline is None or not self._may_nudge():
                return deadline
            return min(deadline, self._quiet_end(self._session.asked_at))
        return None

    def _quiet_end(self, waiting_since):
        """When the wait for a prompt has been quiet for [debugger] quiet."""
        return max(self.last_output, waiting_since, self._nudged_at or 0.0) + self.spec.debugger.quiet

    def _may_nudge(self):
        return bool(self.spec.debugger.nudge) and self._nudged_at is None

    def _await_prompt(self, t, budget):
        self._session.wait(t, budget)
        self._nudged_at = None

    def _nudge(self, t):
        """Types the [debugger] nudge once per wait: a console that holds the
        rest of a reply (and the prompt) until input arrives lets it out."""
        self._nudged_at = t
        if self._session is not None:
            self._session.nudged = True
        self.sends.append(self.spec.debugger.nudge)
        self._event(t, f"nudge: no prompt after {self.spec.debugger.quiet:g} s of quiet", nudge=True)

    # -- milestones --------------------------------------------------------

    def _candidates(self):
        """The milestones that may come next: the current one and, past
        optional ones, up to and including the first required one."""
        milestones = self.spec.milestones
        for k in range(self.index, len(milestones)):
            yield milestones[k]
            if not milestones[k].optional:
                return

    def _required(self):
        return next((m for m in self._candidates() if not m.optional), None)

    def _budget_end(self):
        return self.since + sum(m.budget for m in self._candidates())

    def _entries(self):
        """What lines are matched against: milestones first, so that what a
        milestone expects never counts as fatal."""
        key = (self.index, self._source)
        entries = self._entries_by_index.get(key)
        if entries is None:
            entries = [(m.pattern, (_MILESTONE, m)) for m in self._candidates()
                       if m.pattern and _watches(m, self._source)]
            entries += self._fatal_entries[self._source]
            self._entries_by_index[key] = entries
        return entries

    def _matching_deadline(self, t):
        waiting = self._required()
        if waiting is None:
            return self._finish(Verdict.PASS, self._pass_message(), t)
        if waiting.alive and t >= self._budget_end():
            return self._reach(waiting, t, "domain alive")
        hang = waiting.hang_budget(self.spec)
        if t - self.last_output >= hang:
            self._finish(Verdict.HANG, f"no output for {hang:g} s while waiting for"
                         f" '{waiting.name}' (last line: {self.last_line!r})", t,
                         failed_at=waiting.name)
        else:
            self._finish(Verdict.TIMEOUT, f"'{waiting.name}' did not come within its budget"
                         f" while output kept coming (last line: {self.last_complete_line!r})", t,
                         failed_at=waiting.name)

    def _reach(self, milestone, t, line):
        self.outcome.milestones.append({"name": milestone.name, "seconds": _seconds(t), "line": line,
                                        **self._from_xen()})
        self._event(t, line, milestone=milestone.name)
        self.index = self.spec.milestones.index(milestone) + 1
        if t is not None:
            self.since = t
        if milestone.script:
            self.state = SESSION
            self._session = _Session(self.spec.scripts[milestone.script], milestone.name)
            self._await_prompt(t, self.spec.debugger.prompt_budget)
        elif self.index == len(self.spec.milestones):
            self._finish(Verdict.PASS, self._pass_message(), t)

    def _pass_message(self):
        reached = [m["name"] for m in self.outcome.milestones]
        return f"reached {len(reached)} milestone(s): {', '.join(reached)}"

    # -- lines and the unfinished line --------------------------------------

    def _step(self, search, pos, skip_prompt, t):
        if self.state is SESSION:
            return self._session_lines(search, pos, skip_prompt, t)
        entries = self._entries() if self.state is MATCHING else self._fatal_entries[self._source]
        hit = search.earliest(entries, pos)
        if hit and hit[0][0] is _PROMPT and hit[1] < skip_prompt:
            hit = search.earliest(entries, skip_prompt)
        if hit is None:
            return len(search.block)
        (role, item), start, end, match = hit
        line = search.block[_line_start(search.block, 0, start):end]
        if role is _MILESTONE:
            if item.note:
                self._note(item, line, t, match)
            self._reach(item, t, line)
            # A milestone consumes only what it matched: the rest of the line
            # may still be fatal ("[ 1.8] Kernel panic" after first output).
            return match.end() if match.end() > start else end + 1
        if role is _FATAL:
            self._fatal(item.kind, line, t, item.script)
        elif role is _NOTE:
            self._note(item, line, t, match)
        else:
            self._prompt(t)
        return end + 1

    def _tail(self, tail, t):
        debugger = self.spec.debugger
        if self._prompt_handled:
            return self._grow(tail)
        if tail == debugger.prompt:
            self._prompt_handled = True
            self._prompt(t)
        elif self.state is SESSION and tail.startswith(debugger.pager) and not self._pager_answered:
            self._pager_answered = True
            self._event(t, debugger.pager, pager=True)
            self.sends.append(debugger.pager_answer)
        elif self.state is MATCHING:
            for m in self._candidates():
                if m.partial and _watches(m, CONSOLE) and m.pattern.regex.search(tail):
                    self._prompt_handled = True
                    self._reach(m, t, tail)
                    self._growing = self.outcome.milestones[-1]
                    return
            for f in self.spec.fatal:
                if f.partial and _watches(f, CONSOLE) and f.pattern.regex.search(tail):
                    self._prompt_handled = True
                    self._fatal(f.kind, tail, t, f.script)
                    self._growing = self.outcome.fatal[-1]
                    return

    def _grow(self, line):
        if self._growing is not None:
            self._growing["line"] = line

    def _note(self, note, line, t, match):
        """A line worth reporting (a [[note]], or a milestone marked note),
        with what its pattern's named groups caught. A line both sources
        carry (the console and Xen's copy of it) is one note."""
        if any(n["name"] == note.name and n["line"] == line for n in self.outcome.notes):
            return
        if len(self.outcome.notes) < NOTES_CAP:
            fields = {k: v for k, v in match.groupdict().items() if v is not None}
            self.outcome.notes.append({"name": note.name, "seconds": _seconds(t), "line": line}
                                      | ({"fields": fields} if fields else {}))
            self._event(t, line, note=note.name)

    # -- fatal lines and the debugger ----------------------------------------

    def _fatal(self, kind, line, t, script):
        """The first fatal line sets the verdict; later ones (the panic after a
        fatal trap, the KDB entry after a panic) only add to the report. A
        line both sources carry (the console and Xen's copy of it) is one
        entry, whichever came first."""
        if any(f["kind"] == kind and f["line"] == line for f in self.outcome.fatal):
            return
        self.outcome.fatal.append({"kind": kind, "seconds": _seconds(t), "line": line,
                                   **self._from_xen()})
        self._event(t, line, fatal=kind)
        if self.state is not MATCHING:
            return
        verdict, awaits_debugger = FATAL_KINDS[kind]
        self.outcome.verdict, self.outcome.message = verdict, line
        waiting = self._required()
        self.outcome.failed_at = waiting.name if waiting else None
        self._fatal_script = script or self.spec.debugger.on_fatal
        if awaits_debugger:
            self.state = FATAL_WAIT
            self._fatal_at = t if t is not None else 0.0
            self._nudged_at = None
        else:
            self._finish(None, None, t)

    def _prompt(self, t):
        """The debugger prompt: expected by a session, or itself a fatal sign."""
        if self.state is MATCHING:
            self._fatal("debugger", self._prompt_text, t, None)
        if self.state is FATAL_WAIT:
            if self._fatal_script is None:
                return self._finish(None, None, t)
            self.state = SESSION
            self._session = _Session(self.spec.scripts[self._fatal_script], None)
        self._session_prompt(t)

    def _session_lines(self, search, pos, skip_prompt, t):
        start = max(pos, skip_prompt)
        hit = search.earliest([self._prompt_entry], start)
        end = hit[1] if hit else len(search.block)
        self._session.add_reply(search.block[start:end])
        if hit is None:
            return end
        self._session_prompt(t)
        return hit[2] + 1

    def _session_prompt(self, t):
        session = self._session
        if session.command is not None:
            self.outcome.debugger.append(session.take_reply())
        commands = session.script.commands
        if session.typed < len(commands):
            session.command = commands[session.typed]
            session.typed += 1
            self._await_prompt(t, self.spec.debugger.reply_budget)
            self.sends.append(session.command + self.spec.newline)
            return
        then = session.script.then
        if then != "stop":
            debugger = self.spec.debugger
            self.sends.append((debugger.continue_ if then == "continue" else debugger.reset)
                              + self.spec.newline)
        if session.milestone is None:
            return self._finish(None, None, t)
        # Stopped or reset, the kernel goes no further: what the spec asked
        # of this boot is done.
        if then == "stop":
            return self._finish(Verdict.PASS, f"{self._pass_message()}; stopped in the"
                                f" debugger at '{session.milestone}' as the spec asks", t)
        if then == "reset":
            return self._finish(Verdict.PASS, f"{self._pass_message()}; reset from the"
                                f" debugger at '{session.milestone}' as the spec asks", t)
        if self.index == len(self.spec.milestones):
            return self._finish(Verdict.PASS, self._pass_message(), t)
        self.state = MATCHING
        self._session = None
        if t is not None:
            self.since = t

    def _keep_unfinished_reply(self):
        """What the command being answered printed before the session
        ended without its next prompt."""
        if self._session.command is not None:
            self.outcome.debugger.append(self._session.take_reply() | {"unfinished": True})

    def _session_deadline(self, t):
        session, debugger = self._session, self.spec.debugger
        if session.command:
            note = f"no debugger prompt after {session.command!r} within {debugger.reply_budget:g} s"
        else:
            note = f"no debugger prompt within {debugger.prompt_budget:g} s"
        self._keep_unfinished_reply()
        if session.milestone is None:
            self.outcome.message = f"{self.outcome.message} ({note})"
            return self._finish(None, None, t)
        silent = self.last_output <= session.asked_at
        self._finish(Verdict.HANG if silent else Verdict.TIMEOUT,
                     f"{note} (last line: {self.last_line if silent else self.last_complete_line!r})", t,
                     failed_at=f"{session.milestone}:debugger")

    # -- the end -------------------------------------------------------------

    def _from_xen(self):
        """Marks what Xen's console showed; the guest console is the usual case."""
        return {"source": XEN} if self._source == XEN else {}

    def _event(self, t, text, **what):
        self.events.append(consolelog.judged(t, text, source=self._source, **what))

    def _finish(self, verdict, message, t, failed_at=None):
        """Ends judging; a verdict a fatal line set stands."""
        outcome = self.outcome
        if outcome.verdict is None:
            outcome.verdict, outcome.message, outcome.failed_at = verdict, message, failed_at
        if outcome.verdict is not Verdict.PASS and outcome.notes:
            outcome.message += " (noted: " + "; ".join(n["line"] for n in outcome.notes[:3]) + ")"
        self.state = DONE
        self._event(t, f"verdict {outcome.verdict.value}: {outcome.message}",
                    verdict=outcome.verdict.value)


def _watches(entry, source):
    return entry.source in (source, BOTH)


def _last_line(block):
    end = len(block)
    while end and block[end - 1] == "\n":
        end -= 1
    return block[block.rfind("\n", 0, end) + 1:end]


def _seconds(t):
    return None if t is None else round(t, 3)


def _after(t, budget):
    return None if t is None else t + budget
