"""A boot's host when a lab server (server.py) runs the one it needs: the
same dom0 driver as a host of its own, reached through the server.

XENBOOT_LAB_SERVER names the folder lab servers share with dom0; a boot
whose run folder lies inside it uses the server of its flavour and CPU
profile there, if one answers and runs the same lab config, and else starts
its own host as always (saying why when a server was there but could not
take it).
"""
import os
import socket
import threading

from xenboot.core import sockets
from xenboot.core.errors import InfraError
from xenboot.host.lab import config as labconfig, server as labserver, wire
from xenboot.host.lab.agent import Agent
from xenboot.host.lab.dom0 import Dom0Driver
from xenboot.host.lab.qemu import LIVE_FROM_HERE

SERVER_ENV = "XENBOOT_LAB_SERVER"
# Seconds: a hello waits for clients that have gone to be cleaned up.
HELLO_TIMEOUT = 90
REQUEST_TIMEOUT = 60


def server_socket(run_dir, flavour, cpu_profile):
    """The socket of the server a boot in `run_dir` would use, or None
    when XENBOOT_LAB_SERVER is unset, the run folder is outside its folder,
    or no server of that flavour and profile was started there."""
    share = os.environ.get(SERVER_ENV)
    if not share:
        return None
    share = os.path.realpath(share)
    if os.path.commonpath([share, os.path.realpath(run_dir)]) != share:
        return None
    path = os.path.join(labserver.folder_for(share, flavour, cpu_profile), labserver.SOCKET)
    return path if os.path.exists(path) else None


def attach(run_dir, flavour, cpu_profile, lab_config=None, progress=print):
    """A connected RemoteHost for a boot in `run_dir`, or None (then the
    boot starts its own host)."""
    config = labconfig.load(lab_config)
    flavour = labconfig.flavour(config, flavour)[0]
    path = server_socket(run_dir, flavour, cpu_profile)
    if path is None:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # A server that does not answer in time is one that does not answer.
    sock.settimeout(HELLO_TIMEOUT)
    try:
        sock.connect(sockets.address(os.path.dirname(path), labserver.SOCKET))
        channel = wire.Channel(sock)
        channel.send({"op": "hello", "flavour": flavour, "cpu_profile": cpu_profile,
                      "lab_config": labserver.config_digest(config)})
        received = channel.receive()
    except OSError as e:
        sock.close()
        why = e.strerror or f"no answer in {HELLO_TIMEOUT} s"
        progress(f"lab: the lab server at {path} does not answer ({why}): starting a host of its own")
        return None
    if received is None or not received[0].get("ok"):
        sock.close()
        why = received[0]["why"] if received else "it closed the connection"
        progress(f"lab: the lab server at {path} cannot take this boot ({why}): starting a host of its own")
        return None
    hello, (agent_fd,) = received
    # Later requests are answered at once; one that is not is the server's INFRA.
    sock.settimeout(REQUEST_TIMEOUT)
    return RemoteHost(path, channel, hello, socket.socket(fileno=agent_fd), run_dir)


class RemoteHost(Dom0Driver):
    """The server's host, for one boot: jobs through the server's agent
    stream, console ports lent by the server. `close()` (or leaving
    `with`) hands everything back; the host keeps running."""

    def __init__(self, path, channel, hello, agent_sock, run_dir):
        self.path, self.run_dir = path, run_dir
        self._channel = channel
        self._lock = threading.Lock()
        self._ports = {}
        self.share_dir = hello["share"]
        self.host_log = hello["host_log"]
        self.qemu_pid = hello["qemu_pid"]
        self.flavour = hello["flavour"]
        self.cpu_profile = hello["cpu_profile"]
        self._described = hello["describe"] | {"server": path}
        self._log_start = os.path.getsize(self.host_log)
        self.agent = Agent(agent_sock, closed=lambda: f"the lab server at {path} closed the connection")
        self.agent.wait_ready(30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._keep_host_log()
        self._channel.close()
        self.agent.sock.close()
        for sock in self._ports.values():
            sock.close()

    def _keep_host_log(self):
        """The run folder's host.log, as a host of its own leaves it: the
        host's boot messages up to the server's start, then what Xen and
        dom0 printed during this run (other runs' lines from between them
        left out)."""
        with open(self.host_log, "rb") as f:
            before = f.read(self._log_start)
            during = f.read()
        live = before.rfind(LIVE_FROM_HERE.encode())
        boot = before[:live + len(LIVE_FROM_HERE)] if live >= 0 else b""
        with open(os.path.join(self.run_dir, "host.log"), "wb") as f:
            f.write(boot + f"--- xenboot: the lab server {self.path}'s host; {len(before) - len(boot)} bytes "
                           f"of its log before this run left out ---\n".encode() + during)

    def describe(self):
        return dict(self._described)

    def claim_domain(self, name):
        """The server destroys `name` if this boot ends without doing so."""
        self._ask({"op": "claim", "domain": name})

    def unclaim_domain(self, name):
        """This boot tore `name` down itself: the server has nothing to do
        for it (its `xl list` and `rm` would delay the next boot's hello)."""
        self._ask({"op": "unclaim", "domain": name})

    def _ask(self, message):
        with self._lock:
            try:
                self._channel.send(message)
                received = self._channel.receive()
            except OSError as e:
                raise InfraError(f"the lab server at {self.path}: {e.strerror or 'no answer in time'}") from None
        if received is None:
            raise InfraError(f"the lab server at {self.path} closed the connection")
        reply, fds = received
        if "error" in reply:
            raise InfraError(f"the lab server at {self.path}: {reply['error']}")
        return reply, fds

    def take_port(self):
        reply, (fd,) = self._ask({"op": "port"})
        sock = self._ports[reply["index"]] = socket.socket(fileno=fd)
        return reply["index"], sock

    def give_port(self, index):
        self._ports.pop(index).close()
        self._ask({"op": "release", "index": index})
