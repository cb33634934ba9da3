"""Milestone specs: the shipped ones load, includes merge as documented, and a
bad spec is one line of BAD_INPUT naming the file and the key."""
import textwrap

import pytest

from xenboot.core.errors import BadInput, Verdict
from xenboot.judge.spec import available_specs, load_spec


def write(folder, name, text):
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


MINIMAL = """
    [[milestone]]
    name = "hello"
    pattern = '^hello'
    budget = 5
"""


@pytest.mark.parametrize("name", available_specs())
def test_shipped_specs_load(name):
    spec = load_spec(name)
    assert spec.milestones
    assert spec.name == name


def test_shipped_specs_are_the_documented_ones():
    assert {"generic", "freebsd-xen-pv", "probe", "freebsd-xen-pv-kdb",
            "freebsd-xen-pv-kdb-stop", "freebsd-xen-pv-boot-d", "freebsd-xen-pv-i386",
            "freebsd-xen-pv-i386-kdb", "freebsd-xen-pv-i386-kdb-stop",
            "freebsd-xen-pv-i386-boot-d"} <= set(available_specs())
    assert not {"fatal", "freebsd-common", "kdb-stop"} & set(available_specs())


def test_a_bare_name_and_a_path_load_the_same_spec():
    by_name = load_spec("probe")
    by_path = load_spec(by_name.path)
    assert [m.name for m in by_path.milestones] == [m.name for m in by_name.milestones]


def test_generic_ends_with_the_domain_or_stays_alive():
    last = load_spec("generic").milestones[-1]
    assert set(last.end) == {"poweroff", "reboot"} and last.alive


def test_freebsd_spec_order_and_optional_stages():
    spec = load_spec("freebsd-xen-pv")
    names = [m.name for m in spec.milestones]
    assert names == ["bootenv", "gdb", "kdb-backends", "kdb-current", "banner", "version", "sysinit",
                     "xen-clock", "xenstore", "disk", "kdb", "mountroot", "init", "poweroff"]
    optional = {m.name for m in spec.milestones if m.optional}
    assert optional == {"bootenv", "gdb", "sysinit", "kdb"}
    assert spec.scripts["kdb"].commands[0] == "set $lines = 0"
    assert spec.scripts["kdb"].then == "continue"
    assert spec.milestones[-1].end == ("poweroff",) and spec.debugger.nudge == "\x07"
    assert {f.kind for f in spec.fatal} >= {"panic", "fatal-trap", "debugger", "failsafe"}


def test_i386_spec_shares_the_common_lines_and_adds_its_own():
    i386, amd64 = load_spec("freebsd-xen-pv-i386"), load_spec("freebsd-xen-pv")
    names = [m.name for m in i386.milestones]
    assert names == ["loader-metadata", "gdb", "kdb-backends", "kdb-current", "banner", "version",
                     "real-memory", "avail-memory", "xen-clock", "console", "xenstore", "disk", "kdb",
                     "mountroot", "init", "poweroff"]
    assert {m.name for m in i386.milestones if m.optional} == {"loader-metadata", "gdb", "kdb"}
    common = [m for m in amd64.milestones if m.name not in ("bootenv", "sysinit")]
    # Patterns compare by identity: the repr shows each field and the regex source.
    assert [repr(m) for m in i386.milestones if m.name in {c.name for c in common}] == list(map(repr, common))
    assert i386.scripts == amd64.scripts
    assert {f.name for f in amd64.fatal} - {f.name for f in i386.fatal} == {"xen-setup-panic",
                                                                           "xen-setup-failed"}
    assert [n.name for n in i386.notes] == ["root-failed", "init-failed", "init-missing", "lock-order-reversal"]
    assert next(m for m in i386.milestones if m.name == "mountroot").note
    assert any("parts/freebsd-common.toml" in s for s in i386.sources)


@pytest.mark.parametrize("target", ["", "-i386"])
def test_variants_of_both_targets_come_from_the_same_parts(target):
    base = [m.name for m in load_spec(f"freebsd-xen-pv{target}").milestones]
    kdb = load_spec(f"freebsd-xen-pv{target}-kdb")
    assert [m.name for m in kdb.milestones] == base
    assert not next(m for m in kdb.milestones if m.name == "kdb").optional
    boot_d = load_spec(f"freebsd-xen-pv{target}-boot-d")
    names = [m.name for m in boot_d.milestones]
    assert names.index("kdb") == names.index("kdb-current") + 1 and sorted(names) == sorted(base)
    stop = load_spec(f"freebsd-xen-pv{target}-kdb-stop")
    assert stop.scripts["kdb"].then == "stop" and [m.name for m in stop.milestones] == names
    for variant in (kdb, boot_d, stop):
        assert repr(variant.fatal) == repr(load_spec(f"freebsd-xen-pv{target}").fatal)


def test_an_included_part_places_a_milestone_by_an_earlier_include(tmp_path):
    write(tmp_path, "base.toml", MINIMAL)
    write(tmp_path, "part.toml", """
        [[milestone]]
        name = "before-hello"
        pattern = 'x'
        budget = 1
        before = "hello"
    """)
    top = write(tmp_path, "top.toml", 'include = ["base.toml", "part.toml"]\n')
    assert [m.name for m in load_spec(str(top)).milestones] == ["before-hello", "hello"]
    alone = write(tmp_path, "alone.toml", 'include = ["part.toml", "base.toml"]\n')
    with pytest.raises(BadInput, match="part.toml: milestone \"before-hello\": before: no milestone 'hello'"):
        load_spec(str(alone))


def test_variants_override_by_name():
    kdb = load_spec("freebsd-xen-pv-kdb")
    assert not next(m for m in kdb.milestones if m.name == "kdb").optional
    boot_d = [m.name for m in load_spec("freebsd-xen-pv-boot-d").milestones]
    assert boot_d.index("kdb") == boot_d.index("kdb-current") + 1
    stop = load_spec("freebsd-xen-pv-kdb-stop")
    assert stop.scripts["kdb"].then == "stop"
    assert stop.scripts["kdb"].commands == load_spec("freebsd-xen-pv").scripts["kdb"].commands


def test_include_merges_fatal_scripts_and_milestones(tmp_path):
    write(tmp_path, "base.toml", """
        hang = 10
        [debugger]
        prompt = "db> "
        [scripts.s]
        commands = ["bt"]
        then = "stop"
        [[milestone]]
        name = "a"
        pattern = 'a'
        budget = 1
        [[milestone]]
        name = "c"
        pattern = 'c'
        budget = 1
        [[fatal]]
        kind = "panic"
        pattern = '^panic: '
    """)
    top = write(tmp_path, "top.toml", """
        include = "base.toml"
        hang = 20
        [scripts.s]
        then = "continue"
        [[milestone]]
        name = "b"
        pattern = 'b'
        budget = 1
        after = "a"
        [[milestone]]
        name = "c"
        budget = 7
        [[fatal]]
        kind = "panic"
        pattern = '^PANIC '
    """)
    spec = load_spec(str(top))
    assert [m.name for m in spec.milestones] == ["a", "b", "c"]
    assert spec.milestones[2].budget == 7 and spec.milestones[2].pattern.source == "c"
    assert spec.hang == 20
    assert spec.scripts["s"].commands == ("bt",) and spec.scripts["s"].then == "continue"
    assert [f.pattern.source for f in spec.fatal] == ["^PANIC "]
    assert [s.rsplit("/", 1)[-1] for s in spec.sources] == ["base.toml", "top.toml"]


def test_scaled_multiplies_every_budget():
    spec = load_spec("freebsd-xen-pv")
    fast = spec.scaled(0.5)
    assert fast.hang == spec.hang / 2
    assert [m.budget for m in fast.milestones] == [m.budget / 2 for m in spec.milestones]
    assert fast.debugger.reply_budget == spec.debugger.reply_budget / 2
    assert fast.debugger.quiet == spec.debugger.quiet / 2


BAD_SPECS = {
    "unknown top-level key": ("hnag = 5\n" + MINIMAL, "unknown key 'hnag'"),
    "unknown milestone key": (MINIMAL + "patern = 'x'\n", 'milestone "hello"'),
    "unknown debugger key": ("[debugger]\npromt = 'db> '\n" + MINIMAL, "debugger: unknown key 'promt'"),
    "bad regex": (MINIMAL.replace("'^hello'", "'^(hello'"), "not a valid regex"),
    "empty milestone list": ("hang = 5\n", "milestone: none given"),
    "budget not a number": (MINIMAL.replace("budget = 5", "budget = 'soon'"), "budget must be a number"),
    "budget a boolean": (MINIMAL.replace("budget = 5", "budget = true"), "budget must be a number"),
    "budget zero": (MINIMAL.replace("budget = 5", "budget = 0"), "budget must be a number > 0"),
    "budget missing": (MINIMAL.replace("budget = 5", ""), "key 'budget' missing"),
    "pattern missing": (MINIMAL.replace("pattern = '^hello'", ""), "key 'pattern' missing"),
    "name missing": (MINIMAL.replace('name = "hello"', ""), "milestone[0]: key 'name' missing"),
    "name twice": (MINIMAL + MINIMAL, "name used twice"),
    "bad fatal kind": (MINIMAL + "[[fatal]]\nkind = 'oops'\npattern = 'x'\n", "kind: 'oops' is not one of"),
    "fatal without kind": (MINIMAL + "[[fatal]]\npattern = 'x'\n", "fatal[0]: key 'kind' missing"),
    "unknown script": (MINIMAL + "script = 'nope'\n", "script: no [scripts.nope]"),
    "bad then": ("[scripts.s]\nthen = 'later'\n" + MINIMAL, "scripts.s: then: 'later'"),
    "then missing": ("[scripts.s]\ncommands = ['bt']\n" + MINIMAL, "scripts.s: key 'then' missing"),
    "commands not strings": ("[scripts.s]\nthen = 'stop'\ncommands = [1]\n" + MINIMAL,
                             "commands must be a list of strings"),
    "on_fatal unknown": ("[debugger]\non_fatal = 'x'\n" + MINIMAL, "on_fatal: no script 'x'"),
    "end not last": ("[[milestone]]\nname = 'e'\nend = ['poweroff']\nbudget = 1\n" + MINIMAL,
                     "only the last milestone"),
    "end with pattern": (MINIMAL + "end = ['poweroff']\n", "a milestone with end/alive has no pattern"),
    "bad end reason": (MINIMAL + "[[milestone]]\nname = 'e'\nend = ['halt']\nbudget = 1\n",
                       "end: 'halt' is not one of"),
    "end with note": (MINIMAL + "[[milestone]]\nname = 'e'\nend = ['poweroff']\nnote = true\nbudget = 1\n",
                      "a milestone with end/alive has no note"),
    "empty end": (MINIMAL + "[[milestone]]\nname = 'e'\nend = []\nbudget = 1\n", "end: list at least one"),
    "after unknown": (MINIMAL + "[[milestone]]\nname = 'x'\npattern = 'x'\nbudget = 1\nafter = 'nope'\n",
                      "after: no milestone 'nope'"),
    "not toml": ("[[milestone]\n", "not valid TOML"),
    "include missing": ("include = 'no-such-spec-here'\n" + MINIMAL, "include: spec 'no-such-spec-here'"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_spec_is_one_line_naming_file_and_key(tmp_path, case):
    text, expected = BAD_SPECS[case]
    path = write(tmp_path, "bad.toml", text)
    with pytest.raises(BadInput) as e:
        load_spec(str(path))
    message = e.value.message
    assert "\n" not in message
    assert str(path) in message or "bad.toml" in message
    assert expected in message
    assert e.value.verdict is Verdict.BAD_INPUT


def test_include_cycle_is_bad_input(tmp_path):
    write(tmp_path, "a.toml", 'include = "b.toml"\n' + textwrap.dedent(MINIMAL))
    write(tmp_path, "b.toml", 'include = "a.toml"\n')
    with pytest.raises(BadInput, match=r"include: cycle a.toml -> b.toml -> a.toml"):
        load_spec(str(tmp_path / "a.toml"))


def test_unknown_spec_name_lists_the_available_ones():
    with pytest.raises(BadInput, match=r"no such file .*specs: .*generic"):
        load_spec("no-such-spec")


def test_spec_name_cannot_reach_outside_the_spec_folder():
    with pytest.raises(BadInput, match="not a spec name"):
        load_spec("..")
