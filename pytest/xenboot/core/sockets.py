"""A listening unix socket in a run folder (the live console's, gdb's):
`<run>/<name>`, or a link to one in a private temp folder when the run
folder's path is too long for a socket address."""
import os
import socket
import sys
import tempfile
import threading

SUN_PATH_MAX = 100  # sun_path holds 108 bytes; keep a margin


class RunSocket:
    def __init__(self, run_dir, name, backlog=4):
        self.link = os.path.join(run_dir, name)
        self.private = None
        path = self.link
        if len(path) > SUN_PATH_MAX:
            self.private = tempfile.mkdtemp(prefix=f"xenboot-{name.split('.')[0]}-")
            path = os.path.join(self.private, name)
            os.symlink(path, self.link)
        self.path = path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(path):
            os.unlink(path)  # left by a run of this folder that was killed
        self.listener.bind(path)
        os.chmod(path, 0o600)
        self.listener.listen(backlog)

    def close(self):
        self.listener.close()
        for path in (self.path, self.link):
            if os.path.lexists(path):
                os.unlink(path)
        if self.private:
            os.rmdir(self.private)


def address(run_dir, name):
    """The socket address of a run folder's `name` (its link followed)."""
    return os.path.realpath(os.path.join(run_dir, name))


def relay_stdio(path):
    """Standard input to the socket at `path`, the socket to standard
    output, until either ends: gdb's `target remote | COMMAND` (gdb reaches
    no unix socket by itself)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)

    def up():
        while data := os.read(0, 65536):
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    threading.Thread(target=up, daemon=True).start()
    while data := sock.recv(65536):
        os.write(1, data)


if __name__ == "__main__":
    # Run as a script by path (no package on sys.path): stdlib only.
    relay_stdio(sys.argv[1])
