"""A newc ("070701") cpio writer for the dom0 initramfs.

Written here rather than calling cpio(1) so that the archive depends only on
the tree's contents: entries sorted, owner root, times zero, inode numbers in
order. Left uncompressed: under TCG, Linux unpacks a plain cpio much faster
than it inflates a gzip one.
"""
import os
import stat

TRAILER = "TRAILER!!!"


def _header(ino, mode, nlink, size, name):
    fields = (ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name) + 1, 0)
    return ("070701" + "".join(f"{v:08x}" for v in fields)).encode()


def _pad(n):
    return b"\0" * (-n % 4)


def write_tree(root, out_path):
    """Archive every entry under `root` (no top folder) into `out_path`."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            entries.append((os.path.relpath(full, root), full))
    entries.sort()
    with open(out_path, "wb") as out:
        for ino, (name, full) in enumerate(entries, start=1):
            st = os.lstat(full)
            perm = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                data = os.readlink(full).encode()
                mode = stat.S_IFLNK | 0o777
            elif stat.S_ISDIR(st.st_mode):
                data, mode = b"", stat.S_IFDIR | perm
            else:
                with open(full, "rb") as f:
                    data = f.read()
                mode = stat.S_IFREG | perm
            _write_entry(out, ino, mode, 2 if stat.S_ISDIR(mode) else 1, name, data)
        _write_entry(out, 0, 0, 1, TRAILER, b"")


def _write_entry(out, ino, mode, nlink, name, data):
    head = _header(ino, mode, nlink, len(data), name) + name.encode() + b"\0"
    out.write(head + _pad(len(head)))
    out.write(data + _pad(len(data)))
