"""A private apt: its own sources list, indexes and download cache in the lab
cache, for what the host's apt setup does not list (QEMU from
bookworm-backports, Xen's source package). The host's /etc/apt and
/var/lib/apt are never written; the archive's signatures are checked with
the host's Debian keyring as usual.
"""
import hashlib
import os
import pwd

from xenboot.core import tool
from xenboot.core.errors import InfraError


class PrivateApt:
    def __init__(self, root, lines):
        self.lines = sorted(lines)
        key = hashlib.sha256("\n".join(self.lines).encode()).hexdigest()[:16]
        self.dir = root / f"apt-{key}"

    def _options(self):
        d = self.dir
        return ["-o", f"Dir::Etc::SourceList={d / 'sources.list'}",
                "-o", "Dir::Etc::SourceParts=/dev/null",
                "-o", f"Dir::State::Lists={d / 'lists'}",
                "-o", f"Dir::Cache={d / 'cache'}",
                # The lab cache may be unreadable to apt's _apt user
                # (mkdtemp folders are 0700): fetch as the caller.
                "-o", "APT::Sandbox::User=" + pwd.getpwuid(os.getuid()).pw_name]

    def _apt(self, args, what, cwd=None):
        return tool.run(["apt-get", "-q", *self._options(), *args], what, cwd=cwd).stdout

    def update(self):
        """Read the indexes once; later calls reuse them."""
        if (self.dir / "lists" / ".complete").is_file():
            return
        for sub in ("lists/partial", "cache/archives/partial"):
            os.makedirs(self.dir / sub, exist_ok=True)
        (self.dir / "sources.list").write_text("".join(line + "\n" for line in self.lines))
        self._apt(["update"], f"apt-get update of the lab's private sources ({self.dir / 'sources.list'})")
        (self.dir / "lists" / ".complete").write_text("")

    def _fetch(self, args, what, cwd):
        """apt-get `args` on the indexes read so far, and once more on
        fresh ones if that fails (a pin newer than the indexes)."""
        self.update()
        try:
            return self._apt(args, what, cwd=cwd)
        except InfraError:
            (self.dir / "lists" / ".complete").unlink()
            self.update()
            return self._apt(args, what, cwd=cwd)

    def download(self, names, dest):
        """`name=version` packages' .debs into dest."""
        self._fetch(["download", *names], f"apt-get download {' '.join(names)} (private sources)", dest)

    def source(self, name, version, dest):
        """The source package's files (.dsc and tarballs) into dest; the
        .dsc's path."""
        self._fetch(["source", "--download-only", f"{name}={version}"],
                    f"apt-get source {name}={version} (private sources)", dest)
        dscs = [f for f in os.listdir(dest) if f.endswith(".dsc")]
        if len(dscs) != 1:
            raise InfraError(f"apt-get source {name}={version} left {len(dscs)} .dsc files in {dest}")
        return os.path.join(dest, dscs[0])
