"""The embedded Xen host as a running QEMU: start it, reach its dom0, stop it.

Channels (all unix sockets in a private 0700 folder, nothing on the network;
QEMU connects to sockets the harness already listens on, so there is no
window in which QEMU runs and nobody listens):
  serial          Xen + dom0 console      -> host.log (file chardev)
  xenboot.control virtio-serial port      <-> dom0 agent (lab/agent.py)
  xenboot.consoleN virtio-serial ports    <-> guest consoles, one each
  9p "xenboot"    the run's share folder, in dom0 at /share
"""
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from xenboot.core.errors import InfraError
from xenboot.host.lab import accel, cache as labcache, config as labconfig
from xenboot.host.lab.agent import Agent
from xenboot.host.lab.dom0 import DOM0_SHARE, Dom0Driver
from xenboot.host.lab.qmp import Qmp
from xenboot.core.text import console_tail

SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; keep a margin
CONTROL_PORT = "xenboot.control"
DOM0_HOST_ROOT = "/hostroot"
# Ends the line host.log's copy of the snapshot's boot messages ends with.
LIVE_FROM_HERE = "; live from here ---\n"
# Bump when the machine QEMU is given changes shape for the same inputs.
SNAPSHOT_FORMAT = 2




def _opt(value):
    """A value inside a QEMU -opt list: commas are doubled."""
    return str(value).replace(",", ",,")


def _boot_log(snapshot):
    return snapshot.with_suffix(".host.log")


def _drain(sock, index, quiet=0.2, limit=5):
    """Drop what a port's last user left unread, so the next guest's console
    starts clean. A flooding guest's relay wrote until it was killed: what
    dom0 had queued for the port follows as soon as the socket has room, so
    once there was something, it is read until the port has been `quiet`
    that long; nothing there at all costs nothing. A port that keeps
    talking for `limit` seconds still has a writer: INFRA, not a hang."""
    deadline = time.monotonic() + limit
    sock.settimeout(0)
    try:
        while sock.recv(65536):
            if time.monotonic() > deadline:
                raise InfraError(f"console port {index} still receives {limit} s after its last user let go of it")
            sock.settimeout(quiet)
    except (BlockingIOError, socket.timeout):
        pass
    finally:
        sock.settimeout(None)


def tail(path, lines=5):
    """The last lines of a log, on one line, for an error message."""
    return " | ".join(console_tail(path, lines))


class EmbeddedHost(Dom0Driver):
    def __init__(self, config, cache, run_dir, share_dir, accelerator, cpu, host_root=False, tcg_threads=None):
        self.config = config
        self.cpu_profile, self.cpu_model = cpu
        # This machine's / read-only at /hostroot in dom0: for running the
        # harness itself inside dom0, where HOST=xl is tested for real.
        self.host_root = host_root
        self.cache = cache
        self.run_dir = run_dir
        self.share_dir = share_dir
        self.accelerator = accelerator
        # lab.toml's, unless the caller knows it runs other hosts at once.
        self.tcg_threads = (tcg_threads or config["qemu"]["tcg_threads"]) if accelerator == "tcg" else None
        self.host_log = os.path.join(run_dir, "host.log")
        self.proc = None
        self.agent = None
        self.consoles = []
        self.free_ports = []
        self.ports_lock = threading.Lock()
        self.timings = {}
        self._private = None
        self._own_private = False
        self._channels = []  # QMP and control sockets, closed with the consoles
        self._stderr = None
        self.qemu = None
        self.qemu_version = None
        self.snapshot = None

    # -- lifecycle ----------------------------------------------------------

    def start(self):
        files = self.cache.host_files()
        q = self.config["qemu"]
        self.qemu = self.cache.qemu_command()
        if shutil.which(self.qemu[0]) is None:
            raise InfraError(f"QEMU {self.qemu[0]} not found: run `make lab` "
                             f"(or unset {labcache.QEMU_ENV})")
        self.qemu_version = labcache.qemu_version(self.qemu)
        self._private = self._private_dir()
        listeners = {name: self._listen(name) for name in
                     ["qmp", "control"] + [f"console{i}" for i in range(q["console_ports"])]}
        # Multiboot module names cannot hold commas; links in the private
        # folder give QEMU plain paths whatever the cache path is.
        for name in ("xen.elf", "vmlinux", "initramfs.cpio"):
            os.symlink(files[name], os.path.join(self._private, name))
        snapshot = self.cache.snapshot_path(self._snapshot_inputs()) if q["snapshot"] else None
        self.snapshot = snapshot
        warm = snapshot is not None and snapshot.is_file() and _boot_log(snapshot).is_file()
        argv = self._argv(listeners)
        if warm:
            # Xen's and dom0's boot messages were printed when the snapshot
            # was taken; host.log starts with them, then goes on live.
            shutil.copyfile(_boot_log(snapshot), self.host_log)
            with open(self.host_log, "a") as f:
                f.write(f"\n--- xenboot: host restored from {snapshot.name}{LIVE_FROM_HERE}")
        t0 = time.monotonic()
        incoming = ()
        try:
            if warm:
                # QEMU reads the snapshot from an inherited descriptor
                # itself, where exec:cat costs a fork and a pipe; fd: is in
                # every QEMU (file: only from 8.2; XENBOOT_QEMU may be older).
                incoming = (os.open(snapshot, os.O_RDONLY | os.O_CLOEXEC),)
                argv += ["-incoming", f"fd:{incoming[0]}"]
            with open(os.path.join(self.run_dir, "qemu.argv"), "w") as f:
                f.write(" ".join(argv) + "\n" + (f"# fd {incoming[0]}: {snapshot}\n" if incoming else ""))
            self._stderr = open(os.path.join(self.run_dir, "qemu.stderr"), "wb")
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, pass_fds=incoming,
                                         stdout=subprocess.DEVNULL, stderr=self._stderr,
                                         preexec_fn=accel.die_with_parent, start_new_session=True)
            qmp_sock = self._accept(listeners.pop("qmp"))
            self._channels.append(qmp_sock)
            control = self._accept(listeners.pop("control"))
            self._channels.append(control)
            for i in range(q["console_ports"]):
                self.consoles.append(self._accept(listeners.pop(f"console{i}")))
        finally:
            for fd in incoming:
                os.close(fd)
            for listener in listeners.values():
                listener.close()
        self.timings["qemu_up"] = round(time.monotonic() - t0, 3)
        self.free_ports = list(range(len(self.consoles)))
        self.agent = Agent(control, closed=lambda: self._qemu_exit(timeout=10))
        threading.Thread(target=self._qemu_exit, name="qemu-watch", daemon=True).start()
        self.qmp = Qmp(qmp_sock)
        if warm:
            self._resume(snapshot, q["ready_timeout"])
            self.timings["restored"] = round(time.monotonic() - t0, 3)
        else:
            self.agent.wait_ready(q["ready_timeout"])
            if snapshot is not None:
                self._save_snapshot(snapshot)
        self.timings["from_snapshot"] = warm
        # Large messages, and page-cached mmap: Xen's domain builder mmaps the
        # kernel, which uncached 9p turns into a round trip per 4 KiB page
        # (6 s for a Linux kernel under TCG). Names and attributes stay
        # uncached on the share: run folders appear in it while guests run
        # on a shared host. This machine's root does not change under dom0.
        # The first mount's answer is also the proof a restored dom0 runs.
        mounts = [("xenboot", DOM0_SHARE, "cache=mmap,rw")]
        if self.host_root:
            mounts.append(("hostroot", DOM0_HOST_ROOT, "cache=loose,ro"))
        for tag, where, mode in mounts:
            self.agent.run(["mount", "-t", "9p", "-o", f"trans=virtio,version=9p2000.L,msize=512000,{mode}",
                            tag, where], timeout=q["ready_timeout"])
        self.timings["dom0_ready"] = round(time.monotonic() - t0, 3)

    def _snapshot_inputs(self):
        q = dict(self.config["qemu"], cpu=self.cpu_model)
        # Under KVM the saved CPU state is the real CPU's; TCG's is emulated.
        cpu = accel.cpu_fingerprint() if self.accelerator == "kvm" else "tcg"
        return {"format": SNAPSHOT_FORMAT, "qemu": [self.qemu_version], "cpu": cpu,
                "host_root": self.host_root, "xen_layer": self.cache.xen_key,
                "xen": self.config["xen"]["cmdline"], "dom0": self.config["dom0"]["cmdline"],
                "machine": {k: q[k] for k in ("memory_mb", "cpus", "cpu", "console_ports")}}

    def _save_snapshot(self, path):
        """Freeze the just-booted dom0 (before the per-run share is mounted,
        which would block migration) so the next host starts from here."""
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            self.qmp.execute("migrate-set-capabilities",
                             capabilities=[{"capability": "events", "state": True}])
            self.qmp.execute("migrate", uri=f"exec:cat > {shlex.quote(tmp)}")
            event = self.qmp.wait_event("MIGRATION", 120,
                                        lambda d: d.get("status") in ("completed", "failed", "cancelled"))
            if event["data"]["status"] != "completed":
                raise InfraError(f"saving the lab snapshot failed: {event['data']['status']}")
            shutil.copyfile(self.host_log, _boot_log(path))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._cont_after_migration()

    def _cont_after_migration(self, timeout=30):
        """`cont` once QEMU lets the saved VM run again: QEMU 10 sends the
        "completed" event a moment before its migration is finalized and
        refuses `cont` until then."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.qmp.execute("cont")
                return
            except InfraError as e:
                if "not finalized" not in e.message or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def _resume(self, snapshot, timeout):
        """Wait until QEMU has loaded `snapshot` and runs it. A restored
        dom0 said `ready` long ago, in the snapshot's past. A snapshot QEMU
        cannot load (truncated, or from another build) is removed, so the
        next start boots cold and saves a good one."""
        self.agent.ready.set()
        self.agent.got_ready = True
        try:
            # RESUME may have come before QMP's negotiation, which drops it.
            if self.qmp.execute("query-status")["status"] != "running":
                self.qmp.wait_event("RESUME", timeout)
        except InfraError as failed:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                # QEMU still runs: the snapshot loaded, something else failed.
                raise failed from None
            for path in (snapshot, _boot_log(snapshot)):
                path.unlink(missing_ok=True)
            raise InfraError(f"restoring the lab snapshot {snapshot} failed, so it is removed "
                             f"(the next start boots cold): {self._qemu_exit()}") from None

    def stop(self):
        """Stop QEMU (and with it every dom0 process and guest)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for sock in self.consoles + self._channels:
            sock.close()
        if self._stderr:
            self._stderr.close()
        if self._private and self._own_private:
            shutil.rmtree(self._private, ignore_errors=True)

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def flavour(self):
        return self.cache.flavour

    @property
    def qemu_pid(self):
        return self.proc.pid

    def take_port(self):
        with self.ports_lock:
            if not self.free_ports:
                raise InfraError(f"all {len(self.consoles)} console ports are in use: "
                                 f"raise [qemu] console_ports in configs/lab.toml")
            index = self.free_ports.pop(0)
        try:
            _drain(self.consoles[index], index)
        except InfraError:
            self.give_port(index)
            raise
        return index, self.consoles[index]

    def give_port(self, index):
        with self.ports_lock:
            self.free_ports.append(index)

    def describe(self):
        return {"kind": self.kind, "accelerator": self.accelerator, "flavour": self.cache.flavour,
                "qemu_version": self.qemu_version, "cpu_profile": self.cpu_profile, "cpu_model": self.cpu_model,
                "vcpus": self.config["qemu"]["cpus"],
                "tcg_threads": self.tcg_threads,
                "packages": self.cache.packages_key, "host_layer": self.cache.host_key,
                "xen_layer": self.cache.xen_key}

    # -- internals ----------------------------------------------------------

    def _private_dir(self):
        path = os.path.join(self.run_dir, "lab")
        if len(path) + 20 < SOCKET_PATH_MAX and "," not in path:
            # Left by a run of this folder that was killed: its sockets and
            # links mean nothing now.
            shutil.rmtree(path, ignore_errors=True)
            os.makedirs(path, mode=0o700)
            return path
        self._own_private = True
        return tempfile.mkdtemp(prefix="xenboot-")

    def _listen(self, name):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(os.path.join(self._private, name + ".sock"))
        sock.listen(1)
        return sock

    def _accept(self, listener):
        listener.settimeout(30)
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            raise InfraError(f"QEMU did not connect to its channels: {tail(self.run_dir + '/qemu.stderr')}") from None
        conn.settimeout(None)
        return conn

    def _qemu_exit(self, timeout=None):
        """Waits for QEMU to exit (`timeout` at most), wakes every waiter
        on dom0 with how, and returns it."""
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return f"the control channel closed; QEMU still runs {timeout:g} s later"
        if status < 0:
            # Killed from outside: its logs cannot say why.
            reason = f"QEMU killed by {signal.Signals(-status).name}"
        else:
            why = tail(os.path.join(self.run_dir, "qemu.stderr")) or tail(self.host_log)
            reason = f"QEMU exited with status {status}" + (f": {why}" if why else "")
        self.agent.mark_dead(reason)
        return reason

    def _argv(self, listeners):
        q, p = self.config["qemu"], self._private
        dom0_cmdline = " ".join(self.config["dom0"]["cmdline"])
        argv = [*self.qemu, "-nodefaults", "-no-user-config", "-display", "none",
                "-no-reboot", "-accel",
                f"tcg,thread={self.tcg_threads}" if self.tcg_threads else self.accelerator,
                "-cpu", self.cpu_model, "-m", str(q["memory_mb"]), "-smp", str(q["cpus"]),
                "-kernel", os.path.join(p, "xen.elf"),
                "-append", " ".join(self.config["xen"]["cmdline"]),
                "-initrd", f"{p}/vmlinux {_opt(dom0_cmdline)},{p}/initramfs.cpio",
                "-chardev", f"file,id=serial,path={_opt(self.host_log)},append=on",
                "-serial", "chardev:serial",
                "-device", "virtio-serial-pci,id=vser",
                # Writable: a guest's disk is the run folder's own copy.
                "-fsdev", f"local,id=share,path={_opt(self.share_dir)},security_model=none",
                "-device", "virtio-9p-pci,fsdev=share,mount_tag=xenboot"]
        if self.host_root:
            argv += ["-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on",
                     "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot"]
        argv += ["-chardev", f"socket,id=qmp,path={_opt(os.path.join(p, 'qmp.sock'))}",
                 "-mon", "chardev=qmp,mode=control"]
        for name in listeners:
            if name == "qmp":
                continue
            port = CONTROL_PORT if name == "control" else f"xenboot.{name}"
            argv += ["-chardev", f"socket,id={name},path={_opt(os.path.join(p, name + '.sock'))}",
                     "-device", f"virtserialport,bus=vser.0,chardev={name},name={port}"]
        return argv


def lab_host(run_dir, share, lab_config=None, progress=print, host_root=False,
             flavour=None, freebsd=False, cpu_profile=labconfig.PV_PROFILE, tcg_threads=None):
    """An embedded host (not started yet) for configs/lab.toml or
    `lab_config` (a path or a loaded config), of `flavour` (None: the
    default for a FreeBSD boot or not) and `cpu_profile` (lab.toml
    [cpu_profiles]), its cache built if need be, whose dom0 sees `share`;
    `tcg_threads` "single" for one of several hosts run at once."""
    config = labconfig.load(lab_config)
    cpu = labconfig.cpu_profile(config, cpu_profile)
    cache = labcache.LabCache(config, flavour=flavour, freebsd=freebsd)
    files = cache.ensure(log=progress)
    return EmbeddedHost(config, cache, run_dir, share, accel.choose(config, cache, files, cpu.model), cpu, host_root,
                        tcg_threads)
