"""A minimal QMP client: commands and the events the lab waits for.

QMP is line-delimited JSON over the socket QEMU connected to; replies carry
"return" or "error", asynchronous events carry "event". Lines are split here,
from recv() behind select(), so a deadline never leaves a half-read line
behind (a timed-out socket file cannot be read again).
"""
import json
import select
import time

from xenboot.core.errors import InfraError


class Qmp:
    def __init__(self, sock, timeout=60):
        self.sock = sock
        self.buffer = b""
        self.events = []
        self._read(time.monotonic() + timeout)  # greeting
        self.execute("qmp_capabilities")

    def _read(self, deadline):
        """The next message, or None at the deadline."""
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return None
            try:
                data = self.sock.recv(65536)
            except OSError as e:
                raise InfraError(f"QMP channel failed: {e}") from None
            if not data:
                raise InfraError("QEMU closed its QMP channel")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, timeout=60, **arguments):
        msg = {"execute": command} | ({"arguments": arguments} if arguments else {})
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply is None:
                raise InfraError(f"QMP {command}: no reply within {timeout:g} s")
            if "event" in reply:
                self.events.append(reply)
            elif "error" in reply:
                raise InfraError(f"QMP {command}: {reply['error'].get('desc')}")
            else:
                return reply.get("return")

    def wait_event(self, name, timeout, match=lambda data: True):
        """The first event `name` whose data satisfies `match`."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event["event"] == name and match(event.get("data", {})):
                    self.events.remove(event)
                    return event
            message = self._read(deadline)
            if message is None:
                raise InfraError(f"QEMU did not report {name} within {timeout:g} s")
            if "event" in message:
                self.events.append(message)
