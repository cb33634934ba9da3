"""What the xl driver needs of an embedded host's dom0 (the same on
hosts.LocalXenHost): its agent's jobs, the share folder as dom0 sees it,
Xen's console, and console streams relayed to virtio-serial ports.

Two hosts drive a dom0 this way: the QEMU a run starts itself
(qemu.EmbeddedHost) and one a lab server runs for several runs
(remote.RemoteHost). They differ only in where a port comes from:
`take_port()` -> (index, socket), `give_port(index)`.
"""
import functools
import os
import threading
import time

from xenboot.core.errors import InfraError
from xenboot.guest import xl
from xenboot.host import xenlog

DOM0_SHARE = "/share"
# gdbsx of domain N listens on dom0's loopback port BASE+N.
GDBSX_PORT_BASE = 9000


def console_port(index):
    return f"xenboot.console{index}"


class ConsoleAttachment:
    """A console byte stream (`fd`, `sock`) relayed by a dom0 `relay` job;
    `close()` stops the relay and frees the port."""

    def __init__(self, sock, relay, release):
        self.sock = sock
        self.fd = sock.fileno()
        self.relay = relay
        self._release = release
        # Two owners may close it at once (gdb.GdbServer's bridge and its
        # close()): the port is given back once, and both return after.
        self._lock = threading.Lock()

    def ended(self):
        """None while dom0's relay runs, else how it ended: the port does
        not close when dom0's side does; the job's end says so."""
        if not self.relay.done.is_set():
            return None
        said = self.relay.stderr.decode(errors="replace").strip()[-200:]
        how = f"exit status {self.relay.status}" if self.relay.status is not None else self.relay.failure
        return f"the console relay in dom0 ended ({how}{': ' + said if said else ''})"

    def close(self):
        with self._lock:
            if self._release:
                release, self._release = self._release, None
                release()


class Dom0Driver:
    """Needs `agent` (lab/agent.py), `share_dir`, `host_log`, `flavour`,
    `qemu_pid` and the two port methods."""

    kind = "lab"
    # Where dom0's daemons log (images/dom0/init's syslogd): xenstored's
    # and xenconsoled's complaints, for a failed boot's run folder.
    dom0_logs = ("/var/log/messages",)

    def run(self, argv, timeout=60, check=True):
        return self.agent.run(argv, timeout, check)

    def start_job(self, argv, on_output=None):
        return self.agent.start(argv, on_output)

    def stage_file(self, host_path):
        """Where xl in dom0 sees a file, which must be in the share folder."""
        rel = os.path.relpath(host_path, self.share_dir)
        if rel.startswith(".."):
            raise ValueError(f"{host_path} is not in the share folder {self.share_dir}")
        return f"{DOM0_SHARE}/{rel}"

    def wait_visible(self, host_path, timeout=10):
        """Until dom0 sees `host_path`, a file the harness has just written
        into the share. dom0's 9p client has answered ENOENT for a run
        folder's guest.cfg that the host had written a moment before and
        that dom0 saw a second later (0.4% of soak boots: xl create's first
        lookup in a new run folder, other guests' xl creates running):
        here such an answer is waited out and measured instead of failing
        the create. {"enoent": answers, "seconds": waited} when it had to
        wait, else None."""
        where = self.stage_file(host_path)
        started, enoent = time.monotonic(), 0
        while True:
            job = self.agent.run(["stat", "-c", "%s", where], timeout=30, check=False)
            if job.status == 0:
                break
            if "No such file" not in job.text or time.monotonic() - started > timeout:
                raise InfraError(f"dom0 does not see {where} in the share: {job.text.strip()[-200:]}")
            enoent += 1
            time.sleep(0.05)
        return {"enoent": enoent, "seconds": round(time.monotonic() - started, 3)} if enoent else None

    def read_file(self, path):
        """A dom0 file's bytes, or None when it is not there."""
        job = self.agent.run(["cat", path], timeout=30, check=False)
        return bytes(job.stdout) if job.status == 0 else None

    def xen_console(self):
        """Xen's console from now on: the serial QEMU appends to host.log."""
        return xenlog.FileSource(self.host_log)

    @functools.cached_property
    def xen_facts(self):
        """xl.xen_facts, asked once: the flavour's, fixed while the host lives."""
        return xl.xen_facts(self)

    def attach_console(self, tty, timeout=30):
        """Relay a guest's console pty in dom0 to a free virtio-serial port;
        return the harness's end of it."""
        return self._attach(lambda port: ["xenboot-agent", "relay", tty, port], tty, timeout)

    def open_shell(self, timeout=30):
        """A shell in dom0 on a pty, relayed to a free port: for a person."""
        return self._attach(lambda port: ["xenboot-agent", "shell", port], "a dom0 shell", timeout)

    def attach_gdbsx(self, domid, bits, timeout=30):
        """Xen's gdb server for domain `domid` (a `bits`-bit guest) in dom0,
        its one TCP connection (dom0's loopback) relayed to a free port:
        the harness's end of a gdb remote-protocol stream. gdbsx pauses
        the domain until gdb detaches; closing stops gdbsx too."""
        tcp = str(GDBSX_PORT_BASE + domid)
        ended = threading.Event()
        server = self.agent.start(["gdbsx", "-a", str(domid), str(bits), tcp],
                                  on_output=lambda stream, data: stream == "exit" and ended.set())
        try:
            relay = self._attach(lambda port: ["xenboot-agent", "connect", tcp, port], f"gdbsx of domain {domid}",
                                 timeout, woken=ended)
        except InfraError as e:
            server.kill()
            said = server.text.strip()
            if "Hyp is NOT enabled" in said:
                # Xen builds gdbsx's domctls only with CONFIG_DEBUG or EXPERT.
                raise InfraError(f"gdbsx: the lab's {self.flavour} Xen has no gdbsx support (CONFIG_GDBSX): "
                                 f"use LAB=debug") from None
            raise InfraError(f"{e.message}{'; gdbsx: ' + said[-200:] if said else ''}") from None

        def close():
            relay.close()
            server.kill()
            server.done.wait(10)
        return ConsoleAttachment(relay.sock, relay.relay, close)

    def _attach(self, argv_for_port, what, timeout, woken=None):
        index, sock = self.take_port()
        # The relay says so once both ends are open: from then on nothing
        # the other side prints is lost. A server it connects to that ends
        # first (it sets `woken`) is its answer too.
        woken = woken or threading.Event()
        started = threading.Event()

        def heard(stream, data):
            if stream != "err":
                started.set()
                woken.set()
        relay = self.agent.start(argv_for_port(console_port(index)), on_output=heard)
        woken.wait(timeout)
        if relay.done.is_set() or not started.is_set():
            how = (f"exit status {relay.status}" if relay.status is not None else relay.failure
                   or f"no word in {timeout:g} s")
            self._detach(index, relay)
            raise InfraError(f"console relay for {what} did not start ({how}): {relay.text.strip()}")
        return ConsoleAttachment(sock, relay, lambda: self._detach(index, relay))

    def _detach(self, index, relay):
        relay.kill()
        relay.done.wait(10)
        self.give_port(index)

    def cpu_seconds(self):
        """The CPU time QEMU has used, all its threads: what the host's
        guests, dom0 and Xen together have cost this machine."""
        with open(f"/proc/{self.qemu_pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
