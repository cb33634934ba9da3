"""Running the machine's tools: one way to say that one is missing or failed."""
import subprocess

from xenboot.errors import InfraError


def last_line(text):
    return (text.strip().splitlines() or ["no message"])[-1]


def run(argv, what, cwd=None, env=None, check=True):
    """subprocess.run with text output captured. A tool that is not installed,
    or (with `check`) that fails, is an InfraError naming `what` and the
    tool's last line of complaint."""
    try:
        proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True)
    except FileNotFoundError:
        raise InfraError(f"{what}: {argv[0]} is not installed: run `ci/deps install`") from None
    if check and proc.returncode != 0:
        raise InfraError(f"{what} failed: {last_line(proc.stderr)}")
    return proc
