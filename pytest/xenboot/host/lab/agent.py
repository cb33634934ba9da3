"""Harness side of the dom0 agent's control protocol (images/dom0/agent.c).

One reader thread parses the agent's lines and hands output and exit status
to the job they belong to; callers block on events with deadlines, and a dead
channel (QEMU gone, agent gone) wakes every waiter with the reason.
"""
import itertools
import threading

from xenboot.core.errors import InfraError
from xenboot.core.jobs import Job, run_to_end


class AgentJob(Job):
    def __init__(self, agent, job_id, argv, on_output=None):
        super().__init__(argv, on_output)
        self.agent = agent
        self.id = job_id

    def kill(self, signal=15):
        if not self.done.is_set():
            self.agent._send(f"kill {self.id} {int(signal)}")


class Agent:
    """`closed()`, if given, says why the channel closed (its cause may
    take a moment to show: QEMU closes the channel as it exits)."""

    def __init__(self, sock, closed=None):
        self.sock = sock
        self._closed = closed
        self.jobs = {}
        self.ids = itertools.count(1)
        self.ready = threading.Event()
        self.got_ready = False
        self.dead_reason = None
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read_loop, name="agent-reader", daemon=True)
        self.reader.start()

    def _send(self, line):
        with self.lock:
            if self.dead_reason:
                raise InfraError(f"dom0 agent: {self.dead_reason}")
            self.sock.sendall(line.encode() + b"\n")

    def start(self, argv, on_output=None):
        job = AgentJob(self, str(next(self.ids)), argv, on_output)
        self.jobs[job.id] = job
        self._send(" ".join(["run", job.id] + [a.encode().hex() for a in job.argv]))
        return job

    def run(self, argv, timeout=60, check=True):
        """Run argv in dom0 to completion; raise InfraError on failure if `check`."""
        return run_to_end(self.start(argv), timeout, check)

    def wait_ready(self, timeout):
        self.ready.wait(timeout)
        if not self.got_ready:
            raise InfraError(self.dead_reason or f"dom0 agent not ready after {timeout:g} s")

    def mark_dead(self, reason):
        """Wake every waiter: nothing more will come from this channel."""
        if self.dead_reason is None:
            self.dead_reason = reason
        self.ready.set()
        for job in list(self.jobs.values()):
            job._finish(failure=reason)

    def _read_loop(self):
        buf = b""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                buf += data
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    self._dispatch(line.decode("ascii", errors="replace").split(" "))
        except OSError as e:
            self.mark_dead(f"control channel failed: {e}")
        except Exception as e:  # noqa: BLE001 - a waiter must hear of it, not time out
            self.mark_dead(f"control channel reader failed: {e!r}")
        self.mark_dead(self._closed() if self._closed else "control channel closed")

    def _dispatch(self, fields):
        kind = fields[0]
        if kind == "ready":
            self.got_ready = True
            self.ready.set()
            return
        if kind == "error" and fields[1] == "-":
            # A line the agent could tie to no job: the two sides disagree
            # on the protocol, and whoever waits would wait in vain.
            self.mark_dead(f"dom0 agent refused a control line: {_text(fields[2])}")
            return
        job = self.jobs.get(fields[1]) if len(fields) > 1 else None
        if job is None:
            return
        if kind in ("out", "err"):
            job._output(kind, bytes.fromhex(fields[2]) if len(fields) > 2 else b"")
        elif kind == "error":
            # The job is over for the harness: a failed run never started,
            # and after a failed kill the harness no longer controls it.
            del self.jobs[job.id]
            job._finish(failure=f"dom0 agent, job {job.id}: {_text(fields[2])}")
        elif kind == "exit":
            del self.jobs[job.id]
            job._finish(int(fields[2]))


def _text(hex_field):
    return bytes.fromhex(hex_field).decode(errors="replace")
