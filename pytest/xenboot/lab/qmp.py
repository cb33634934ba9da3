"""A minimal QMP client: commands and the events the lab waits for.

QMP is line-delimited JSON over the socket QEMU connected to; replies carry
"return" or "error", asynchronous events carry "event".
"""
import json
import time

from xenboot.errors import InfraError


class Qmp:
    def __init__(self, sock):
        self.sock = sock
        self.file = sock.makefile("rb")
        self.events = []
        self._read()  # greeting
        self.execute("qmp_capabilities")

    def _read(self):
        line = self.file.readline()
        if not line:
            raise InfraError("QEMU closed its QMP channel")
        return json.loads(line)

    def execute(self, command, **arguments):
        msg = {"execute": command} | ({"arguments": arguments} if arguments else {})
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
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
            left = deadline - time.monotonic()
            if left <= 0:
                raise InfraError(f"QEMU did not report {name} within {timeout:g} s")
            self.sock.settimeout(left)
            try:
                self.events.append(self._read())
            except TimeoutError:
                continue
            finally:
                self.sock.settimeout(None)
