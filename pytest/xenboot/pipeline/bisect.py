"""`xenboot bisect`: which commit of a source tree first fails to reach a milestone.

    ci/xenboot bisect --good REV --bad REV --milestone NAME [--src DIR]
                      [--spec NAME] [--cmdline ...] [--build CMD --kernel PATH]

Runs `git bisect run` inside the source tree (freebsd-src by default). Each
step builds the kernel at the checked-out commit and boots it; the commit is
good when the boot reached NAME, bad when it did not, skipped (exit 125) when
it does not build. A boot that ends INFRA is tried twice more, then the
bisection stops: a broken harness must not blame a commit. GOOD and BAD are
checked first the same way, so the range is known to hold a regression and
the answer comes with its own console log.

FreeBSD trees are built with `xenboot kernel`; any other tree (the test
fixture: the probe kernel with a planted regression) with --build, an argv
run in the tree, and --kernel, the file it leaves there.

The tree must be clean (no changes to tracked files); it is back on the
commit or branch it was on when this returns. Everything lands in the run
folder: bisect.log (git's own words), steps/<commit>/ per step (build.log,
kernel, boot-<n>/ boot folders, step.json).
"""
import argparse
import contextlib
import functools
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys

from xenboot.build import build, driver, source
from xenboot.core import inputs, paths, result
from xenboot.image import image
from xenboot.judge import spec as specs
from xenboot.pipeline import freebsd
from xenboot.pipeline.boot import CMDLINE, DISK, MEMORY, BootRequest, boot
from xenboot.pipeline.freebsd import freebsd_flavour
from xenboot.host.hosts import HOST
from xenboot.core.errors import BadInput, BuildFailed, EXIT_PASS, HarnessError, InfraError, Verdict
from xenboot.console.progress import Progress

GOOD, BAD, SKIP = 0, 1, 125
# Any status above 127 makes `git bisect run` stop where it is.
ABORT = 255
MAX_ATTEMPTS = 3
CONFIG = "bisect.json"
LOG_LINES = 200
REV = inputs.Text("give a commit of the source tree",
                  problem=lambda rev: "looks like a git option" if rev.startswith("-") else None)


def _split_problem(command):
    try:
        return None if shlex.split(command) else "is empty"
    except ValueError as e:
        return f"cannot be split into words ({e})"


def _outside_problem(path):
    if os.path.isabs(path) or ".." in pathlib.PurePath(path).parts:
        return "is not a path inside the tree"
    return None


BUILD = inputs.Text("give the build command as the shell would read it", problem=_split_problem)
TREE_PATH = inputs.Text("give the kernel file's path relative to the tree", problem=_outside_problem)


def _run_folder(out, args, what):
    """--out: a new run folder, or one without another bisection's answers."""
    if out and (pathlib.Path(out) / CONFIG).exists():
        raise BadInput(f"{what} {out} already holds a bisection: its answers are for its own range; "
                       "pick a new folder")
    return result.run_dir(out, "bisect", what)


def git(src, *argv, check=True):
    return source.git(src, *argv, check=check)


def resolve(src, rev, what):
    proc = git(src, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if proc.returncode != 0:
        raise BadInput(f"{what} {rev!r}: no such commit in {src}")
    return proc.stdout.strip()


def subject(src, commit):
    return git(src, "log", "-1", "--format=%s", commit).stdout.strip()


# -- one step: build and boot the checked-out commit ------------------------------

def _build(config, src, folder):
    """The kernel of the checked-out tree, copied into the step folder
    (the next checkout changes the tree)."""
    kernel = folder / "kernel"
    if config["build"]:
        log = folder / "build.log"
        with open(log, "wb") as f:
            try:
                proc = subprocess.run(config["build"], cwd=src, stdout=f, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
            except OSError as e:
                raise BadInput(f"--build {config['build'][0]}: cannot run: {e.strerror}") from None
        built = src / config["kernel"]
        if proc.returncode != 0 or not built.is_file():
            error = driver.first_error(log.read_text(errors="replace"))
            raise BuildFailed(f"build exited {proc.returncode}: {error}" if proc.returncode
                              else f"the build left no {config['kernel']}")
        shutil.copyfile(built, kernel)
        return kernel
    info = {}
    built = build.build_kernel(folder, info, src=src, kernconf=config["kernconf"])
    result.write_json(str(folder / "build.json"), info)
    return built


def step(config, src, commit, progress=print):
    """Builds and boots `commit` (checked out in src) once per bisection
    (the endpoints come up again inside `git bisect run`); the answer is
    steps/<commit>/step.json."""
    folder = pathlib.Path(config["out"]) / "steps" / commit
    known = folder / "step.json"
    if known.is_file():
        return json.loads(known.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    answer = {"commit": commit, "subject": subject(src, commit)}
    try:
        kernel = _build(config, src, folder)
    except BuildFailed as e:
        answer.update(status="skip", verdict=Verdict.BUILD_FAILED.value, message=e.message)
        result.write_json(str(known), answer)
        return answer
    for attempt in range(1, MAX_ATTEMPTS + 1):
        run = folder / f"boot-{attempt}"
        req = BootRequest(kernel=str(kernel), spec=config["spec"], cmdline=config["cmdline"],
                          host=config["host"], memory_mb=config["memory"], disk=config["disk"],
                          out_dir=str(run),
                          lab=freebsd_flavour(config["host"]))
        data = boot(req, progress=lambda line: None).data
        if not Verdict(data["verdict"]).retryable:
            break
        progress(f"bisect: {commit[:12]}: INFRA ({data['message']}), attempt {attempt} of {MAX_ATTEMPTS}")
    reached = [m["name"] for m in data.get("milestones") or []]
    status = ("abort" if Verdict(data["verdict"]).retryable else
              "good" if config["milestone"] in reached else "bad")
    answer.update(status=status, verdict=data["verdict"], message=data.get("message"),
                  milestones=reached, run=str(run))
    result.write_json(str(known), answer)
    return answer


def describe(answer):
    return (f"{answer['commit'][:12]} {answer['subject']}: {answer['status']} "
            f"({answer['verdict']}: {answer.get('message') or ''})")


def step_main(argv):
    """What `git bisect run` runs at each commit: exit 0 good, 1 bad, 125 skip."""
    config = json.loads(pathlib.Path(argv[0]).read_text())
    src = pathlib.Path(config["src"])
    commit = git(src, "rev-parse", "HEAD").stdout.strip()
    answer = step(config, src, commit)
    print(f"xenboot bisect step: {describe(answer)}", flush=True)
    return {"good": GOOD, "bad": BAD, "skip": SKIP}.get(answer["status"], ABORT)


# -- the bisection ------------------------------------------------------------------

def _tree(src_arg, build_argv):
    """The tree to bisect: any git work tree with --build, else a FreeBSD tree."""
    if build_argv:
        if not src_arg:
            raise BadInput("--build needs --src: the tree it builds in")
        src = pathlib.Path(src_arg).resolve()
    else:
        src = source.find_source(src_arg)
    top = git(src, "rev-parse", "--show-toplevel", check=False)
    if top.returncode != 0 or pathlib.Path(top.stdout.strip()).resolve() != src:
        raise BadInput(f"{src}: not the top of a git work tree; bisect needs the source's own history")
    if git(src, "status", "--porcelain", "--untracked-files=no").stdout.strip():
        raise BadInput(f"{src}: has uncommitted changes; commit or stash them first "
                       "(bisecting checks out other commits)")
    in_progress = git(src, "rev-parse", "--git-path", "BISECT_START").stdout.strip()
    if (src / in_progress).exists():
        raise BadInput(f"{src}: a bisection is already in progress there; `git bisect reset` ends it")
    return src


@contextlib.contextmanager
def _restored(src):
    """The tree goes back to its branch (or detached commit) afterwards."""
    branch = git(src, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).stdout.strip()
    where = branch or git(src, "rev-parse", "HEAD").stdout.strip()
    try:
        yield
    finally:
        git(src, "bisect", "reset", check=False)
        git(src, "checkout", "--quiet", where, check=False)


def _check_endpoint(config, src, commit, expect, what, progress):
    progress.stage(f"bisect: {what} {commit[:12]}")
    git(src, "checkout", "--quiet", "--detach", commit)
    answer = step(config, src, commit, progress)
    progress(f"bisect: {what} {describe(answer)}")
    if answer["status"] == "abort":
        raise InfraError(f"{what} {commit[:12]}: the boot stayed INFRA after {MAX_ATTEMPTS} "
                         f"attempts: {answer['message']}")
    if answer["status"] != expect:
        raise BadInput(f"{what} {commit[:12]} is {answer['status']}, not {expect} "
                       f"({answer['verdict']}: {answer['message']}); not a regression range "
                       f"for milestone {config['milestone']!r}")


def bisect(good, bad, milestone, src=None, spec="freebsd-xen-pv", cmdline="", host="lab",
           disk=None, memory=None, kernconf="XEN", build_cmd=None, kernel=None, out=None, progress=None):
    """Returns {"first_bad": step answer or None, "candidates": [...], "out": folder}."""
    progress = progress or Progress()
    build_argv = shlex.split(build_cmd) if build_cmd else None
    if build_argv and not kernel:
        raise BadInput("--build needs --kernel: the file, relative to the tree, that it builds")
    loaded = specs.load_spec(spec)
    names = [m.name for m in loaded.milestones]
    if milestone not in names:
        raise BadInput(f"--milestone {milestone!r} is not in spec {spec}: {', '.join(names)}")
    src = _tree(src, build_argv)
    good_commit, bad_commit = resolve(src, good, "--good"), resolve(src, bad, "--bad")
    out = pathlib.Path(result.run_dir(out, "bisect"))
    config = {"out": str(out), "src": str(src), "milestone": milestone, "spec": spec,
              "cmdline": cmdline, "host": host, "disk": os.path.abspath(disk) if disk else None,
              "memory": memory or 128, "kernconf": kernconf, "build": build_argv,
              "kernel": kernel, "good": good_commit, "bad": bad_commit}
    if not build_argv:
        # FreeBSD boots as `make boot` boots it, with the root image made
        # once: it does not depend on the kernel's commit.
        config.update(cmdline=freebsd.kernel_cmdline(cmdline), memory=memory or freebsd.DEFAULT_MEMORY_MB)
        if not disk:
            progress.stage("bisect: root image")
            made = image.make_image(out / "image")
            config["disk"] = str(out / "image" / made["image"])
    result.write_json(str(out / CONFIG), config)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(paths.REPO / "pytest"), os.environ.get("PYTHONPATH")])))
    with _restored(src):
        _check_endpoint(config, src, good_commit, "good", "--good", progress)
        _check_endpoint(config, src, bad_commit, "bad", "--bad", progress)
        git(src, "bisect", "start", bad_commit, good_commit)
        progress.stage("bisect: git bisect run")
        with open(out / "bisect.log", "w") as log:
            proc = subprocess.Popen(["git", "-C", str(src), "bisect", "run", sys.executable, "-m",
                                     "xenboot.pipeline.bisect", "step", str(out / CONFIG)],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
            for line in proc.stdout:
                log.write(line)
                if line.startswith("xenboot bisect step:"):
                    progress(line.rstrip().replace("xenboot bisect step:", "bisect:"))
            proc.wait()
        found = git(src, "rev-parse", "--verify", "--quiet", "refs/bisect/bad", check=False).stdout.strip()
        text = (out / "bisect.log").read_text()
    if proc.returncode != 0 or f"{found} is the first bad commit" not in text:
        if "bisect run cannot continue" in text or "bisect run failed" in text:
            raise InfraError(f"git bisect run stopped: {text.strip().splitlines()[-1]} (see {out}/bisect.log)")
        # Skipped commits can leave several candidates; git names them.
        candidates = [line.split()[0] for line in text.splitlines()
                      if len(line.split()) == 1 and len(line.strip()) == 40]
        return {"first_bad": None, "candidates": candidates, "out": str(out)}
    answer = json.loads((out / "steps" / found / "step.json").read_text())
    return {"first_bad": answer, "candidates": [found], "out": str(out)}


def _command(args):
    with Progress() as progress:
        found = bisect(args.good, args.bad, args.milestone, src=args.src, spec=args.spec,
                       cmdline=args.cmdline, host=args.host, disk=args.disk, memory=args.memory,
                       kernconf=args.kernconf,
                       build_cmd=args.build, kernel=args.kernel, out=args.out, progress=progress)
    answer = found["first_bad"]
    if answer is None:
        print(f"xenboot: bisect: no single first bad commit (skipped commits that do not build "
              f"hide it); candidates: {' '.join(found['candidates']) or 'see bisect.log'} ({found['out']})")
        return Verdict.BUILD_FAILED.exit_status
    log = pathlib.Path(answer["run"]) / "console.log"
    lines = log.read_bytes().decode(errors="replace").splitlines() if log.is_file() else []
    print(f"--- console log of {answer['commit'][:12]} ({log}), last {min(len(lines), LOG_LINES)} lines ---")
    print("\n".join(lines[-LOG_LINES:]))
    print("--- end of console log ---")
    print(f"xenboot: bisect: first bad commit {answer['commit']} {answer['subject']}: "
          f"milestone {args.milestone!r} not reached ({answer['verdict']}: {answer.get('message') or ''}) "
          f"({found['out']})", flush=True)
    return EXIT_PASS


def add_parser(sub):
    p = sub.add_parser("bisect", help="find the first commit whose kernel no longer reaches a milestone",
                       description=__doc__.splitlines()[0])
    option = functools.partial(inputs.option, p)
    option("--good", required=True, help="a commit that reaches the milestone", check=REV)
    option("--bad", required=True, help="a later commit that does not", check=REV)
    option("--milestone", required=True, help="milestone name in the spec",
           check=inputs.Text("give the name of one of the spec's milestones"))
    option("--src", help="source tree (default: $FREEBSD_SRC, else freebsd-src)", check=source.SRC)
    option("--spec", default="freebsd-xen-pv", help="milestone spec (default freebsd-xen-pv)",
           check=specs.SPEC_INPUT)
    option("--cmdline", default="", help="guest kernel command line", check=CMDLINE)
    option("--host", default="lab", help="lab or xl", check=HOST)
    option("--disk", help="disk image for every step (default for FreeBSD: `xenboot image`'s, made once)",
           check=DISK)
    option("--memory", help="guest MiB (default 256 for FreeBSD, else 128)", check=MEMORY)
    option("--kernconf", default="XEN", help="FreeBSD kernel config (default XEN)", check=build.KERNCONF)
    option("--build", help="a tree that is not FreeBSD: the build command, run in the tree", check=BUILD)
    option("--kernel", help="with --build: the kernel file it leaves, relative to the tree", check=TREE_PATH)
    option("--out", help="run folder (default out/bisect/<UTC time>-<id>)", check=inputs.RunFolder(_run_folder))
    p.set_defaults(func=_command)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python3 -m xenboot.pipeline.bisect")
    parser.add_argument("what", choices=["step"])
    parser.add_argument("config")
    parsed = parser.parse_args()
    try:
        sys.exit(step_main([parsed.config]))
    except Exception as e:
        # Exit 1 would blame the commit for a harness failure: stop instead.
        what = f"{e.verdict.value}: {e.message}" if isinstance(e, HarnessError) else repr(e)
        print(f"xenboot bisect step: {what}", flush=True)
        sys.exit(ABORT)
