"""A test not marked `lab` must start no Xen host (QEMU's embedded lab, or
this machine's xl): conftest.py refuses it in the test's own process, and
puts this folder on PYTHONPATH so that Python reads this module at start-up
and refuses it in every child process the test runs (ci/xenboot boot ...).
A refused start is written to $XENBOOT_TEST_UNMARKED_HOSTS, which the test's
report reads: the marker cannot silently go missing."""
import importlib.util
import os

RECORD = "XENBOOT_TEST_UNMARKED_HOSTS"


class UnmarkedHost(BaseException):
    """A BaseException, so that no `except Exception` in the harness turns
    the refusal into an INFRA verdict the test might expect."""


def refuse_hosts(record):
    """Every host's start(), from now on, writes one line to the file
    record() names (None: start as usual) and raises UnmarkedHost."""
    from xenboot.host.hosts import LocalXenHost
    from xenboot.host.lab.qemu import EmbeddedHost
    for cls in (EmbeddedHost, LocalXenHost):
        cls.start = _refusing(cls.start, record)


def _refusing(start, record):
    def refused(host):
        path = record()
        if path is None:
            return start(host)
        with open(path, "a") as f:
            f.write(f"{type(host).__name__}.start() in pid {os.getpid()}\n")
        raise UnmarkedHost(f"{type(host).__name__}.start() in a test not marked lab")
    return refused


# Python's own start-up: only in a test's child that can import the harness
# (pyflakes, run by test_lint, cannot).
if os.environ.get(RECORD) and importlib.util.find_spec("xenboot") is not None:
    refuse_hosts(lambda: os.environ[RECORD])
