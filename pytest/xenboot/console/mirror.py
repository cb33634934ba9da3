"""More terminals on a live guest console (`make console`).

While a boot runs, its console is also offered on a unix socket in the run
folder (`console.sock`, or a link to one in a private temp folder when the
run folder's path is too long for a socket address). Every byte the guest
prints goes to each client too; what a client types goes to the guest
through the console session, so console.log and console.jsonl keep both.
"""
import socket
import threading

from xenboot.core import inputs, sockets, terminal
from xenboot.core.result import newest_live_run
from xenboot.core.errors import BadInput

SOCKET_NAME = "console.sock"
SLOW_CLIENT = 5  # seconds a client may hold up the console before it is dropped


class ConsoleMirror:
    def __init__(self, run_dir, send):
        self.send = send
        self.clients = []
        self.lock = threading.Lock()
        self.socket = sockets.RunSocket(run_dir, SOCKET_NAME)
        self.listener = self.socket.listener
        threading.Thread(target=self._accept, name="console-mirror", daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            client.settimeout(SLOW_CLIENT)
            with self.lock:
                self.clients.append(client)
            threading.Thread(target=self._read, args=(client,), daemon=True).start()

    def _read(self, client):
        try:
            while True:
                try:
                    data = client.recv(4096)
                except socket.timeout:
                    continue  # a person who is not typing; only sends may time out
                if not data:
                    break
                self.send(data)
        except (OSError, ValueError):
            pass  # the client or the session is gone
        self._drop(client)

    def _drop(self, client):
        with self.lock:
            if client in self.clients:
                self.clients.remove(client)
        client.close()

    def broadcast(self, data):
        with self.lock:
            clients = list(self.clients)
        for client in clients:
            try:
                client.sendall(data)
            except OSError:
                self._drop(client)

    def close(self):
        self.socket.close()
        with self.lock:
            clients, self.clients = self.clients, []
        for client in clients:
            client.close()


def connect(run_dir):
    """A client socket on the live console of the run in `run_dir`."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(sockets.address(run_dir, SOCKET_NAME))
    return sock


def attach(args):
    """A second terminal on a running boot's guest console; the escape key
    leaves it, the boot goes on."""
    terminal.require_tty("make console")
    run_dir = args.out or newest_live_run(SOCKET_NAME, "its console")
    try:
        sock = connect(run_dir)
    except OSError as e:
        raise BadInput(f"{run_dir}: its guest console is not offered ({e.strerror}): "
                       f"the boot has ended") from None
    print(f"console: on the guest console of {run_dir}; {terminal.ESCAPE_NAME} leaves "
          f"(the boot goes on)\r", flush=True)
    with sock:
        why = terminal.bridge(sock.fileno(), lambda: sock.recv(65536), sock.sendall)
    print(f"\r\nconsole: left ({why})", flush=True)
    return 0


def add_parser(sub):
    p = sub.add_parser("console", help="join the guest console of a running boot")
    inputs.option(p, "out", metavar="OUT", nargs="?", help="its run folder (default: the newest running one)",
                  check=inputs.Folder("give the run folder of a running boot"))
    p.set_defaults(func=attach)
