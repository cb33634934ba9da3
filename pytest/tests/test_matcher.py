"""The matcher: console text cleaning, line matching in bounded blocks, and the
Judge's verdicts, driven with virtual time (no clocks, no sleeps)."""
import textwrap

import pytest

from xenboot.judge import matcher
from xenboot.pipeline import bench_matcher
from xenboot.core.errors import Verdict
from xenboot.judge.matcher import BlockSearch, Judge, Pattern, Scanner
from xenboot.core.text import clean
from xenboot.judge.spec import load_spec


def make_spec(tmp_path, text):
    path = tmp_path / "spec.toml"
    path.write_text(textwrap.dedent(text))
    return load_spec(str(path))


class Drive:
    """Feeds a Judge as the live driver does, with made-up times."""

    def __init__(self, spec):
        self.judge = Judge(spec)
        self.scanner = Scanner()
        self.sent = []

    def data(self, t, data):
        if t is not None:
            self.tick(t)
        block, tail = self.scanner.feed(data)
        self.judge.feed(block, None, t)
        if tail is not None and not self.judge.done:
            self.judge.feed("", tail, t)
        self.sent += self.judge.sends
        self.judge.sends.clear()
        return self

    def tick(self, t):
        while not self.judge.done and self.judge.next_deadline() is not None \
                and self.judge.next_deadline() <= t:
            self.judge.tick(self.judge.next_deadline())
        self.sent += self.judge.sends
        self.judge.sends.clear()
        return self

    @property
    def outcome(self):
        return self.judge.outcome


# -- cleaning ----------------------------------------------------------------

@pytest.mark.parametrize("raw, shown", [
    (b"plain\n", "plain\n"),
    (b"crlf\r\n", "crlf\n"),
    (b"\x1b[1mbold\x1b[0m and \x1b[31;1mred\x1b[m\r\n", "bold and red\n"),
    (b"\x1b]0;title\x07text\n", "text\n"),
    (b"bell\x07 and nul\x00 and del\x7f\n", "bell and nul and del\n"),
    (b"--More--\r        \rnext line\r\n", "next line\n"),
    (b"|\r/\r-\rDone\n", "Done\n"),
    (b"tab\tkept\n", "tab\tkept\n"),
    (b"caf\xc3\xa9 \xff\n", "caf\u00e9 \ufffd\n"),
])
def test_clean_shows_what_a_terminal_shows(raw, shown):
    assert clean(raw) == shown


def test_scanner_joins_partial_lines_and_split_sequences():
    scanner = Scanner()
    assert scanner.feed(b"KDB: debugger back") == ("", "KDB: debugger back")
    assert scanner.feed(b"ends: ddb gdb\r") == ("", "KDB: debugger backends: ddb gdb")
    assert scanner.feed(b"\n\x1b[1") == ("KDB: debugger backends: ddb gdb\n", "[1")
    assert scanner.feed(b"mCopyright\x1b[0m\r\ncaf\xc3") == ("Copyright\n", "caf\ufffd")
    assert scanner.feed(b"\xa9\n") == ("caf\u00e9\n", None)


def test_scanner_tail_only_while_short_and_new():
    scanner = Scanner()
    assert scanner.feed(b"db> ") == ("", "db> ")
    assert scanner.feed(b"x" * matcher.PROMPT_MAX) == ("", None)
    assert scanner.feed(b"\nline\n") == ("db> " + "x" * matcher.PROMPT_MAX + "\nline\n", None)


def test_scanner_cuts_an_endless_line():
    scanner = Scanner()
    blocks = [scanner.feed(b"y" * 1000)[0] for _ in range(2 * matcher.MAX_LINE // 1000)]
    cut = [b for b in blocks if b]
    assert cut and all(len(b) <= matcher.MAX_LINE + 1001 for b in cut)
    assert scanner._partial_len <= matcher.MAX_LINE


# -- patterns and blocks ---------------------------------------------------------

def test_required_literal_lets_find_skip_lines():
    assert Pattern(r"^panic: (?P<m>.*)").literal == "panic: "
    assert Pattern(r"^Copyright \(c\) 1992-\d{4} The FreeBSD Project\.").literal == " The FreeBSD Project."
    assert Pattern(r"(?i)panic").literal == ""
    assert Pattern(r"a|bcd").literal == ""


def test_first_hit_is_per_line_and_anchors_at_line_starts():
    block = "xx panic: no\npanic: yes\npanic: again\n"
    start, end, m = Pattern(r"^panic: (?P<m>.*)").first_hit(block, 0)
    assert block[start:end] == "panic: yes" and m["m"] == "yes"
    assert Pattern(r"^panic: (?P<m>.*)").first_hit(block, end + 1)[2]["m"] == "again"
    assert Pattern(r"\S").first_hit("\n\n  x\n", 0)[:2] == (2, 5)


def test_block_search_earliest_line_wins_and_ties_go_to_the_first_entry():
    block = "one\nboth\ntwo\n"
    a, b = Pattern("both|one"), Pattern("both|two")
    search = BlockSearch(block)
    assert search.earliest([(b, "b"), (a, "a")], 0)[0] == "a"
    assert search.earliest([(b, "b"), (a, "a")], 4)[0] == "b"
    assert search.earliest([(a, "a"), (b, "b")], 4)[0] == "a"
    assert search.earliest([(a, "a")], 9) is None


def test_block_search_never_searches_a_part_twice(monkeypatch):
    calls = []
    first_hit = Pattern.first_hit
    monkeypatch.setattr(Pattern, "first_hit", lambda self, text, pos: (
        calls.append(pos), first_hit(self, text, pos))[1])
    patterns = [(Pattern(p), p) for p in ("^alpha", "^beta", "^gamma")]
    search = BlockSearch("x\n" * 10000 + "gamma\n" + "x\n" * 10000)
    pos = search.earliest(patterns, 0)[2] + 1
    assert search.earliest(patterns, pos) is None
    # one search per pattern for the first call; the second call only
    # re-searches the pattern whose hit it has passed.
    assert len(calls) == 4


# -- the judge -----------------------------------------------------------------

TWO_STEPS = """
    hang = 10
    [[milestone]]
    name = "first"
    pattern = '^first'
    budget = 30
    [[milestone]]
    name = "second"
    pattern = '^second'
    budget = 30
    [[fatal]]
    kind = "panic"
    pattern = '^panic: (?P<m>.*)'
"""


def test_chatter_does_not_reset_a_stage_deadline(tmp_path):
    drive = Drive(make_spec(tmp_path, TWO_STEPS)).data(1, b"first\n")
    for t in range(2, 40):
        drive.data(t, b"chatter\n")
    assert drive.outcome.verdict is Verdict.TIMEOUT
    assert drive.outcome.failed_at == "second"
    assert "chatter" in drive.outcome.message


def test_a_timeout_names_the_last_complete_line_a_hang_the_unfinished_one(tmp_path):
    drive = Drive(make_spec(tmp_path, TWO_STEPS)).data(1, b"first\n")
    for t in range(5, 31, 5):
        drive.data(t, b"chatter line\n")
    # A driver that reads late: half a line arrives after the budget ran
    # out and before the deadline is acted on. Output kept coming, so the
    # half is only where the read happened to cut it.
    block, tail = drive.scanner.feed(b"chat")
    drive.judge.feed(block, None, 32)
    drive.judge.feed("", tail, 32)
    drive.judge.tick(32)
    assert drive.outcome.verdict is Verdict.TIMEOUT
    assert drive.outcome.message.endswith("(last line: 'chatter line')")
    # Silence after half a line: where the guest stopped is the news.
    drive = Drive(make_spec(tmp_path, TWO_STEPS)).data(1, b"first\n").data(2, b"Enter full pathname: ")
    drive.tick(13)
    assert drive.outcome.verdict is Verdict.HANG
    assert drive.outcome.message.endswith("(last line: 'Enter full pathname: ')")


def test_silence_is_a_hang_before_the_budget_runs_out(tmp_path):
    drive = Drive(make_spec(tmp_path, TWO_STEPS)).data(1, b"first\nsome\n").data(3, b"more\n")
    drive.tick(12.9)
    assert not drive.judge.done
    drive.tick(13)
    assert drive.outcome.verdict is Verdict.HANG and drive.outcome.failed_at == "second"


def test_milestones_are_recorded_with_time_and_line(tmp_path):
    drive = Drive(make_spec(tmp_path, TWO_STEPS)).data(1.5, b"\x1b[1mfirst\x1b[0m line\r\n").data(2, b"second\r\n")
    assert drive.outcome.verdict is Verdict.PASS
    assert drive.outcome.milestones == [{"name": "first", "seconds": 1.5, "line": "first line"},
                                        {"name": "second", "seconds": 2, "line": "second"}]


A_OPTIONAL_THEN_B = """
    hang = 100
    [[milestone]]
    name = "a"
    pattern = '^a$'
    optional = true
    budget = 5
    [[milestone]]
    name = "b"
    pattern = '^b$'
    budget = 5
"""


def test_optional_milestones_may_be_skipped_but_not_reordered(tmp_path):
    spec = make_spec(tmp_path, A_OPTIONAL_THEN_B + """
    [[milestone]]
    name = "c"
    pattern = '^c$'
    budget = 5
    """)
    assert [m["name"] for m in Drive(spec).data(1, b"b\nc\n").outcome.milestones] == ["b", "c"]
    late = Drive(spec).data(1, b"b\na\n").tick(100).outcome
    assert late.verdict is Verdict.TIMEOUT and late.failed_at == "c"


def test_budgets_of_skipped_optional_milestones_add_up(tmp_path):
    drive = Drive(make_spec(tmp_path, A_OPTIONAL_THEN_B)).data(9, b"noise\n")
    assert not drive.judge.done
    assert drive.tick(10).outcome.verdict is Verdict.TIMEOUT


def test_a_milestone_line_is_never_also_fatal(tmp_path):
    spec = make_spec(tmp_path, """
        [[milestone]]
        name = "expected-panic"
        pattern = '^panic: on purpose'
        budget = 5
        [[fatal]]
        kind = "panic"
        pattern = '^panic: '
    """)
    assert Drive(spec).data(1, b"panic: on purpose\n").outcome.verdict is Verdict.PASS


def test_first_fatal_line_sets_the_verdict_later_ones_are_reported(tmp_path):
    spec = load_spec("freebsd-xen-pv")
    drive = Drive(spec).data(1, b"KDB: debugger backends: ddb\nKDB: current backend: ddb\n"
                                b"Fatal trap 12: page fault while in kernel mode\ncpuid = 0\n"
                                b"panic: page fault\nKDB: enter: panic\n")
    drive.tick(100)
    outcome = drive.outcome
    assert outcome.verdict is Verdict.PANIC
    assert outcome.message == "Fatal trap 12: page fault while in kernel mode"
    assert [f["kind"] for f in outcome.fatal] == ["fatal-trap", "panic", "debugger"]
    assert outcome.failed_at == "banner"


def test_panic_inside_a_verbose_sysinit_line_is_seen():
    drive = Drive(load_spec("freebsd-xen-pv")).data(1, b"   vm_mem_init(0)... panic: no memory\n")
    assert drive.outcome.fatal[0]["line"] == "   vm_mem_init(0)... panic: no memory"


def test_fatal_wait_ends_when_the_console_goes_quiet(tmp_path):
    drive = Drive(make_spec(tmp_path, TWO_STEPS + "[debugger]\nquiet = 2\n")).data(1, b"panic: x\n")
    assert drive.judge.state == "fatal-wait"
    drive.tick(3)
    assert drive.judge.done and drive.outcome.verdict is Verdict.PANIC


def test_debugger_session_from_a_log_without_live_prompts():
    """Offline the prompt and the typed command are one line ("db> bt")."""
    drive = Drive(load_spec("freebsd-xen-pv-kdb-stop"))
    drive.data(None, b"KDB: debugger backends: ddb gdb\r\nKDB: current backend: ddb\r\n"
                     b"KDB: enter: Boot flags requested debugger\r\n[ thread pid 0 tid 0 ]\r\n"
                     b"db> set $lines = 0\r\ndb> bt\r\nTracing pid 0\r\nkdb_enter() at kdb_enter+0x3e\r\n"
                     b"db> show registers\r\nrip 0x1\r\n--More--\r        \rrflags 0x82\r\n"
                     b"db> ps\r\n  pid\r\ndb> ")
    outcome = drive.outcome
    assert outcome.verdict is Verdict.PASS
    assert outcome.debugger == [
        {"command": "set $lines = 0", "reply": ""},
        {"command": "bt", "reply": "Tracing pid 0\nkdb_enter() at kdb_enter+0x3e"},
        {"command": "show registers", "reply": "rip 0x1\nrflags 0x82"},
        {"command": "ps", "reply": "  pid"}]


def test_live_session_types_the_script_and_answers_the_pager():
    drive = Drive(load_spec("freebsd-xen-pv-boot-d"))
    drive.data(0, b"KDB: debugger backends: ddb gdb\r\nKDB: current backend: ddb\r\n"
                  b"KDB: enter: Boot flags requested debugger\r\ndb> ")
    assert drive.sent == ["set $lines = 0\r"]
    drive.data(0.1, b"set $lines = 0\r\ndb> ").data(0.2, b"bt\r\nline 1\r\n--More--\r")
    assert drive.sent[-2:] == ["bt\r", " "]
    drive.data(0.3, b"        \rline 2\r\ndb> ").data(0.4, b"show registers\r\nrip\r\ndb> ")
    drive.data(0.5, b"ps\r\npid\r\ndb> ")
    assert drive.sent[-2:] == ["ps\r", "c\r"]
    assert drive.judge.state == "matching"
    assert drive.outcome.debugger[1] == {"command": "bt", "reply": "line 1\nline 2"}
    # The echo of `c` completes the prompt line; it is no new debugger entry.
    drive.data(0.6, b"c\r\nCopyright (c) 1992-2013 The FreeBSD Project.\r\n")
    assert drive.outcome.verdict is None and drive.outcome.milestones[-1]["name"] == "banner"


BOOT_D_ENTRY = (b"KDB: debugger backends: ddb\r\nKDB: current backend: ddb\r\n"
                b"KDB: enter: Boot flags requested debugger\r\ndb> ")


def test_reset_after_the_session_ends_the_boot_as_the_spec_asks(tmp_path):
    path = tmp_path / "reset.toml"
    path.write_text('include = "freebsd-xen-pv-boot-d"\n[scripts.kdb]\ncommands = ["bt"]\nthen = "reset"\n')
    drive = Drive(load_spec(str(path))).data(0, BOOT_D_ENTRY).data(0.1, b"bt\r\nTracing pid 0\r\ndb> ")
    assert drive.sent == ["bt\r", "reset\r"]
    assert drive.outcome.verdict is Verdict.PASS and drive.judge.done
    assert drive.outcome.message.endswith("; reset from the debugger at 'kdb' as the spec asks")
    assert drive.outcome.debugger == [{"command": "bt", "reply": "Tracing pid 0"}]


def test_a_reply_without_its_prompt_is_kept_unfinished():
    drive = Drive(load_spec("freebsd-xen-pv-boot-d")).data(0, BOOT_D_ENTRY)
    drive.data(0.1, b"set $lines = 0\r\ndb> ").data(0.2, b"bt\r\nTracing pid 0\r\nkdb_enter() at")
    drive.tick(100)
    assert drive.outcome.verdict is Verdict.TIMEOUT and drive.outcome.failed_at == "kdb:debugger"
    assert drive.outcome.debugger[-1] == {"command": "bt", "reply": "Tracing pid 0", "unfinished": True,
                                          "nudged": True}


def test_a_held_reply_gets_the_nudge_once_and_goes_on():
    """FreeBSD 10's Xen console keeps the end of a long reply and the prompt
    until a key arrives: after [debugger] quiet the judge types the nudge."""
    drive = Drive(load_spec("freebsd-xen-pv-boot-d")).data(0, BOOT_D_ENTRY)
    drive.data(0.1, b"set $lines = 0\r\ndb> ").data(0.2, b"bt\r\nTracing pid 0\r\n")
    drive.tick(5.1)
    assert drive.sent == ["set $lines = 0\r", "bt\r"] and drive.outcome.verdict is None
    drive.tick(5.3)
    assert drive.sent[-1] == "\x07" and drive.outcome.verdict is None
    drive.data(5.4, b"kdb_enter() at kdb_enter+0x3e\r\ndb> ")
    assert drive.outcome.debugger[-1] == {"command": "bt", "reply": "Tracing pid 0\nkdb_enter() at kdb_enter+0x3e",
                                          "nudged": True}
    assert drive.sent[-1] == "show registers\r"
    # A new command, a new wait: the nudge may be typed again.
    drive.tick(10.5)
    assert drive.sent[-1] == "\x07" and drive.sent.count("\x07") == 2


def test_a_panic_whose_prompt_is_held_gets_the_nudge_then_its_session():
    drive = Drive(load_spec("freebsd-xen-pv-i386")).data(0, b"panic: no init\r\n")
    drive.tick(6)
    assert drive.sent == ["\x07"] and drive.judge.state == "fatal-wait"
    drive.data(6.5, b"KDB: enter: panic\r\ndb> ")
    assert drive.sent[-1] == "set $lines = 0\r"


def test_without_a_nudge_in_the_spec_a_quiet_panic_ends_the_wait(tmp_path):
    path = tmp_path / "no-nudge.toml"
    path.write_text('include = "freebsd-xen-pv-i386"\n[debugger]\nnudge = ""\n')
    drive = Drive(load_spec(str(path))).data(0, b"panic: no init\r\n")
    drive.tick(6)
    assert drive.sent == [] and drive.outcome.verdict is Verdict.PANIC


def test_a_domain_end_inside_the_session_keeps_the_reply():
    drive = Drive(load_spec("freebsd-xen-pv")).data(0, b"KDB: debugger backends: ddb\r\ndb> ")
    drive.data(0.1, b"set $lines = 0\r\nhalf a reply\r\n")
    drive.judge.end("crash", 0.2)
    assert drive.outcome.verdict is Verdict.DEBUGGER
    assert drive.outcome.debugger == [{"command": "set $lines = 0", "reply": "half a reply",
                                       "unfinished": True}]


def test_pager_on_the_xen_console_line_ends():
    """FreeBSD's Xen console ends lines "\\n\\r" (xcons_putc); ddb's pager
    writes "--More--\\r" and erases it with spaces and "\\r"."""
    drive = Drive(load_spec("freebsd-xen-pv-kdb-stop"))
    drive.data(0, BOOT_D_ENTRY.replace(b"\r\n", b"\n\r")).data(0.1, b"set $lines = 0\n\rdb> ")
    drive.data(0.2, b"bt\n\rline 1\n\r--More--\r")
    assert drive.sent[-2:] == ["bt\r", " "]
    drive.data(0.3, b"        \rline 2\n\rdb> ")
    assert drive.outcome.debugger[1] == {"command": "bt", "reply": "line 1\nline 2"}
    assert drive.sent[-1] == "show registers\r"


def test_unexpected_prompt_is_a_debugger_verdict():
    drive = Drive(load_spec("freebsd-xen-pv")).data(0, b"KDB: debugger backends: ddb\r\ndb> ")
    assert drive.outcome.verdict is Verdict.DEBUGGER
    assert drive.sent == ["set $lines = 0\r"]


def test_debugger_that_stops_answering_ends_the_session(tmp_path):
    drive = Drive(load_spec("freebsd-xen-pv-boot-d"))
    drive.data(0, b"KDB: debugger backends: ddb\r\nKDB: current backend: ddb\r\nKDB: enter: x\r\ndb> ")
    drive.tick(100)
    assert drive.outcome.verdict is Verdict.HANG
    assert drive.outcome.failed_at == "kdb:debugger"


@pytest.mark.parametrize("reason, verdict", [
    ("poweroff", Verdict.PASS), ("reboot", Verdict.PASS), ("crash", Verdict.CRASH),
    ("destroyed", Verdict.MILESTONE_MISSING)])
def test_domain_end_against_the_generic_spec(reason, verdict):
    drive = Drive(load_spec("generic")).data(1, b"hello\n")
    drive.judge.end(reason, 2)
    assert drive.outcome.verdict is verdict
    assert drive.outcome.end_reason == reason


def test_generic_passes_when_the_domain_stays_alive():
    drive = Drive(load_spec("generic")).data(1, b"hello")
    drive.tick(1000)
    assert drive.outcome.verdict is Verdict.PASS
    assert [m["name"] for m in drive.outcome.milestones] == ["first-output", "domain-end"]


def test_generic_catches_a_linux_panic():
    drive = Drive(load_spec("generic")).data(
        1, b"[    1.8] Kernel panic - not syncing: VFS: Unable to mount root fs\n")
    drive.tick(1000)
    assert drive.outcome.verdict is Verdict.PANIC


def test_end_before_a_required_milestone(tmp_path):
    drive = Drive(make_spec(tmp_path, TWO_STEPS)).data(1, b"first\n")
    drive.judge.end("poweroff", 2)
    assert drive.outcome.verdict is Verdict.MILESTONE_MISSING
    assert drive.outcome.failed_at == "second"


def test_probe_failure_names_the_failed_check():
    drive = Drive(load_spec("probe")).data(
        0, b"PROBE begin freebsd-xen-ci probe 1\nPROBE check timer fail no ticks\n"
           b"PROBE check evtchn-upcall ok\nPROBE result FAILURE\n")
    outcome = drive.outcome
    assert outcome.verdict is Verdict.MILESTONE_MISSING and outcome.failed_at == "result"
    assert "PROBE check timer fail no ticks" in outcome.message
    assert [n["name"] for n in outcome.notes] == ["check-failed"]


def test_partial_prompt_milestone():
    drive = Drive(load_spec("probe")).data(
        0, b"PROBE begin freebsd-xen-ci probe 1\nPROBE result SUCCESS\nprobe> ")
    assert drive.outcome.verdict is Verdict.PASS
    assert drive.outcome.milestones[-1] == {"name": "prompt", "seconds": 0, "line": "probe> "}


def test_benchmark_runs_and_reports(capsys):
    assert bench_matcher.main(["--sizes", "1", "2"]) == 0
    out = capsys.readouterr().out
    assert "MB/s" in out and "time ratio 2 MB / 1 MB" in out


def test_benchmark_check_fails_a_slow_or_nonlinear_matcher(monkeypatch, capsys):
    monkeypatch.setattr(bench_matcher, "TARGET_MB_S", 10 ** 9)   # beyond any machine
    assert bench_matcher.main(["--sizes", "1"]) == 0
    assert bench_matcher.main(["--sizes", "1", "--check"]) == 1
    assert "MISSES the target" in capsys.readouterr().out
    monkeypatch.setattr(bench_matcher, "TARGET_MB_S", 0)
    real = bench_matcher.judge_bytes

    def quadratic(spec, data):
        # A stand-in for a matcher whose cost grows with the square of the
        # log: the real judge's time plus such a term, in seconds.
        return real(spec, data) + (len(data) / bench_matcher.MB) ** 2
    monkeypatch.setattr(bench_matcher, "judge_bytes", quadratic)
    assert bench_matcher.main(["--sizes", "1", "2", "--check"]) == 1
    assert "MISSES the target" in capsys.readouterr().out
