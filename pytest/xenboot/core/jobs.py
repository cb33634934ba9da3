"""A command running on a Xen host, the same to the xl driver whether it
runs in the embedded host's dom0 (lab/agent.py) or on this machine
(hosts.LocalXenHost)."""
import threading

from xenboot.core.errors import InfraError


class Job:
    """`on_output(stream, data)` sees "out" and "err" data as it comes, then
    ("exit", b"") once the job has ended."""

    def __init__(self, argv, on_output=None):
        self.argv = list(argv)
        self.on_output = on_output
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.status = None
        self.failure = None
        self.done = threading.Event()

    def _output(self, stream, data):
        (self.stdout if stream == "out" else self.stderr).extend(data)
        if self.on_output:
            self.on_output(stream, data)

    def _finish(self, status=None, failure=None):
        self.status, self.failure = status, failure
        self.done.set()
        if self.on_output:
            self.on_output("exit", b"")

    def wait(self, timeout):
        """The job's exit status; InfraError if it did not end by `timeout`."""
        if not self.done.wait(timeout):
            raise InfraError(f"host command {' '.join(self.argv)} did not finish in {timeout:g} s")
        if self.status is None:
            raise InfraError(f"host command {' '.join(self.argv)}: {self.failure}")
        return self.status

    def kill(self, signal=15):
        raise NotImplementedError

    @property
    def text(self):
        return (self.stdout + self.stderr).decode(errors="replace")


def run_to_end(job, timeout, check):
    status = job.wait(timeout)
    if check and status != 0:
        last = (job.text.strip().splitlines() or ["(no output)"])[-1]
        raise InfraError(f"host command {' '.join(job.argv)} exited {status}: {last}")
    return job
