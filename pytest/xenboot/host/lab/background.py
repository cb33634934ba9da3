"""A boot's own embedded host, started while its caller still builds.

The FreeBSD pipeline rebuilds the kernel and remakes the root image before
it boots; the lab's start (QEMU, the snapshot's restore, dom0's mounts)
needs none of that, so it runs beside them and the boot takes the host
when it gets there. QEMU is killed when the thread that started it ends
(PR_SET_PDEATHSIG is per thread), so that thread lives until the host
is stopped, and it is the one that stops it.
"""
import contextlib
import os
import threading

from xenboot.host.lab import cache as labcache, config as labconfig
from xenboot.host.lab.qemu import lab_host


class BackgroundStart:
    """`with BackgroundStart(out, share, ...) as early:` starts the host
    now; `early.take()` waits for it (its start's error is raised there,
    in the boot's lab stage) and hands it over as a context manager that
    stops it; leaving the `with` stops it whatever happened."""

    def __init__(self, run_dir, share, progress=print, flavour=None, cpu_profile=labconfig.PV_PROFILE):
        self.cpu_profile = cpu_profile
        self._run_dir, self._share, self._progress, self._flavour = run_dir, share, progress, flavour
        self._started = threading.Event()
        self._release = threading.Event()
        self._host = None
        self._error = None
        self._thread = threading.Thread(target=self._own, name="lab-start", daemon=True)

    def __enter__(self):
        os.makedirs(self._share, mode=0o700, exist_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _own(self):
        try:
            with lab_host(self._run_dir, self._share, progress=self._progress, flavour=self._flavour,
                          cpu_profile=self.cpu_profile) as host:
                self._host = host
                self._started.set()
                self._release.wait()
        except Exception as e:  # raised again by take(), in the boot's own thread
            self._error = e
        finally:
            self._started.set()

    @contextlib.contextmanager
    def take(self):
        self._started.wait()
        if self._error is not None:
            raise self._error
        try:
            yield self._host
        finally:
            self.stop()

    def stop(self):
        self._release.set()
        if self._thread.is_alive():
            self._thread.join()


def start_if_built(stack, run_dir, share, flavour, progress=print):
    """A BackgroundStart of the lab's `flavour`, entered into the ExitStack
    `stack`; None when the lab is not built yet: its build prints its own
    progress and takes minutes, so it stays in the boot's lab stage, after
    the kernel's build output."""
    if not labcache.LabCache(labconfig.load(), flavour=flavour).is_built():
        return None
    return stack.enter_context(BackgroundStart(run_dir, share, progress=progress, flavour=flavour))
