"""Where a host's Xen console text comes from: the file QEMU's serial
appends to (the lab's host.log), or a local dom0's `xl dmesg` ring. Each
host hands its source to the Xen console stage (xenconsole.XenConsole),
which needs nothing else of the host."""
import os

# How often a host's log is looked at.
POLL = 0.2


class FileSource:
    """New text of a file another process appends to (QEMU's host.log), from
    its size when this was made."""

    interval = POLL

    def __init__(self, path, writer_done=None):
        """`writer_done`, for a file whose writer ends (a transcript played
        back), says when it has written all it will: no report is waited
        for past that."""
        self.path = path
        self.offset = os.path.getsize(path) if os.path.exists(path) else 0
        self._writer_done = writer_done

    def complete(self):
        return self._writer_done is not None and self._writer_done()

    def read(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return ""
        # A line may be caught half written; its end comes next time.
        self.offset += len(data)
        return data.decode("utf-8", "replace")


class DmesgSource:
    """New text of Xen's console ring on a local dom0 (`xl dmesg`, polled:
    reading it needs no privilege beyond xl's and clears nothing for other
    readers). What is new is what follows the last lines seen before; when
    the ring has wrapped past them, all of it is new (and some was lost)."""

    KEY_LINES = 8
    # Each look runs xl: less often than a file is read.
    interval = 1.0

    def __init__(self, host):
        self.host = host
        self._last = self._lines()[-self.KEY_LINES:]

    def _lines(self):
        job = self.host.run(["xl", "dmesg"], timeout=30, check=False)
        return bytes(job.stdout).decode("utf-8", "replace").splitlines(keepends=True)

    def complete(self):
        """A live hypervisor's ring: more may always come."""
        return False

    def read(self):
        lines = self._lines()
        start = _after_overlap(lines, self._last)
        self._last = (self._last + lines[start:])[-self.KEY_LINES:]
        return "".join(lines[start:])


def _after_overlap(lines, last):
    """Where the lines not yet seen begin: after the latest place where
    `last` (the lines seen last) appears; 0 if nowhere."""
    if not last:
        return 0
    n = len(last)
    for end in range(len(lines), n - 1, -1):
        if lines[end - n:end] == last:
            return end
    return 0
