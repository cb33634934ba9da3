"""console.jsonl: when each of a boot's console bytes came, what was typed
and what the judge made of it. One JSON object a line, in the order it
happened; every writer builds its records here and every reader reads them
here, so the schema has one owner.

Every record has `t` (seconds since unpause, 3 decimals; null in check-log's
judgements of a log without timing), `dir` and `text`:
- recv, source console: `n` bytes of console.log arrived (`text` is them,
  decoded for a reader; console.log holds the bytes);
- recv, source xen: one console_io line the guest wrote through Xen's own
  console (xen.log), which console.log never sees;
- send: what was typed at the guest;
- match: a judgement: a milestone, note or fatal line (its name under
  `milestone`, `note`, `fatal`), a `verdict`, an `expect` of a test, the
  domain's `end_reason`, the console.log `log_cap` reached, a debugger
  `nudge` or `pager` answer; `source` says which console it was read on.
"""
import json

from xenboot.core.errors import BadInput

RECV, SEND, MATCH = "recv", "send", "match"
CONSOLE, XEN = "console", "xen"
FILE = "console.jsonl"


def _at(t):
    return None if t is None else round(t, 3)


def console_bytes(t, data):
    return {"t": _at(t), "dir": RECV, "source": CONSOLE, "n": len(data),
            "text": data.decode("utf-8", "backslashreplace")}


def xen_line(t, text):
    return {"t": _at(t), "dir": RECV, "source": XEN, "text": text}


def typed(t, text):
    return {"t": _at(t), "dir": SEND, "text": text}


def judged(t, text, **what):
    return {"t": _at(t), "dir": MATCH, "text": text, **what}


def domain_end(t, reason):
    return judged(t, f"domain end: {reason}", end_reason=reason)


def encode(record):
    return json.dumps(record) + "\n"


def read(path):
    """The records of a console.jsonl, in order; BadInput naming the line
    that is not one."""
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    record = None
                if not isinstance(record, dict):
                    raise BadInput(f"{path}:{number}: not a {FILE} record (one JSON object a line)")
                yield record
    except OSError as e:
        raise BadInput(f"{path}: cannot read: {e.strerror}") from None


def time_of(record, before):
    """The record's time, or `before` for one without (none is written
    without one; a hand-edited file may have it)."""
    t = record.get("t")
    return t if isinstance(t, (int, float)) else before


def is_console(record):
    """Whether the record stands for bytes of console.log (its `n`)."""
    return record.get("dir") == RECV and record.get("source", CONSOLE) == CONSOLE and bool(record.get("n"))


def is_xen(record):
    return record.get("dir") == RECV and record.get("source") == XEN


def timing(path, max_sends):
    """The first and last receive times and the first `max_sends` things
    typed (time, text); Nones for a missing or unreadable file, and lines
    that are not records are passed over: a report of a killed run still
    shows what there is."""
    first = last = None
    sends = []
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except OSError:
        return {"first": None, "last": None, "sends": []}
    with f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or not isinstance(record.get("t"), (int, float)):
                continue
            if record.get("dir") == RECV:
                first = record["t"] if first is None else first
                last = record["t"]
            elif record.get("dir") == SEND and len(sends) < max_sends:
                sends.append((record["t"], record.get("text", "")))
    return {"first": first, "last": last, "sends": sends}
