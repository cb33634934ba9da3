"""What a command is given, checked before any of its stages starts.

Each option of a command is declared with `option(parser, ..., check=...)`;
`check_args` runs the checks of the command that was parsed, its run folder
(OUT) first, so that a refusal further on still leaves result.json there,
then the others in the order they were declared. A refusal is one
BAD_INPUT line, `<option>=<value>: <what is wrong>; <what to give>`.

The loaders take their files through the same rules (a spec and its
includes, a matrix and its kernels, a lab config, an xl template), so what
the command line does not name is checked alike. A file's type comes from
stat before anything opens it, because opening a FIFO blocks; a file far
larger than its kind ever is is a wrong path, not an input to read into
memory.
"""
import codecs
import copy
import os
import re
import stat

from xenboot.core.errors import BadInput

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
# A spec, matrix, manifest, lab config or xl template is a page or two.
TEXT_MAX = 1 * MiB
TYPES = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
         (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
         (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a file"))
CHUNK = 1 * MiB


def shown(value):
    """`value` fit for a one-line message, result.json and junit.xml: what
    is not UTF-8 and control characters escaped."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if 32 <= ord(c) != 127 else f"\\x{ord(c):02x}" for c in text)


def refused(what, value, problem, todo):
    return BadInput(f"{what}={shown(value)}: {problem}; {todo}")


def _type(mode):
    return next((name for test, name in TYPES if test(mode)), "a special file")


def _stat(path, what, noun, todo):
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise refused(what, path, f"no such {noun}", todo) from None
    except ValueError:
        raise refused(what, path, "has a NUL byte in it", todo) from None
    except OSError as e:
        raise refused(what, path, f"cannot be reached ({e.strerror})", todo) from None


class File:
    """A file given by its path: there, a regular file this process can
    read, not empty (unless `empty_ok`), at most `max_size` bytes, and UTF-8
    throughout when `text`."""

    kind = "file"

    def __init__(self, noun, todo, max_size, text=False, empty_ok=False):
        self.noun, self.todo, self.max_size = noun, todo, max_size
        self.text, self.empty_ok = text, empty_ok
        self.resolve = self.load = None

    def _check_type(self, path, what):
        st = _stat(path, what, self.noun, self.todo)
        if not stat.S_ISREG(st.st_mode):
            raise refused(what, path, f"is {_type(st.st_mode)}, not a {self.noun}", self.todo)
        if not os.access(path, os.R_OK):
            raise refused(what, path, "cannot be read (permission denied)", self.todo)
        if st.st_size == 0 and not self.empty_ok:
            raise refused(what, path, "is empty", self.todo)
        if st.st_size > self.max_size:
            raise refused(what, path, f"is {st.st_size} bytes, more than the {self.max_size // MiB} MiB "
                                      f"a {self.noun} may be", self.todo)

    def _open(self, path, what):
        try:
            return open(path, "rb")
        except OSError as e:
            raise refused(what, path, f"cannot be read ({e.strerror})", self.todo) from None

    def _not_utf8(self, path, what, offset):
        return refused(what, path, f"is not UTF-8 text (byte {offset} is not)", self.todo)

    def check(self, path, what):
        """`path`, or BadInput naming `what`; a text file is read through
        in chunks (it may be as large as a console.jsonl)."""
        self._check_type(path, what)
        if self.text:
            decoder = codecs.getincrementaldecoder("utf-8")()
            offset = 0
            with self._open(path, what) as f:
                while chunk := f.read(CHUNK):
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError as e:
                        raise self._not_utf8(path, what, offset + e.start) from None
                    offset += len(chunk)
                try:
                    decoder.decode(b"", final=True)
                except UnicodeDecodeError:
                    raise self._not_utf8(path, what, offset) from None
        return path

    def read_text(self, path, what):
        """The checked file's text, read once."""
        self._check_type(path, what)
        with self._open(path, what) as f:
            data = f.read()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise self._not_utf8(path, what, e.start) from None

    def given(self, resolve=None, load=None):
        """The same rule for a command-line value: `resolve(value, what)` is
        its path, `load(value, what)` validates what the file holds."""
        rule = copy.copy(self)
        rule.resolve, rule.load = resolve, load
        return rule

    def __call__(self, value, what, args):
        self.check(self.resolve(value, what) if self.resolve else value, what)
        if self.load:
            self.load(value, what)
        return value


class Folder:
    """A folder given by its path: there (or not, when `missing_ok`: one a
    command only reads from if it holds something yet), a directory this
    process can list."""

    kind = "folder"

    def __init__(self, todo, noun="folder", missing_ok=False):
        self.todo, self.noun, self.missing_ok = todo, noun, missing_ok

    def check(self, path, what):
        if self.missing_ok and not os.path.lexists(path):
            return path
        st = _stat(path, what, self.noun, self.todo)
        if not stat.S_ISDIR(st.st_mode):
            raise refused(what, path, f"is {_type(st.st_mode)}, not a folder", self.todo)
        if not os.access(path, os.R_OK | os.X_OK):
            raise refused(what, path, "cannot be read (permission denied)", self.todo)
        return path

    def __call__(self, value, what, args):
        return self.check(value, what)


class Folders(Folder):
    """Several folders, each one Folder (an option with nargs)."""

    def __call__(self, value, what, args):
        return [self.check(path, what) for path in value]


class FileOrFolder:
    """A tree given as a folder or as one archive file (a FreeBSD world)."""

    kind = "file or folder"

    def __init__(self, todo, max_size):
        self.folder = Folder(todo, noun="file or directory")
        self.file = File("file or directory", todo, max_size)
        self.max_size = max_size

    def __call__(self, value, what, args):
        if os.path.isdir(value):
            return self.folder.check(value, what)
        return self.file.check(value, what)


def output_folder(path, what, todo, mode=0o755):
    """`path`, a folder results go to: made when it is not there, and
    writable; else BadInput naming `what`."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise refused(what, path, f"is {_type(os.lstat(path).st_mode)}, not a folder", todo)
    try:
        os.makedirs(path, mode=mode, exist_ok=True)
    except ValueError:
        raise refused(what, path, "has a NUL byte in it", todo) from None
    except OSError as e:
        raise refused(what, path, f"cannot be made ({e.strerror})", todo) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise refused(what, path, "cannot be written (permission denied)", todo)
    return path


class OutputFolder:
    """A folder a command writes into and reuses (MAKEOBJDIRPREFIX, bench's)."""

    kind = "output folder"

    def __init__(self, todo):
        self.todo = todo

    def __call__(self, value, what, args):
        return output_folder(value, what, self.todo)


class RunFolder:
    """OUT: the run folder, where result.json goes whatever the outcome:
    the one given, else a new one; `make(value, args, what)` makes it
    (result.run_dir, or check-log's beside its LOG)."""

    kind = "run folder"

    def __init__(self, make):
        self.make = make

    def __call__(self, value, what, args):
        return self.make(value, args, what)


class Integer:
    """A whole number from `low` to `high`."""

    kind = "integer"

    def __init__(self, low, high, unit):
        self.low, self.high, self.unit = low, high, unit

    def __call__(self, value, what, args):
        todo = f"give a whole number from {self.low} to {self.high} ({self.unit})"
        try:
            number = int(value)
        except ValueError:
            raise refused(what, value, "is not a whole number", todo) from None
        if not self.low <= number <= self.high:
            raise refused(what, value, "is out of range", todo)
        return number


class Shard:
    """I/N: the I-th of N shares of a run (1 <= I <= N <= `most`)."""

    kind = "shard"

    def __init__(self, most):
        self.most = most

    def __call__(self, value, what, args):
        todo = f"give I/N, shard I of N (1 <= I <= N <= {self.most}), like 1/2"
        if not re.fullmatch(r"[0-9]{1,4}/[0-9]{1,4}", value):
            raise refused(what, value, "is not I/N", todo)
        index, count = map(int, value.split("/"))
        if not 1 <= index <= count <= self.most:
            raise refused(what, value, "is out of range", todo)
        return index, count


class Seconds:
    """A time in seconds, more than 0 and at most `high`."""

    kind = "seconds"

    def __init__(self, high):
        self.high = high

    def __call__(self, value, what, args):
        todo = f"give seconds, more than 0 and at most {self.high}"
        try:
            seconds = float(value)
        except ValueError:
            raise refused(what, value, "is not a number", todo) from None
        if not 0 < seconds <= self.high:
            raise refused(what, value, "is out of range", todo)
        return seconds


class Choice:
    """One of a few names."""

    kind = "choice"

    def __init__(self, choices):
        self.choices = tuple(choices)

    def __call__(self, value, what, args):
        if value not in self.choices:
            raise refused(what, value, "is not known", f"use one of {', '.join(self.choices)}")
        return value


class Rule:
    """A domain's own rule, `rule(value, what, args)` raising BadInput in its
    words (a lab flavour is one the lab config lists); `kind` is the kind of
    input it judges."""

    def __init__(self, kind, rule):
        self.kind, self.rule = kind, rule

    def __call__(self, value, what, args):
        self.rule(value, what, args)
        return value


class Text:
    """A word or a line of text: no control characters (NUL included), at
    most `max_len` characters, and no `problem(value)` (the words of what
    is wrong with it, or None); `todo` says what is wanted."""

    kind = "text"

    def __init__(self, todo, max_len=4096, problem=None):
        self.todo, self.max_len, self.problem = todo, max_len, problem

    def check(self, value, what):
        bad = next((c for c in value if ord(c) < 32 or ord(c) == 127), None)
        if bad is not None:
            raise refused(what, value, f"has a control character (\\x{ord(bad):02x})", self.todo)
        if len(value) > self.max_len:
            raise refused(what, value[:40] + "...", f"is {len(value)} characters, more than {self.max_len}",
                          self.todo)
        problem = self.problem and self.problem(value)
        if problem:
            raise refused(what, value, problem, self.todo)
        return value

    def __call__(self, value, what, args):
        return self.check(value, what)


class Words(Text):
    """Several words (a command and its arguments), each one Text."""

    kind = "words"

    def __call__(self, value, what, args):
        return [self.check(word, what) for word in value]


# -- the command line -----------------------------------------------------------------

def option(parser, *flags, check, **kwargs):
    """parser.add_argument(*flags, **kwargs), whose value `check_args`
    hands to `check(value, what, args)` (what: the option's name) before
    the command runs; what check returns is the value the command gets."""
    action = parser.add_argument(*flags, **kwargs)
    action.check = check
    parser.set_defaults(inputs=(parser.get_default("inputs") or ()) + (action,))
    return action


def name(action):
    """How a message names an option: its long flag, or a positional's metavar."""
    flags = [f for f in action.option_strings if f.startswith("--")]
    return flags[0] if flags else action.metavar or action.dest.upper()


def check_args(args):
    """Checks every declared input of the parsed command, the run folder
    first, and stores what each check returns; `args.run_folder` is the
    run folder once it is made (None before, and for a command without)."""
    args.run_folder = None
    actions = sorted(getattr(args, "inputs", ()), key=lambda a: not isinstance(a.check, RunFolder))
    for action in actions:
        value = getattr(args, action.dest)
        is_run_folder = isinstance(action.check, RunFolder)
        if value is None and not is_run_folder:
            continue
        for word in value if isinstance(value, list) else [value]:
            # Python hands a command line's non-UTF-8 bytes over as lone surrogates.
            if isinstance(word, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in word):
                raise refused(name(action), word, "is not UTF-8", "give it in UTF-8")
        setattr(args, action.dest, action.check(value, name(action), args))
        if is_run_folder:
            args.run_folder = getattr(args, action.dest)
