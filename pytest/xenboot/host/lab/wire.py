"""The lab server's control messages: one JSON object per line on a unix
socket, a message's descriptors (a console port, the agent stream) passed
with its bytes (SCM_RIGHTS)."""
import json
import socket

MAX_FDS = 2


class Channel:
    """One end of a control connection: `send(message, fds)`, `receive()`
    -> (message, fds), None once the other end has gone."""

    def __init__(self, sock):
        self.sock = sock
        self._buffer = b""
        self._fds = []

    def send(self, message, fds=()):
        data = json.dumps(message).encode() + b"\n"
        socket.send_fds(self.sock, [data], list(fds)) if fds else self.sock.sendall(data)

    def receive(self):
        while b"\n" not in self._buffer:
            data, fds, _flags, _addr = socket.recv_fds(self.sock, 65536, MAX_FDS)
            self._fds += fds
            if not data:
                for fd in self._fds:
                    socket.socket(fileno=fd).close()
                return None
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        fds, self._fds = self._fds, []
        return json.loads(line), fds

    def close(self):
        self.sock.close()
