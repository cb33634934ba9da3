"""gdb on a domain through Xen, needing nothing in the guest: gdbsx, Xen's
gdb server, runs in dom0 and its connection is relayed to the harness (the
lab's virtio-serial ports, like a console); the boot offers it to gdb as a
unix socket in the run folder, `gdb.sock` (`target remote | relay`).
Each connection attaches gdbsx anew, which pauses the domain until gdb
detaches or goes. `make gdb` opens gdb on it; `batch` records what gdb
sees of a failed guest: registers, backtrace (file:line with DWARF), the
instruction at the PC. Xen builds gdbsx's hypercalls only into a debug (or
EXPERT) hypervisor: in the lab, LAB=debug."""
import contextlib
import os
import select
import shlex
import socket
import subprocess
import sys
import threading

from xenboot.core import inputs, sockets, terminal, tool
from xenboot.core.result import newest_live_run
from xenboot.core.errors import BadInput, HarnessError, InfraError
from xenboot.guest import symbolize

SOCKET_NAME = "gdb.sock"
# What gdb cannot do on this boot's domain, one line each, beside gdb.sock
# (and in result.json `gdb` `limits`), for `make gdb` to say first.
LIMITS_NAME = "gdb.limits"
# Measured on the lab (QEMU 10 TCG, +svm, Xen 4.17 debug): with gdbsx
# attached, the int3 gdb writes for a breakpoint reached the PVH probe's
# own IDT (vector 3 at the breakpoint), not Xen: Xen's SVM #BP intercept,
# which it sets for a domain with a debugger attached, never fired.
PVH_TCG_BREAKPOINTS = ("breakpoints do not stop a PVH guest on a TCG lab: the int3 gdb writes goes to the guest's "
                       "own #BP handler (its IDT, vector 3) instead of Xen's SVM #BP intercept, which gdbsx "
                       "sets; registers, memory and backtraces work (a lab with KVM may differ)")
# A batch session's parts, each after its marker line in gdb's output.
BATCH = (("registers", "info registers"), ("backtrace", "bt 40"), ("instruction", "x/3i $pc"))
MARK = "@@xenboot-gdb@@"
# What gdb is given for a kernel. `osabi none` before the kernel is read:
# Debian's gdb has no FreeBSD OS ABI for x86-64, and given a FreeBSD-branded
# amd64 kernel it falls back to i386's register layout, reading gdbsx's
# 64-bit packet as 32-bit pairs (eip 0xdeadf00d); a kernel needs nothing an
# OS ABI adds. The trap-frame unwinder is what FreeBSD's kgdb adds.
KERNEL_SETUP = ("-iex", "set osabi none",
                "-ex", "source " + os.path.join(os.path.dirname(__file__), "gdb_trapframe.py"))


class GdbServer:
    """The run folder's gdb.sock: each client gets `attach()` (an object with
    a connected `sock` to gdbsx's stream and `close()`), bridged to it, one
    client at a time; `errors` keeps why an attach failed."""

    def __init__(self, run_dir, attach):
        self.attach = attach
        self.socket = sockets.RunSocket(run_dir, SOCKET_NAME, backlog=1)
        self.path = self.socket.path
        self.errors = []
        self.lock = threading.Lock()
        self.active = None
        # Set while no client's bridge reads the port.
        self.bridged = threading.Event()
        self.bridged.set()
        threading.Thread(target=self._serve, name="gdb-server", daemon=True).start()

    def _serve(self):
        while True:
            try:
                client, _ = self.socket.listener.accept()
            except OSError:
                return  # closed
            try:
                attachment = self.attach()
            except HarnessError as e:
                self.errors.append(e.message)
                client.close()
                continue
            with self.lock:
                self.active = (client, attachment)
                self.bridged.clear()
            _bridge(client, attachment.sock)
            self.bridged.set()
            with self.lock:
                self.active = None
            client.close()
            attachment.close()

    def close(self):
        self.socket.close()
        with self.lock:
            active, self.active = self.active, None
        if active:
            # Ends the bridge; then gdbsx is stopped, its domain let go.
            with contextlib.suppress(OSError):
                active[0].shutdown(socket.SHUT_RDWR)
            self.bridged.wait(10)
            active[1].close()


def _bridge(client, port):
    """Copy both ways until the client's side or the port's ends. The port
    stays open: it is the host's, lent for this session (shutting it down
    would end QEMU's connection to it for every later user)."""
    while True:
        for ready in select.select([client, port], [], [])[0]:
            try:
                data = ready.recv(65536)
                if data:
                    (port if ready is client else client).sendall(data)
            except OSError:
                data = b""
            if not data:
                return


def limits(guest_type, accelerator):
    """What gdb cannot do on a domain of this guest type on this host."""
    return [PVH_TCG_BREAKPOINTS] if guest_type == "pvh" and accelerator == "tcg" else []


def write_limits(run_dir, lines):
    if lines:
        with open(os.path.join(run_dir, LIMITS_NAME), "w") as f:
            f.write("".join(line + "\n" for line in lines))


def target(path):
    """gdb's command to reach the socket at `path`, through a relay."""
    relay = [sys.executable, sockets.__file__, path]
    return "target remote | " + " ".join(shlex.quote(str(a)) for a in relay)


def batch(kernel, path, timeout=120):
    """One gdb -batch session on the domain behind the socket `path`,
    with `kernel`'s symbols: {registers, backtrace, instruction: [lines],
    log: gdb's whole output}. gdb leaves at the end, letting the domain
    go on as it was."""
    # gdbsx answers at once or not at all (a crashed domain's detach): a
    # short remote timeout keeps gdb from retrying for long.
    argv = ["gdb", "-nx", "-batch", *KERNEL_SETUP, "-ex", "set pagination off", "-ex", "set confirm off",
            "-ex", "set width 0", "-ex", "set remotetimeout 2", "-ex", target(path)]
    for name, command in BATCH:
        argv += ["-ex", f"echo {MARK} {name}\\n", "-ex", command]
    # disconnect, not detach: gdbsx lets the domain go when gdb leaves, and
    # a crashed domain's detach is never answered.
    argv += ["-ex", "disconnect", kernel]
    proc = tool.run(argv, "gdb on the domain", check=False, timeout=timeout)
    # gdb -batch goes on after a failed command: the connection's failure is
    # the line before the first "not being run".
    proc.stderr = proc.stderr.split("The program is not being run.")[0] or proc.stderr
    found = {"command": " ".join(c for _, c in BATCH), "log": (proc.stdout + proc.stderr).strip().splitlines()}
    part = None
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            part = found.setdefault(line.split()[1], [])
        elif part is not None and not line.startswith(("[Inferior ", "Ignoring packet error")):
            part.append(line)
    if "registers" not in found or not found["registers"]:
        raise InfraError(f"gdb on the domain got no registers: {tool.last_line(proc.stderr)}")
    return found


def kernel_in(run_dir):
    """The kernel gdb reads for a run: the kernel.debug the boot staged
    beside it, else the staged kernel."""
    return symbolize.debug_file(os.path.join(run_dir, "share", "kernel"))


def open_gdb(args):
    """gdb with the run's kernel, attached to its live domain: break,
    continue, look; quitting gdb detaches and the boot goes on."""
    terminal.require_tty("make gdb")
    run_dir = args.out or newest_live_run(SOCKET_NAME, "gdb", " (INTERACTIVE=1 keeps it alive)")
    address = sockets.address(run_dir, SOCKET_NAME)
    if not os.path.exists(address):
        raise BadInput(f"{run_dir}: its domain is not offered to gdb (no {SOCKET_NAME}): the boot has ended, "
                       f"or runs on a host without gdbsx (HOST=xl)")
    argv = ["gdb", "-q", *KERNEL_SETUP, "-ex", "set confirm off", "-ex", target(address), kernel_in(run_dir)]
    print(f"gdb: on the domain of {run_dir} (it is paused while gdb is attached; quit detaches)", flush=True)
    with contextlib.suppress(FileNotFoundError), open(os.path.join(run_dir, LIMITS_NAME)) as f:
        for line in f.read().splitlines():
            print(f"gdb: {line}", flush=True)
    try:
        return subprocess.run(argv).returncode
    except FileNotFoundError:
        raise tool.missing("gdb", "make gdb") from None


def add_parser(sub):
    p = sub.add_parser("gdb", help="gdb on the domain of a running boot (through Xen's gdbsx)")
    inputs.option(p, "out", metavar="OUT", nargs="?", help="its run folder (default: the newest running one)",
                  check=inputs.Folder("give the run folder of a running boot"))
    p.set_defaults(func=open_gdb)
