"""The run folder and what every outcome leaves in it: result.json and junit.xml.

Every run, whatever ends it (BAD_INPUT and INFRA included), writes both, so a
nightly run can aggregate every boot it attempted.
"""
import contextlib
import datetime
import json
import os
import secrets
import time
import xml.etree.ElementTree as ET

from xenboot.core import inputs, paths
from xenboot.core.errors import BadInput, HarnessError, Verdict

SCHEMA = 1
# Room kept in the run folder for its last words (result.json, junit.xml,
# reproduce.sh), so that they are written even when the run filled its disk.
RESERVE = ".reserve"
RESERVE_BYTES = 128 * 1024


OUT_TODO = "give a folder this user can write (no result.json can be written there)"


def new_run_dir(parent, what="OUT"):
    """out/<UTC timestamp>-<short id>/: unique even for runs started in the same second."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return inputs.output_folder(os.path.join(parent, f"{stamp}-{secrets.token_hex(3)}"), what,
                                OUT_TODO, mode=0o700)


def prepare_run_dir(path, what="OUT"):
    """A run folder the user named: new, or one no finished run has used
    (a run's stages may have filled it already); never another run's."""
    if os.path.exists(os.path.join(path, "result.json")):
        raise inputs.refused(what, path, "already holds a run (result.json)", "pick a new folder or remove it")
    inputs.output_folder(path, what, OUT_TODO, mode=0o700)
    try:
        os.chmod(path, 0o700)
    except OSError as e:
        raise inputs.refused(what, path, f"cannot be made private to this user ({e.strerror})",
                             "give a folder of your own") from None
    return path


def run_dir(out=None, kind=None, what="OUT"):
    """OUT as given, or a new out/[<kind>/]<UTC timestamp>-<short id>/."""
    if out:
        return prepare_run_dir(str(out), what)
    return new_run_dir(str(paths.out_root() / kind if kind else paths.out_root()), what)


def out_input(kind=None):
    """The check of a command's --out: its run folder, made."""
    return inputs.RunFolder(lambda value, args, what: run_dir(value, kind, what))


def newest_live_run(name, what, hint=""):
    """The newest run folder under out/ (nightly boots included) that a
    running boot offers the socket `name` in (`what` it offers, for the
    error)."""
    root = paths.out_root()
    found = sorted(root.glob(f"**/{name}"), key=lambda p: p.lstat().st_mtime)
    if not found:
        raise BadInput(f"no running boot under {root} offers {what}: start one with `make boot`{hint}, "
                       f"or pass OUT=<its run folder>")
    return str(found[-1].parent)


@contextlib.contextmanager
def recorded(out, name):
    """A RunRecord in run_dir(out) that a HarnessError still finishes (its
    details merged in) before it goes on up."""
    record = RunRecord(run_dir(out), name=name)
    try:
        yield record
    except HarnessError as e:
        record.data.update(e.details)
        record.finish(e.verdict, e.message)
        raise


class RunRecord:
    """Collects what a run learns, stage by stage, and writes it out at the end."""

    def __init__(self, out_dir, name="boot"):
        self.out_dir = out_dir
        # junit.xml is UTF-8: a kernel's file name need not be.
        self.name = inputs.shown(name)
        self._reserve = os.path.join(out_dir, RESERVE)
        # A disk already full gets no reserve: the run says so as it can.
        with contextlib.suppress(OSError), open(self._reserve, "wb") as f:
            os.posix_fallocate(f.fileno(), 0, RESERVE_BYTES)
        self.data = {
            "schema": SCHEMA,
            "verdict": None,
            "message": None,
            "milestones": [],
            "failed_at": None,
            "kernel": None,
            "host": None,
            "durations": {},
        }

    def __setitem__(self, key, value):
        self.data[key] = value

    def __getitem__(self, key):
        return self.data[key]

    def get(self, key, default=None):
        return self.data.get(key, default)

    @contextlib.contextmanager
    def stage(self, name):
        start = time.monotonic()
        try:
            yield
        finally:
            self.data["durations"][name] = round(time.monotonic() - start, 3)

    def release_reserve(self):
        """Free the room kept for the last words, to write them."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._reserve)

    def finish(self, verdict, message=None):
        self.release_reserve()
        verdict = Verdict(verdict)
        self.data["verdict"] = verdict.value
        self.data["message"] = message
        self.data["exit_status"] = verdict.exit_status
        write_json(os.path.join(self.out_dir, "result.json"), self.data)
        write_junit(os.path.join(self.out_dir, "junit.xml"), [junit_suite(self.name, self.data)])
        return verdict.exit_status


def write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


# Verdicts that say the harness, the build or the input failed rather than the
# guest: JUnit errors, not failures.
HARNESS_VERDICTS = (Verdict.INFRA, Verdict.BUILD_FAILED, Verdict.BAD_INPUT)


def junit_suite(name, data, expect=Verdict.PASS, classname=None, case_prefix="", properties=None,
                skipped=None, note=None):
    """One run as a JUnit testsuite: a testcase per milestone reached, one
    for the verdict, which fails when it is not `expect` (an error when the
    harness, the build or the input is to blame); `skipped` says why a run
    never happened, `note` goes to the verdict's system-out."""
    classname = classname or name
    suite = ET.Element("testsuite", name=name)
    props = ET.SubElement(suite, "properties")
    for key, value in (properties if properties is not None else
                       {"verdict": data.get("verdict"), "failed_at": data.get("failed_at")}).items():
        if value not in (None, ""):
            ET.SubElement(props, "property", name=key, value=str(value))
    for m in data.get("milestones") or []:
        ET.SubElement(suite, "testcase", classname=classname, name=f"{case_prefix}milestone {m['name']}",
                      time=f"{m.get('seconds') or 0:.3f}")
    case = ET.SubElement(suite, "testcase", classname=classname, name=f"{case_prefix}verdict",
                         time=f"{sum((data.get('durations') or {}).values()):.3f}")
    verdict = data.get("verdict")
    if skipped:
        ET.SubElement(case, "skipped", message=skipped)
    elif verdict != Verdict(expect).value:
        tag = "error" if Verdict(verdict) in HARNESS_VERDICTS else "failure"
        message = data.get("message") or verdict
        ET.SubElement(case, tag, type=verdict, message=message if expect == Verdict.PASS
                      else f"expected {Verdict(expect).value}, got {verdict}: {message}")
    if note:
        ET.SubElement(case, "system-out").text = note
    suite.set("tests", str(len(suite.findall("testcase"))))
    for count, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
        suite.set(count, str(len(case.findall(tag))))
    return suite


def write_junit(path, suites, name=None):
    """junit.xml: one testsuite as the root, or with `name` a testsuites of them."""
    root = suites[0] if name is None else ET.Element("testsuites", name=name)
    if name is not None:
        root.extend(suites)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
