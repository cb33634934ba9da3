"""`xenboot lab serve`: one embedded host kept running for the boots of
other processes (remote.RemoteHost), as a labgrid exporter keeps a place.

A boot on a running host skips the host's start (QEMU, the snapshot's
restore, dom0's mounts: 0.6-1.6 s) and finds dom0's programs already
translated by TCG (a host's second probe boot takes 1.6 s against 2.9 s
for its first; make bench). The host's share is a folder; a boot whose run
folder lies inside it, asking for the server's flavour, CPU profile and lab
config, uses the server (XENBOOT_LAB_SERVER=<that folder>).

Each client gets, over its control connection (wire.py):
- an agent stream: the agent's line protocol (images/dom0/agent.c), whose
  jobs the server runs on its own dom0 agent and answers with their output,
  so several clients' jobs share one control port and the server knows
  whose each job is;
- console ports lent one at a time (the port's socket is passed to it);
- its domains claimed by name.
When a client goes (its process ended, whatever way), its jobs are killed,
its ports given back and its claimed domains destroyed: a boot killed
mid-run leaves nothing on the host for the next one.
"""
import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import threading
import time

from xenboot.core import paths, sockets
from xenboot.core.errors import BadInput, HarnessError, InfraError
from xenboot.guest import xl
from xenboot.host.lab import wire
from xenboot.host.lab.qemu import LIVE_FROM_HERE

SOCKET = "server.sock"


def folder_for(share, flavour, cpu_profile):
    """Where the server of `flavour` on `cpu_profile` keeps its socket and its host's logs."""
    return os.path.join(share, f"lab-server-{flavour}-{cpu_profile}")


def config_digest(config):
    with open(config.path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class _Client:
    """One connected boot: its control `channel`, the server's end of its
    agent stream, and what it holds (jobs by its ids, ports, domains)."""

    def __init__(self, server, channel, agent_end):
        self.server, self.channel, self.agent_end = server, channel, agent_end
        self.jobs = {}
        self.ports = set()
        self.domains = set()
        self.lock = threading.Lock()
        self.gone = threading.Event()
        self.left = threading.Event()

    def serve(self):
        try:
            threading.Thread(target=self._agent_stream, name="lab-client-agent", daemon=True).start()
            while (received := self.channel.receive()) is not None:
                message, _fds = received
                self.channel.send(*self._answer(message))
        except (OSError, ValueError):
            pass  # a client that breaks its connection is gone like one that closes it
        finally:
            self._leave()

    def _answer(self, message):
        """(reply, descriptors) for one request."""
        op = message.get("op")
        if op == "port":
            try:
                index, sock = self.server.host.take_port()
            except InfraError as e:
                return {"error": e.message}, ()
            with self.lock:
                self.ports.add(index)
            return {"index": index}, (sock.fileno(),)
        if op == "release":
            self._give_back(message["index"])
        elif op == "claim":
            with self.lock:
                self.domains.add(message["domain"])
        elif op == "unclaim":
            # Torn down by the client itself: nothing left to clean up.
            with self.lock:
                self.domains.discard(message["domain"])
        else:
            raise ValueError(f"lab server: unknown request {op!r}")
        return {}, ()

    def _give_back(self, index):
        with self.lock:
            if index not in self.ports:
                return
            self.ports.discard(index)
        self.server.host.give_port(index)

    # -- the agent stream: the client's job requests run on the host's agent

    def _send_line(self, line):
        with contextlib.suppress(OSError):
            self.agent_end.sendall(line.encode() + b"\n")

    def _agent_stream(self):
        self._send_line("ready")
        buf = b""
        try:
            while data := self.agent_end.recv(65536):
                buf += data
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    self._request(line.decode("ascii", errors="replace").split(" "))
        except OSError:
            pass
        if not self.gone.is_set():
            # The agent stream's end is the client's end.
            with contextlib.suppress(OSError):
                self.channel.sock.shutdown(socket.SHUT_RDWR)

    def _request(self, fields):
        kind, job_id = fields[0], fields[1] if len(fields) > 1 else "-"
        if kind == "run":
            try:
                argv = [bytes.fromhex(a).decode() for a in fields[2:]]
            except ValueError:
                self._send_line(f"error {job_id} {b'malformed arguments'.hex()}")
                return
            with self.lock:
                self.jobs[job_id] = self.server.host.agent.start(argv, on_output=self._relay(job_id))
        elif kind == "kill":
            with self.lock:
                job = self.jobs.get(job_id)
            if job is not None:
                job.kill(int(fields[2]))
        else:
            # As the agent answers a line it cannot tie to a job.
            self._send_line(f"error - {f'unknown request {kind!r}'.encode().hex()}")

    def _relay(self, job_id):
        def output(stream, data):
            if stream != "exit":
                self._send_line(f"{stream} {job_id} {data.hex()}")
                return
            with self.lock:
                job = self.jobs.pop(job_id)
            if job.status is not None:
                self._send_line(f"exit {job_id} {job.status}")
            else:
                self._send_line(f"error {job_id} {str(job.failure).encode().hex()}")
        return output

    def _leave(self):
        self.gone.set()
        try:
            with self.lock:
                jobs, ports, domains = list(self.jobs.values()), list(self.ports), set(self.domains)
            for job in jobs:
                job.kill(signal.SIGKILL)
            for job in jobs:
                job.done.wait(10)
            for index in ports:
                self._give_back(index)
            if domains:
                self.server.destroy_left(domains)
        except HarnessError as e:
            # The host itself failing: its own watch ends the server.
            print(f"lab server: cleaning up after a client: {e.message}", flush=True)
        finally:
            for end in (self.agent_end, self.channel):
                end.close()
            self.server.forget(self)
            self.left.set()

    def hung_up(self):
        """Whether the client has gone, though its thread may not know yet."""
        if self.gone.is_set():
            return True
        try:
            return self.channel.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True


class LabServer:
    """Serves `host` (a started EmbeddedHost whose share is `share`) on
    folder_for(share, ...)/server.sock until `stop()`."""

    def __init__(self, host, share, config):
        self.host, self.share = host, os.path.abspath(share)
        self.folder = folder_for(self.share, host.flavour, host.cpu_profile)
        self.path = os.path.join(self.folder, SOCKET)
        self.config_path, self.config_sha256 = str(config.path), config_digest(config)
        self.clients = set()
        self.lock = threading.Lock()
        self.socket = self.listener = None

    def listen(self):
        if os.path.lexists(self.path):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(sockets.address(self.folder, SOCKET))
                raise BadInput(f"{self.path}: a lab server already serves there: stop it first")
            except (ConnectionRefusedError, FileNotFoundError):
                os.unlink(self.path)  # left by a server that was killed
            finally:
                probe.close()
        # A long share path gets the socket a short one, linked from here.
        self.socket = sockets.RunSocket(self.folder, SOCKET, backlog=16)
        self.listener = self.socket.listener
        with open(self.host.host_log, "a") as f:
            # Where each client's copy of host.log skips to its own run.
            f.write(f"\n--- xenboot: lab server {self.path} up{LIVE_FROM_HERE}")
        threading.Thread(target=self._accept_loop, name="lab-server", daemon=True).start()

    def _accept_loop(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return  # stop() closed the listener
            threading.Thread(target=self._welcome, args=(sock,), name="lab-client", daemon=True).start()

    def _welcome(self, sock):
        channel = wire.Channel(sock)
        try:
            received = channel.receive()
            if received is None:
                return channel.close()
            hello, _ = received
            self._settle()
            why = self._refusal(hello)
            if why:
                channel.send({"ok": False, "why": why})
                return channel.close()
            ours, theirs = socket.socketpair()
            client = _Client(self, channel, ours)
            with self.lock:
                self.clients.add(client)
            channel.send({"ok": True, "share": self.share, "host_log": self.host.host_log,
                          "qemu_pid": self.host.qemu_pid, "flavour": self.host.flavour,
                          "cpu_profile": self.host.cpu_profile, "describe": self.host.describe()},
                         [theirs.fileno()])
            theirs.close()
            client.serve()
        except (OSError, ValueError):
            channel.close()

    def _settle(self, timeout=60):
        """A new client finds the host as the clients that have gone left
        it: their jobs killed, ports back, domains destroyed (each cleanup
        is bounded: kills and xl commands have their timeouts)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            leaving = [client for client in self.clients if client.hung_up()]
        for client in leaving:
            client.left.wait(max(0, deadline - time.monotonic()))

    def _refusal(self, hello):
        wanted = {"flavour": self.host.flavour, "cpu_profile": self.host.cpu_profile,
                  "lab_config": self.config_sha256}
        for key, ours in wanted.items():
            if hello.get(key) != ours:
                return (f"this server runs {key} {ours if key != 'lab_config' else self.config_path}, "
                        f"the boot asks for {hello.get(key)}")
        return None

    def destroy_left(self, names):
        """Destroy the domains a client claimed and left behind; remove
        their console logs, which a boot that ended well removed itself."""
        listed = self.host.run(["xl", "list"], timeout=60, check=False).stdout.decode().split("\n")[1:]
        found = {line.split()[0] for line in listed if line.split()} & names
        for name in found:
            self.host.run(["xl", "destroy", name], timeout=60, check=False)
        print(f"lab server: a client left without tearing down {', '.join(sorted(names))}: "
              f"destroyed {', '.join(sorted(found)) or 'none (already gone)'}, console logs removed", flush=True)
        # Their console logs too: dom0's /var/log is its RAM.
        self.host.run(["rm", "-f", *(xl.CONSOLE_LOG.format(name=name) for name in sorted(names))], timeout=60,
                      check=False)

    def forget(self, client):
        with self.lock:
            self.clients.discard(client)

    def stop(self):
        if self.listener is not None:
            self.socket.close()
            self.listener = None
        with self.lock:
            clients = list(self.clients)
        for client in clients:
            with contextlib.suppress(OSError):
                client.channel.sock.shutdown(socket.SHUT_RDWR)
        # Their cleanups finish before the process does: a daemon thread
        # still printing at interpreter exit aborts it (SIGABRT).
        for client in clients:
            client.left.wait(30)


class ServerProcess:
    """`xenboot lab serve` as a child process, once it serves (a lab not
    built yet is built first, its progress read past); what it says later
    goes to server.log in its folder, so nothing it prints can block it."""

    def __init__(self, share, flavour):
        self.folder = folder_for(str(share), flavour, "pv")
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        self.proc = subprocess.Popen([str(paths.REPO / "ci" / "xenboot"), "lab", "serve", "--share", str(share),
                                      "--lab", flavour], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        said = []
        while (line := self.proc.stdout.readline()) and "serving at" not in line:
            said.append(line)
        if not line:
            self.proc.wait()
            raise InfraError(f"the {flavour} lab server did not start (exit status {self.proc.returncode}): "
                             f"{''.join(said[-3:]).strip()}")
        self.line = line
        self.log = os.path.join(self.folder, "server.log")
        self._logger = threading.Thread(target=self._keep_log, name="lab-server-log", daemon=True)
        self._logger.start()

    def _keep_log(self):
        with open(self.log, "a") as f:
            for line in self.proc.stdout:
                f.write(line)
                f.flush()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.terminate()
        self.proc.wait(60)
        self._logger.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
