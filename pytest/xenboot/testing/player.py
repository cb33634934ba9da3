"""Plays a console transcript on a pty, with its timing, answering debugger
commands from the transcript, so the live console driver can be exercised end
to end without a Xen host or a kernel that boots.

A transcript (pytest/tests/transcripts/*.txt) starts with a line that says
where it comes from:
  # SYNTHETIC ...   written by hand; never a FreeBSD result
  # REAL ...        a real boot's console, recorded (xenboot.testing.transcript makes
                    one from a run folder), followed by its provenance, one
                    "# key: value" line each: tree (repository @ commit),
                    version, local-change ("none" or what was changed),
                    kernel-sha256, xen (the Xen build), spec and verdict
                    (what the live run judged), and optionally target,
                    failed-at, cmdline
Either may give xenctx-frames ("f1+0x1 < f2+0x2", innermost first): the stack
diagnose() reports, as boot's xenctx diagnosis would. Other '#' lines and
blank lines are comments. Every other line is `TIME OP TEXT`: TIME is
seconds since unpause (left blank inside a debugger session, which stops the
clock as a stopped kernel does), OP one of:
  |  print TEXT and \\r\\n          >  print TEXT without a newline
  ~  print TEXT after expanding \\xNN, \\r, \\n, \\t, \\e, \\\\ escapes, no newline
  x  TEXT is a line of Xen's console about the domain, as xen.log keeps it
     (`(d1) [ 16.01] text`, `(XEN) [ 16.02] Domain 1 ... crashed`): played
     into the player's Xen log, which replay() follows as boot follows Xen's
  @  a directive:
       session PROMPT   print PROMPT and answer the commands below, echoing
                        what is typed, until one of them leaves
       leave            (in a reply) leave the session, the boot goes on
       more             (in a reply) ddb's pager: "--More--", wait for a key
       hold             wait for a key, not echoed, before going on: a console
                        that holds output until input arrives (FreeBSD 10's Xen
                        console in ddb; the spec's [debugger] nudge is that key)
       end REASON       the domain ends: poweroff, reboot or crash
       silence          print nothing more; the domain stays alive
       chatter SECONDS TEXT   print TEXT every SECONDS, forever
  =  (in a session) a command; the untimed lines after it are its reply.
     A command the transcript does not know gets "No such command".
The player is also the `domain` the driver polls: end_reason(),
console_complete() and diagnose().
replay() judges a transcript as boot judges a live console: both sources, and
Xen's reason quoted in the verdict.
"""
import argparse
import dataclasses
import fcntl
import os
import re
import select
import shlex
import shutil
import sys
import tempfile
import termios
import threading
import time
import tty

from xenboot.console import xenconsole
from xenboot.host import xenlog
from xenboot.console.console import ConsoleSession
from xenboot.core.errors import BadInput
from xenboot.judge.spec import load_spec

SYNTHETIC, REAL = "# SYNTHETIC", "# REAL"
REAL_KEYS = ("tree", "version", "local-change", "kernel-sha256", "xen", "spec", "verdict")
PROVENANCE_KEYS = REAL_KEYS + ("target", "failed-at", "cmdline", "xenctx-frames")
_PROVENANCE = re.compile(r"# (?P<key>[a-z0-9-]+): (?P<value>.*\S)")
END_REASONS = ("poweroff", "reboot", "crash")
_LINE = re.compile(r"(?P<time>\d+(?:\.\d+)?)?\s+(?P<op>[|>~@=x])(?: (?P<text>.*))?")
# Which domain a Xen line is about: `(d1)`, `d1v0`, `Domain 1`.
_DOMID = re.compile(r"^\(d(\d+)\)|\bd(\d+)v\d+\b|\bDomain (\d+)\b")
_ESCAPES = {"r": "\r", "n": "\n", "t": "\t", "e": "\x1b", "\\": "\\"}


@dataclasses.dataclass
class Step:
    time: float             # None inside a session's replies
    op: str                 # print, session, leave, more, end, silence, chatter
    text: str = ""
    seconds: float = 0.0
    commands: dict = dataclasses.field(default_factory=dict)


def provenance(path):
    """{"kind": "REAL" or "SYNTHETIC", key: value...} from the header; a
    REAL transcript must give every REAL_KEYS entry."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    kind = next((k for k in (SYNTHETIC, REAL) if lines[0].startswith(k + " ")), None)
    if kind is None:
        raise BadInput(f"{path}:1: a transcript starts with '{SYNTHETIC}' or '{REAL}' and says "
                       "where it comes from")
    found = {"kind": kind[2:]}
    for line in lines[1:]:
        if not line.startswith("#"):
            break
        m = _PROVENANCE.fullmatch(line)
        if m and m["key"] in PROVENANCE_KEYS:
            found[m["key"]] = m["value"]
    missing = [k for k in REAL_KEYS if k not in found] if kind == REAL else []
    if missing:
        raise BadInput(f"{path}: a REAL transcript gives its provenance; missing "
                       f"{', '.join('# ' + k + ': ...' for k in missing)}")
    if kind == REAL and not re.fullmatch(r"[0-9a-f]{64}", found["kernel-sha256"]):
        raise BadInput(f"{path}: kernel-sha256 {found['kernel-sha256']!r} is not a sha256 (64 hex digits)")
    return found


def parse(path):
    """The transcript's steps; BadInput names the line that is wrong."""
    provenance(path)
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    steps, reply = [], None
    for number, raw in enumerate(lines[1:], start=2):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        m = _LINE.fullmatch(raw)
        if m is None:
            raise BadInput(f"{where}: expected 'TIME OP TEXT' (OP one of | > ~ @ = x)")
        op, text = m["op"], m["text"] or ""
        timed = m["time"] is not None
        if timed:
            reply = None
            steps.append(_step(float(m["time"]), op, text, where))
            if steps[-1].op in ("leave", "more"):
                raise BadInput(f"{where}: '{steps[-1].op}' belongs in a reply (untimed)")
        elif op == "=":
            if not steps or steps[-1].op != "session":
                raise BadInput(f"{where}: a command (=) belongs after '@ session PROMPT'")
            reply = steps[-1].commands.setdefault(text, [])
        elif reply is None:
            raise BadInput(f"{where}: untimed lines are replies and follow a command (=)")
        else:
            reply.append(_step(None, op, text, where))
            if reply[-1].op == "session":
                raise BadInput(f"{where}: a session starts at a time, not inside a reply")
    return steps


def _step(when, op, text, where):
    if op == "=":
        raise BadInput(f"{where}: a command (=) has no time; it follows '@ session PROMPT'")
    if op == "|":
        return Step(when, "print", text + "\r\n")
    if op == ">":
        return Step(when, "print", text)
    if op == "~":
        return Step(when, "print", re.sub(r"\\(x[0-9a-fA-F]{2}|.)", _unescape, text))
    if op == "x":
        if when is None:
            raise BadInput(f"{where}: a Xen line (x) has a time")
        return Step(when, "xen", text + "\n")
    words = shlex.split(text)
    if not words:
        raise BadInput(f"{where}: empty directive")
    name, args = words[0], words[1:]
    shapes = {"session": 1, "leave": 0, "more": 0, "hold": 0, "end": 1, "silence": 0, "chatter": 2}
    if shapes.get(name) != len(args):
        raise BadInput(f"{where}: directive {text!r}: expected one of session PROMPT, leave,"
                       " more, hold, end REASON, silence, chatter SECONDS TEXT")
    if name == "end" and args[0] not in END_REASONS:
        raise BadInput(f"{where}: end {args[0]!r}: one of {', '.join(END_REASONS)}")
    if name == "chatter":
        return Step(when, name, args[1] + "\r\n", seconds=float(args[0]))
    return Step(when, name, args[0] if args else "")


def _unescape(m):
    code = m.group(1)
    return chr(int(code[1:], 16)) if code.startswith("x") else _ESCAPES.get(code, "\\" + code)


def _domid(steps):
    """The domain the transcript's Xen lines are about (1 when none says)."""
    for step in steps:
        m = step.op == "xen" and _DOMID.search(re.sub(r"^\(XEN\) (\[[^]]*\] )?", "", step.text))
        if m:
            return int(next(g for g in m.groups() if g))
    return 1


class _Stopped(Exception):
    """The test is done with the player."""


class Player:
    """Plays one transcript on a pty; `master` is the console end for the driver.

    speed > 1 plays faster (a test not about timing); use spec.scaled(1/speed)
    so the budgets shrink with it.

    `pieces(data)`, when given, cuts what the guest prints into the pieces
    the driver is to read one at a time: prints of one instant are joined
    into one burst, each piece is written only once the driver has read the
    last, and the player's `clock` stands still meanwhile, so a console cut
    byte by byte keeps the transcript's timing. Without it each print is
    one write, read in whatever chunks the pty gives."""

    def __init__(self, path, speed=1.0, pieces=None):
        self.path = path
        self.provenance = provenance(path)
        self.steps = parse(path) if pieces is None else _bursts(parse(path))
        self.speed = speed
        self.pieces = pieces
        self._stood = 0.0           # how long the clock has stood still
        self._stood_since = None
        self._clock_lock = threading.Lock()
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        # Xen's console for this domain, as the lab's serial log keeps it.
        self._xen_dir = tempfile.mkdtemp(prefix="xenboot-player-")
        self.xen_log = os.path.join(self._xen_dir, "host.log")
        self._xen = open(self.xen_log, "w", encoding="utf-8")
        self.domid = _domid(self.steps)
        self.typed = []             # commands and pager keys received, in order
        self._end_reason = None
        self._stop = threading.Event()
        self.played = threading.Event()   # all of the transcript that will play has
        self._thread = threading.Thread(target=self._run, name=f"player {os.path.basename(path)}",
                                        daemon=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for fd in (self._slave, self.master):
            if fd is not None:
                os.close(fd)
        self._slave = self.master = None
        self._xen.close()
        shutil.rmtree(self._xen_dir, ignore_errors=True)

    # -- the domain interface ----------------------------------------------------

    def end_reason(self):
        return self._end_reason

    def console_complete(self):
        """The transcript has been played to its end: nothing more comes."""
        return self.played.is_set()

    def diagnose(self, verdict):
        found = {"player": os.path.basename(self.path), "verdict": verdict.value}
        if "xenctx-frames" in self.provenance:
            found["frames"] = self.provenance["xenctx-frames"].split(" < ")
        return found

    def clock(self):
        """The player's monotonic time, which stands still while pieces are
        being handed over one by one."""
        with self._clock_lock:
            return (self._stood_since or time.monotonic()) - self._stood

    # -- playing -------------------------------------------------------------------

    def _run(self):
        try:
            base = self.clock()
            for step in self.steps:
                self._sleep_until(base + step.time / self.speed)
                if step.op in ("session", "hold"):
                    # The recording's clock stood still here (a stopped
                    # kernel, a held console): so does the player's.
                    started = self.clock()
                    if step.op == "hold":
                        self._hold()
                    elif not self._session(step):
                        break
                    base += self.clock() - started
                elif not self._act(step):
                    break
            self.played.set()
            self._stop.wait()
        except (_Stopped, OSError):
            pass
        finally:
            self.played.set()

    def _act(self, step):
        """Plays one step; False once the transcript is over (the rest is idle)."""
        if step.op == "print":
            self._write(step.text)
            return True
        if step.op == "xen":
            self._xen.write(step.text)
            self._xen.flush()
            return True
        if step.op == "end":
            # Complete before it ends, so the driver's drain never waits
            # for output a finished transcript cannot send.
            self.played.set()
            self._end_reason = step.text
        elif step.op == "chatter":
            while True:
                self._write(step.text)
                self._sleep_until(self.clock() + step.seconds / self.speed)
        return False

    def _session(self, step):
        """ddb (or any prompt): answers until a reply leaves; False if the
        domain went away or went quiet inside it."""
        while True:
            self._write(step.text)
            command = self._read_line()
            self.typed.append(command)
            if not command:
                continue
            for reply in step.commands.get(command, [Step(None, "print", "No such command\r\n")]):
                if reply.op == "leave":
                    return True
                if reply.op == "more":
                    self._write("--More--\r")
                    self.typed.append(self._read(1).decode("latin-1"))
                    self._write("        \r")
                elif reply.op == "hold":
                    self._hold()
                elif not self._act(reply):
                    return False

    def _hold(self):
        self.typed.append(self._read(1).decode("latin-1"))

    def _read_line(self):
        """A typed line, echoed; other control characters are ignored, as
        ddb's line editor ignores the keys it has no use for."""
        line = b""
        while True:
            c = self._read(1)
            if c in (b"\r", b"\n"):
                self._write("\r\n")
                return line.decode("utf-8", "replace")
            if c < b" ":
                continue
            line += c
            self._write(c.decode("latin-1"))

    def _read(self, n):
        while not select.select([self._slave], [], [], 0.05)[0]:
            if self._stop.is_set():
                raise _Stopped
        return os.read(self._slave, n)

    def _write(self, text):
        data = text.encode("utf-8")
        if self.pieces is None:
            return self._write_bytes(data)
        with self._clock_lock:
            self._stood_since = time.monotonic()
        try:
            for piece in self.pieces(data):
                self._write_bytes(piece)
                while _unread(self.master):
                    if self._stop.wait(0.0002):
                        raise _Stopped
        finally:
            with self._clock_lock:
                self._stood += time.monotonic() - self._stood_since
                self._stood_since = None

    def _write_bytes(self, data):
        while data:
            if not select.select([], [self._slave], [], 0.05)[1]:
                if self._stop.is_set():
                    raise _Stopped
                continue
            data = data[os.write(self._slave, data):]

    def _sleep_until(self, when):
        # The transcript's own timing, not a wait for an event: the stop
        # event cuts it short.
        if self._stop.wait(max(0.0, when - self.clock())):
            raise _Stopped


def _unread(fd):
    """How many bytes wait to be read on `fd`."""
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), "little")


def _bursts(steps):
    """The steps with consecutive prints of one instant joined into one."""
    joined = []
    for step in steps:
        last = joined[-1] if joined else None
        if step.op == "print" and last is not None and last.op == "print" and last.time == step.time:
            joined[-1] = dataclasses.replace(last, text=last.text + step.text)
        else:
            joined.append(step)
    return joined


def replay(path, spec, out, speed=1.0, pieces=None):
    """Plays the transcript at `path` through the live console driver,
    judged by `spec` (NAME, path or Spec; scaled by 1/speed here) with its
    Xen lines as the second source; Xen's reason goes into the verdict as
    boot puts it there (without the kernel's symbols: RIP stays an
    address). `pieces` as for Player. Returns (Outcome, Player)."""
    spec = (load_spec(spec) if isinstance(spec, str) else spec).scaled(1 / speed)
    player = Player(path, speed=speed, pieces=pieces)
    try:
        xen = xenconsole.XenConsole(xenlog.FileSource(player.xen_log, player.played.is_set), player.domid, out).start()
        try:
            with ConsoleSession(player.master, spec, out, domain=player, xen=xen,
                                clock=player.clock) as session:
                player.start()
                outcome = session.judge()
            xen.conclude(outcome)
        finally:
            xen.close()
    finally:
        player.stop()
    return outcome, player


def describe(found):
    """One line saying where a transcript's output comes from."""
    if found["kind"] == "SYNTHETIC":
        return "SYNTHETIC transcript: not the output of a real boot"
    change = "" if found["local-change"] == "none" else f" with a local change ({found['local-change']})"
    return (f"REAL FreeBSD {found['version']} console from {found['tree']}{change}, kernel sha256 "
            f"{found['kernel-sha256']}, Xen {found['xen']}")


def main(argv=None):
    """Plays a transcript through the live console driver and prints the verdict."""
    parser = argparse.ArgumentParser(prog="python3 -m xenboot.testing.player", description=main.__doc__)
    parser.add_argument("transcript")
    parser.add_argument("--spec", required=True, help="spec NAME or path")
    parser.add_argument("--speed", type=float, default=1.0, help="play this many times faster")
    parser.add_argument("--out", required=True, help="folder for console.log and console.jsonl")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    outcome, player = replay(args.transcript, args.spec, args.out, speed=args.speed)
    print(f"{describe(player.provenance)}\n{outcome.verdict.value}: {outcome.message}")
    return outcome.verdict.exit_status


if __name__ == "__main__":
    sys.exit(main())
