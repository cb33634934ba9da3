"""Milestone specs: what a boot must print and by when, what is fatal, and what
to type at the kernel debugger. They are TOML data in configs/milestones/,
edited by kernel developers, and validated before any boot so that a typo is a
one-line BAD_INPUT naming the file and key, never a wrong verdict.

Schema (every key optional unless marked):
  description = "..."
  include = "NAME" | ["NAME", "path.toml", ...]   merged first, in order, each over
                             the ones before it (a part may override or place theirs)
  hang = 60                  seconds of total silence that mean HANG
  newline = "\\r"             what ends a typed line (Enter on a terminal)
  [debugger]                 prompt = "db> ", pager = "--More--", pager_answer = " ",
                             continue = "c", reset = "reset", on_fatal = SCRIPT,
                             prompt_budget = 30, reply_budget = 30, quiet = 5,
                             nudge = "\u0007" (typed once when the debugger has been
                             quiet that long without its prompt: a console that holds
                             output until input arrives; default none)
  [scripts.NAME]             commands = ["set $lines = 0", "bt"], then = "continue"|"reset"|"stop" (required)
  [[milestone]]              name (required), budget (required: seconds after the previous
                             milestone), and either pattern (+ optional, partial, script,
                             note: its line is also a note, in or out of turn) or, for
                             the last one only, end = ["poweroff", "reboot", "crash"]
                             and/or alive = true; hang overrides the spec's; after/before
                             place it when it is new or moved by an including spec
  [[fatal]]                  kind (required: panic, fatal-trap, failsafe, debugger,
                             domain-crash, failure), pattern (required), name (default:
                             the kind), partial, script (default: [debugger] on_fatal)
  [[note]]                   name, pattern (both required): lines worth reporting, in
                             result.json `notes` (with the pattern's named groups) and
                             after a failing verdict's message ("noted: ...")
  source (milestone with a pattern, fatal, note) = "console" | "xen" | "both" (default):
                             where its lines may come from: the guest console, or the
                             guest's console_io writes on Xen's console (xenconsole.py)
Patterns are Python regexes matched one cleaned line at a time (ANSI and
control characters removed, \\r\\n as \\n); `partial` ones are also tried on
the unfinished last line, for prompts. An including spec overrides scalars
and [debugger] keys, script keys per script, fatal and note entries by name,
and milestone fields by name; a milestone with a new name is added (at the
end, or where after/before say).
"""
import dataclasses
import os
import re
import tomllib

from xenboot.core import inputs, paths
from xenboot.core.errors import BadInput
from xenboot.judge.matcher import BOTH, FATAL_KINDS, SOURCES, Pattern

REPO_ROOT = str(paths.REPO)
SPEC_DIR = str(paths.CONFIGS / "milestones")

SPEC_FILE = inputs.File("spec file", "give a spec NAME (configs/milestones/NAME.toml) or a spec .toml file",
                        inputs.TEXT_MAX, text=True)
END_REASONS = ("poweroff", "reboot", "crash")
THEN = ("continue", "reset", "stop")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

NUMBER = "a number > 0"
STRINGS = "a list of strings"
SCHEMAS = {
    "spec": {"description": str, "include": (str, STRINGS), "hang": NUMBER, "newline": str,
             "debugger": dict, "scripts": dict, "milestone": list, "fatal": list, "note": list},
    "debugger": {"prompt": str, "pager": str, "pager_answer": str, "continue": str,
                 "reset": str, "on_fatal": str, "prompt_budget": NUMBER,
                 "reply_budget": NUMBER, "quiet": NUMBER, "nudge": str},
    "script": {"commands": STRINGS, "then": str},
    "milestone": {"name": str, "pattern": str, "budget": NUMBER, "optional": bool,
                  "partial": bool, "script": str, "end": STRINGS, "alive": bool,
                  "hang": NUMBER, "after": str, "before": str, "note": bool, "source": str},
    "fatal": {"name": str, "kind": str, "pattern": str, "partial": bool, "script": str,
              "source": str},
    "note": {"name": str, "pattern": str, "source": str},
}
DEBUGGER_DEFAULTS = {"prompt": "db> ", "pager": "--More--", "pager_answer": " ",
                     "continue": "c", "reset": "reset", "on_fatal": None,
                     "prompt_budget": 30, "reply_budget": 30, "quiet": 5, "nudge": ""}


@dataclasses.dataclass(frozen=True)
class Milestone:
    name: str
    budget: float
    pattern: Pattern = None
    optional: bool = False
    partial: bool = False
    script: str = None
    end: tuple = ()
    alive: bool = False
    hang: float = None
    note: bool = False
    source: str = BOTH

    def hang_budget(self, spec):
        return spec.hang if self.hang is None else self.hang


@dataclasses.dataclass(frozen=True)
class Fatal:
    name: str
    kind: str
    pattern: Pattern
    partial: bool = False
    script: str = None
    source: str = BOTH


@dataclasses.dataclass(frozen=True)
class Note:
    name: str
    pattern: Pattern
    source: str = BOTH


@dataclasses.dataclass(frozen=True)
class Script:
    name: str
    commands: tuple
    then: str


@dataclasses.dataclass(frozen=True)
class Debugger:
    prompt: str
    pager: str
    pager_answer: str
    continue_: str
    reset: str
    on_fatal: str
    prompt_budget: float
    reply_budget: float
    quiet: float
    nudge: str


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str
    path: str
    sources: tuple
    description: str
    hang: float
    newline: str
    milestones: tuple
    fatal: tuple
    notes: tuple
    scripts: dict
    debugger: Debugger

    def scaled(self, factor):
        """The same spec with every time budget multiplied by `factor`: a slow
        host (TCG) wants more time, a sped-up transcript less."""
        return dataclasses.replace(
            self, hang=self.hang * factor,
            milestones=tuple(dataclasses.replace(
                m, budget=m.budget * factor, hang=None if m.hang is None else m.hang * factor)
                for m in self.milestones),
            debugger=dataclasses.replace(
                self.debugger, prompt_budget=self.debugger.prompt_budget * factor,
                reply_budget=self.debugger.reply_budget * factor,
                quiet=self.debugger.quiet * factor))


class _Where:
    """A place in a spec file, for one-line errors: 'FILE: milestone "x": what'."""

    def __init__(self, path, place=None):
        self.path = path
        self.place = place

    def at(self, place):
        return _Where(self.path, f"{self.place}: {place}" if self.place else place)

    def label(self):
        shown = os.path.relpath(self.path, REPO_ROOT) if self.path.startswith(REPO_ROOT + os.sep) \
            else self.path
        return f"{shown}: {self.place}" if self.place else shown

    def error(self, what):
        return BadInput(f"{self.label()}: {what}")


def available_specs():
    return sorted(f[:-5] for f in os.listdir(SPEC_DIR) if f.endswith(".toml"))


def spec_path(name_or_path, what="spec", base_dir=None):
    """A bare NAME is configs/milestones/NAME.toml; anything else is a path
    (relative to base_dir, the including spec's folder, when given)."""
    bare = os.sep not in name_or_path and not name_or_path.endswith(".toml")
    if not bare:
        return os.path.abspath(os.path.join(base_dir or os.getcwd(), name_or_path))
    if not _NAME.fullmatch(name_or_path):
        raise BadInput(f"{what} {name_or_path!r}: not a spec name (letters, digits, _ . -)"
                       " nor a .toml path")
    path = os.path.join(SPEC_DIR, name_or_path + ".toml")
    if not os.path.exists(path):
        raise BadInput(f"{what} {name_or_path!r}: no such file {path} (specs: {', '.join(available_specs())})")
    return path


def load_spec(name_or_path, what="spec"):
    """The validated Spec for a NAME in configs/milestones/ or a .toml path;
    `what` names it in a refusal (--spec)."""
    path = spec_path(name_or_path, what)
    layer = _load_layer(path, (), what)
    return _build(layer, path)


SPEC_INPUT = SPEC_FILE.given(resolve=spec_path, load=load_spec)


# -- reading and merging files -------------------------------------------------

def _empty_layer():
    return {"scalars": {}, "debugger": {}, "scripts": {}, "milestone": [], "fatal": [],
            "note": [], "sources": []}


def _load_layer(path, chain, what, layer=None):
    """Lays the file at `path`, its includes first, over `layer` (a new one
    if None): an included part sees what the includes before it gave, so
    it can override or place a milestone relative to theirs. `what` names
    the file in a refusal of it (--spec, or the include that names it)."""
    where = _Where(path)
    if path in chain:
        names = [os.path.basename(p) for p in chain + (path,)]
        raise _Where(chain[-1]).error(f"include: cycle {' -> '.join(names)}")
    try:
        data = tomllib.loads(SPEC_FILE.read_text(path, what))
    except tomllib.TOMLDecodeError as e:
        raise where.error(f"not valid TOML: {e}") from None
    _check_table(data, "spec", where)
    layer = _empty_layer() if layer is None else layer
    includes = data.get("include", [])
    for name in [includes] if isinstance(includes, str) else includes:
        try:
            included = spec_path(name, base_dir=os.path.dirname(path))
        except BadInput as e:
            raise where.at("include").error(e.message) from None
        _load_layer(included, chain + (path,), where.at("include").label(), layer)
    _merge(layer, _own_layer(data, path, where))
    return layer


def _own_layer(data, path, where):
    """One file's own content, each entry checked and its patterns compiled."""
    layer = _empty_layer()
    layer["sources"] = [path]
    layer["scalars"] = {k: data[k] for k in ("description", "hang", "newline") if k in data}
    layer["debugger"] = dict(_checked(data.get("debugger", {}), "debugger", where.at("debugger")))
    scripts = data.get("scripts", {})
    if not isinstance(scripts, dict):
        raise where.error("scripts must be a table of [scripts.NAME] tables")
    for name, script in scripts.items():
        layer["scripts"][name] = _checked(script, "script", where.at(f"scripts.{name}"))
    for kind in ("milestone", "fatal", "note"):
        seen = set()
        for i, entry in enumerate(data.get(kind, [])):
            entry = _checked(entry, kind, where.at(_label(kind, i, entry)))
            if kind == "fatal" and "kind" in entry:
                entry.setdefault("name", entry["kind"])
            entry_where = where.at(_label(kind, i, entry))
            if "name" not in entry:
                raise entry_where.error(f"key {'kind' if kind == 'fatal' else 'name'!r} missing")
            if not _NAME.fullmatch(entry["name"]):
                raise entry_where.error("name: use letters, digits, _ . -")
            if entry["name"] in seen:
                raise entry_where.error("name used twice in this file")
            seen.add(entry["name"])
            if "pattern" in entry:
                entry["pattern"] = _compile(entry["pattern"], entry_where)
            if entry.get("source", BOTH) not in SOURCES:
                raise entry_where.error(f"source: {entry['source']!r} is not one of {', '.join(SOURCES)}")
            entry["_where"] = entry_where
            layer[kind].append(entry)
    return layer


def _label(kind, i, entry):
    name = entry.get("name") if isinstance(entry, dict) else None
    return f'{kind} "{name}"' if isinstance(name, str) else f"{kind}[{i}]"


def _check_table(table, schema, where):
    if not isinstance(table, dict):
        raise where.error("must be a table")
    known = SCHEMAS[schema]
    for key, value in table.items():
        if key not in known:
            raise where.error(f"unknown key {key!r} (known: {', '.join(known)})")
        kinds = known[key] if isinstance(known[key], tuple) else (known[key],)
        if not any(_is(value, k) for k in kinds):
            raise where.error(f"{key} must be {' or '.join(_describe(k) for k in kinds)}")


def _checked(table, schema, where):
    _check_table(table, schema, where)
    return dict(table)


def _is(value, kind):
    if kind is NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    if kind is STRINGS:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, kind)


def _describe(kind):
    return {str: "a string", bool: "true or false", dict: "a table",
            list: "an array of tables"}.get(kind, kind)


def _compile(source, where):
    try:
        return Pattern(source)
    except re.error as e:
        raise where.error(f"pattern {source!r} is not a valid regex: {e}") from None


def _merge(layer, top):
    """Lays `top` over `layer` (see the module docstring for the rules)."""
    layer["sources"] += [s for s in top["sources"] if s not in layer["sources"]]
    layer["scalars"].update(top["scalars"])
    layer["debugger"].update(top["debugger"])
    for name, script in top["scripts"].items():
        layer["scripts"].setdefault(name, {}).update(script)
    for kind in ("fatal", "note"):
        by_name = {e["name"]: i for i, e in enumerate(layer[kind])}
        for entry in top[kind]:
            if entry["name"] in by_name:
                layer[kind][by_name[entry["name"]]] = entry
            else:
                layer[kind].append(entry)
    for entry in top["milestone"]:
        _merge_milestone(layer["milestone"], dict(entry))


def _merge_milestone(milestones, entry):
    where = entry["_where"]
    if "after" in entry and "before" in entry:
        raise where.error("give after or before, not both")
    anchor_key = next((k for k in ("after", "before") if k in entry), None)
    anchor = entry.pop(anchor_key) if anchor_key else None
    names = [m["name"] for m in milestones]
    if entry["name"] in names:
        i = names.index(entry["name"])
        entry = {**milestones[i], **entry}
        if anchor is None:
            milestones[i] = entry
            return
        del milestones[i], names[i]
    if anchor is None:
        milestones.append(entry)
    elif anchor not in names:
        raise where.error(f"{anchor_key}: no milestone {anchor!r} to place it by")
    else:
        milestones.insert(names.index(anchor) + (anchor_key == "after"), entry)


# -- the merged result, checked as a whole -------------------------------------------

def _build(layer, path):
    where = _Where(path)
    scalars = layer["scalars"]
    scripts = {name: _build_script(name, s, where.at(f"scripts.{name}"))
               for name, s in layer["scripts"].items()}
    debugger = {**DEBUGGER_DEFAULTS, **layer["debugger"]}
    if debugger["on_fatal"] is not None and debugger["on_fatal"] not in scripts:
        raise where.at("debugger").error(f"on_fatal: no script {debugger['on_fatal']!r}")
    if not layer["milestone"]:
        raise where.error("milestone: none given (a spec needs at least one [[milestone]])")
    milestones = tuple(_build_milestone(m, i == len(layer["milestone"]) - 1, scripts)
                       for i, m in enumerate(layer["milestone"]))
    fatal = tuple(_build_fatal(f, scripts) for f in layer["fatal"])
    notes = tuple(Note(n["name"], _required(n, "pattern"), n.get("source", BOTH)) for n in layer["note"])
    newline = scalars.get("newline", "\r")
    if not newline:
        raise where.error("newline must not be empty")
    return Spec(
        name=os.path.splitext(os.path.basename(path))[0],
        path=path, sources=tuple(layer["sources"]),
        description=scalars.get("description", ""), hang=scalars.get("hang", 60),
        newline=newline, milestones=milestones, fatal=fatal, notes=notes, scripts=scripts,
        debugger=Debugger(continue_=debugger.pop("continue"), **debugger))


def _required(entry, key):
    if key not in entry:
        raise entry["_where"].error(f"key {key!r} missing")
    return entry[key]


def _check_script_ref(entry, scripts):
    if entry.get("script") is not None and entry["script"] not in scripts:
        raise entry["_where"].error(f"script: no [scripts.{entry['script']}] in this spec")


def _build_script(name, script, where):
    if "then" not in script:
        raise where.error("key 'then' missing (continue, reset or stop)")
    if script["then"] not in THEN:
        raise where.error(f"then: {script['then']!r} is not one of {', '.join(THEN)}")
    return Script(name, tuple(script.get("commands", ())), script["then"])


def _build_milestone(entry, last, scripts):
    where = entry["_where"]
    budget = _required(entry, "budget")
    terminal = "end" in entry or entry.get("alive", False)
    if terminal:
        for key in ("pattern", "partial", "script", "optional", "note", "source"):
            if key in entry:
                raise where.error(f"{key}: a milestone with end/alive has no {key}")
        if not last:
            raise where.error("end/alive: only the last milestone can wait for the domain's end")
        if "end" in entry and not entry["end"]:
            raise where.error(f"end: list at least one of {', '.join(END_REASONS)}")
        bad = [r for r in entry.get("end", ()) if r not in END_REASONS]
        if bad:
            raise where.error(f"end: {bad[0]!r} is not one of {', '.join(END_REASONS)}")
    elif "pattern" not in entry:
        raise where.error("key 'pattern' missing (or end/alive for the last milestone)")
    _check_script_ref(entry, scripts)
    return Milestone(name=entry["name"], budget=budget, pattern=entry.get("pattern"),
                     optional=entry.get("optional", False), partial=entry.get("partial", False),
                     script=entry.get("script"), end=tuple(entry.get("end", ())),
                     alive=entry.get("alive", False), hang=entry.get("hang"),
                     note=entry.get("note", False), source=entry.get("source", BOTH))


def _build_fatal(entry, scripts):
    kind = _required(entry, "kind")
    if kind not in FATAL_KINDS:
        raise entry["_where"].error(f"kind: {kind!r} is not one of {', '.join(FATAL_KINDS)}")
    _check_script_ref(entry, scripts)
    return Fatal(name=entry["name"], kind=kind, pattern=_required(entry, "pattern"),
                 partial=entry.get("partial", False), script=entry.get("script"),
                 source=entry.get("source", BOTH))
