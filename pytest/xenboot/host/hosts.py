"""Xen hosts the xl driver can run on, and how to pick one.

HOST=lab  the embedded host (lab/qemu.py): Xen and dom0 in QEMU, the default.
HOST=xl   this machine, when it is itself a Xen dom0: the same xl commands,
          run with subprocess; guest consoles are the ptys xenconsoled made.
"""
import functools
import glob
import os
import shutil
import signal
import subprocess
import termios
import threading
import tty as ttymod

from xenboot.core import inputs
from xenboot.host import xenlog
from xenboot.core.errors import InfraError
from xenboot.core.jobs import Job, run_to_end
from xenboot.guest.xl import xen_facts

HOST_KINDS = ("lab", "xl")
HOST = inputs.Choice(HOST_KINDS)


def _xen_tools_env():
    # Debian keeps xenctx and friends in /usr/lib/xen-<version>/bin, off PATH.
    env = dict(os.environ)
    env["PATH"] = ":".join(sorted(glob.glob("/usr/lib/xen-*/bin")) + [env.get("PATH", "/usr/bin:/bin")])
    return env


class LocalJob(Job):
    def __init__(self, argv, on_output=None):
        super().__init__(argv, on_output)
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, start_new_session=True,
                                         env=_xen_tools_env())
        except OSError as e:
            raise InfraError(f"cannot run {argv[0]}: {e}") from None
        readers = [threading.Thread(target=self._pump, args=(pipe, stream), daemon=True)
                   for pipe, stream in ((self.proc.stdout, "out"), (self.proc.stderr, "err"))]
        for r in readers:
            r.start()
        threading.Thread(target=self._reap, args=(readers,), daemon=True).start()

    def _pump(self, pipe, stream):
        for chunk in iter(lambda: pipe.read1(65536), b""):
            self._output(stream, chunk)

    def _reap(self, readers):
        status = self.proc.wait()
        for r in readers:
            r.join()
        self._finish(status if status >= 0 else 128 - status)

    def kill(self, sig=signal.SIGTERM):
        if not self.done.is_set():
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass


class PtyAttachment:
    def __init__(self, fd):
        self.fd = fd

    def ended(self):
        """Never by itself: a pty xenconsoled lets go of reads as the end
        of the console."""
        return None

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class LocalXenHost:
    """This machine as the Xen host: needs to be dom0 with xl on PATH."""

    kind = "xl"
    # A real dom0's syslog is the machine's, not the run's: not copied.
    dom0_logs = ()

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.jobs = []
        self.timings = {}

    def start(self):
        if not os.path.exists("/proc/xen/capabilities"):
            raise InfraError("HOST=xl needs this machine to be a Xen dom0 "
                             "(/proc/xen/capabilities is missing): use HOST=lab")
        if shutil.which("xl") is None:
            raise InfraError("HOST=xl: xl not found on PATH: install Xen's tools (xen-utils)")

    def stop(self):
        # Whatever xl processes this run started end with it.
        for job in self.jobs:
            job.kill(signal.SIGKILL)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def run(self, argv, timeout=60, check=True):
        return run_to_end(self.start_job(argv), timeout, check)

    def start_job(self, argv, on_output=None):
        job = LocalJob(argv, on_output)
        self.jobs.append(job)
        return job

    def stage_file(self, host_path):
        return os.path.abspath(host_path)

    def wait_visible(self, host_path):
        """xl reads this machine's own file system: nothing to wait for."""
        return None

    def read_file(self, path):
        """A file's bytes, or None when it is not there."""
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def xen_console(self):
        """Xen's console from now on: its ring, polled with `xl dmesg`."""
        return xenlog.DmesgSource(self)

    @functools.cached_property
    def xen_facts(self):
        """xl.xen_facts of this machine's Xen, asked once per run."""
        return xen_facts(self)

    def attach_console(self, tty, timeout=30):
        fd = os.open(tty, os.O_RDWR | os.O_NOCTTY)
        # Raw, no echo: bytes pass unchanged, typed input is not reflected.
        ttymod.setraw(fd, termios.TCSANOW)
        return PtyAttachment(fd)

    def describe(self):
        return {"kind": self.kind}


def check_host_kind(kind):
    return HOST(kind, "HOST", None)
