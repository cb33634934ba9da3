"""Running the machine's tools: one way to say that one is missing or failed."""
import functools
import os
import subprocess

from xenboot.core import paths
from xenboot.core.errors import InfraError


def last_line(text):
    return (text.strip().splitlines() or ["no message"])[-1]


@functools.cache
def _packages():
    """{program: Debian package} from ci/packages, the list ci/deps installs."""
    owner = {}
    for line in (paths.REPO / "ci" / "packages").read_text().splitlines():
        words = line.split("#", 1)[0].split()
        for program in words[1:]:
            owner[program] = words[0]
    return owner


def install_hint(program):
    """What to run to get `program`: its package from ci/packages."""
    package = _packages().get(os.path.basename(str(program)))
    return f"apt-get install {package} (or `ci/deps install`)" if package else "`ci/deps install`"


def missing(program, what=None):
    """The InfraError for a program that is not installed."""
    return InfraError(f"{what + ': ' if what else ''}{program} is not installed: run {install_hint(program)}")


def _run(argv, what, **options):
    try:
        return subprocess.run([str(a) for a in argv], **options)
    except FileNotFoundError:
        raise missing(argv[0], what) from None


def run(argv, what, cwd=None, env=None, check=True, input=None, timeout=None):
    """subprocess.run with text output captured (and `input` its stdin). A tool that is not installed,
    or (with `check`) that fails, or outlives `timeout` seconds (then it is
    killed), is an InfraError naming `what`, the package to install, or the
    tool's last line of complaint."""
    try:
        proc = _run(argv, what, cwd=cwd, env=env, capture_output=True, text=True, input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise InfraError(f"{what}: no answer in {timeout:g} s") from None
    if check and proc.returncode != 0:
        raise InfraError(f"{what} failed: {last_line(proc.stderr)}")
    return proc


def run_to_log(argv, what, log):
    """A build whose output (stdout and stderr as it interleaved them) goes to
    the open file `log`, with no stdin. Not installed: an InfraError naming
    the package; its exit status is the caller's to judge, from the log."""
    return _run(argv, what, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
