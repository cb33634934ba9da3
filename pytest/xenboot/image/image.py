"""`xenboot image`: the UFS root file system a FreeBSD guest mounts.

Built without root by Debian's makefs from a manifest under images/rootfs
(default: the minimal root whose /sbin/init is images/init), or from a FreeBSD
world (an installworld DESTDIR or a base.txz), optionally with a manifest laid
over it. Owners and modes come from the manifest or the world, never from the
user running the build, through an mtree spec handed to makefs.

The same inputs give the same bytes: makefs is made to read directories in
name order (images/rootfs/sorted_readdir.c), every timestamp is clamped to
SOURCE_DATE_EPOCH (default 0), and the superblock fields makefs fills from
the heap (in-core pointers it writes out) or from an unseeded random() (the
file system id) are set from a digest of the inputs. The image is then read
back with this module's own UFS reader, which checks every path, owner, mode
and content hash against the manifest.
"""
import dataclasses
import functools
import hashlib
import json
import os
import pathlib
import re
import shutil
import stat
import struct
import tarfile
import tempfile
import tomllib

from xenboot.core import inputs, paths, result, tool
from xenboot.core.errors import BadInput, InfraError, Verdict
from xenboot.core.result import recorded, write_json

ROOTFS = paths.IMAGES / "rootfs"
DEFAULT_MANIFEST = ROOTFS / "minimal.toml"
INIT_SOURCE = "@init"
# The kernel targets images/init is built for; the image holds the one the
# kernel runs (an amd64 init on an i386 kernel: "exec /sbin/init: error 8").
TARGETS = ("amd64", "i386")
DEFAULT_TARGET = "amd64"
FORMATS = {"ufs1": 1, "ufs2": 2}
FORMAT = inputs.Choice(FORMATS)
SIZE_RE = re.compile(r"^[1-9][0-9]*[bkmg]?$")
# base.txz is about 100 MiB.
WORLD = inputs.FileOrFolder("give a DESTDIR or base.txz", 4 * inputs.GiB)
MANIFEST_FILE = inputs.File("manifest", f"give a TOML manifest (see {DEFAULT_MANIFEST})", inputs.TEXT_MAX, text=True)
# makefs's own size estimate fails ("map corrupted") on tiny trees staged on
# tmpfs; a floor and free-space margins avoid it and leave the guest room.
DEFAULT_SIZE_ARGS = ("-M", "16m", "-b", "10%", "-f", "10%")
IMAGE_NAME = "rootfs.img"
MANIFEST_NAME = "rootfs.manifest.json"

TYPE_BITS = {"dir": stat.S_IFDIR, "file": stat.S_IFREG, "link": stat.S_IFLNK}
MODE_TYPES = {bits: name for name, bits in TYPE_BITS.items()}


@dataclasses.dataclass
class Meta:
    """What the image says about a path, whatever the staging copy says."""
    type: str
    mode: int
    uid: int = 0
    gid: int = 0


# ---------------------------------------------------------------- manifest

def _image_path(raw, where):
    if not isinstance(raw, str) or not raw.startswith("/"):
        raise BadInput(f"{where}: path {raw!r} must be absolute; fix the manifest")
    parts = [p for p in raw.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise BadInput(f"{where}: path {raw!r} has . or .. in it; fix the manifest")
    return "/".join(parts)


def load_manifest(path, what="manifest"):
    """{relative path ('' for the root): (Meta, source or None, link target or None)}."""
    path = pathlib.Path(path)
    try:
        data = tomllib.loads(MANIFEST_FILE.read_text(path, what))
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"manifest {path}: {e}; give a readable TOML manifest (see {DEFAULT_MANIFEST})") from None
    entries = {}
    for raw, fields in data.items():
        where = f"manifest {path}, entry {raw!r}"
        rel = _image_path(raw, f"manifest {path}")
        if not isinstance(fields, dict):
            raise BadInput(f"{where}: must be a table of fields; fix the manifest")
        unknown = set(fields) - {"type", "mode", "uid", "gid", "source", "target"}
        if unknown:
            raise BadInput(f"{where}: unknown fields {sorted(unknown)}; fix the manifest")
        kind = fields.get("type")
        if kind not in TYPE_BITS:
            raise BadInput(f"{where}: type must be one of {sorted(TYPE_BITS)}; fix the manifest")
        try:
            mode = int(fields.get("mode", "0755" if kind != "file" else "0644"), 8)
        except (TypeError, ValueError):
            mode = -1
        if not 0 <= mode <= 0o7777:
            raise BadInput(f"{where}: mode must be an octal string like \"0644\"; fix the manifest")
        uid, gid = fields.get("uid", 0), fields.get("gid", 0)
        if not all(isinstance(v, int) and 0 <= v < 2**32 for v in (uid, gid)):
            raise BadInput(f"{where}: uid and gid must be numbers; fix the manifest")
        source = target = None
        if kind == "file":
            source = fields.get("source")
            if source != INIT_SOURCE:
                if not isinstance(source, str):
                    raise BadInput(f"{where}: a file needs a source; fix the manifest")
                source = path.parent / source
                if not source.resolve().is_relative_to(path.parent.resolve()):
                    raise BadInput(f"{where}: source {source} is outside the manifest's folder; "
                                   "keep an image's files next to its manifest")
                if not source.is_file():
                    raise BadInput(f"{where}: source {source} is not a file; fix the manifest")
        elif kind == "link":
            target = fields.get("target")
            if not isinstance(target, str) or not target:
                raise BadInput(f"{where}: a link needs a target; fix the manifest")
        entries[rel] = (Meta(kind, mode, uid, gid), source, target)
    return entries


# ----------------------------------------------------------------- staging

def check_size(size, what="--size", args=None):
    if not SIZE_RE.match(size):
        raise BadInput(f"{what} {size!r}: give bytes with an optional b/k/m/g suffix, e.g. 64m")


SIZE = inputs.Rule("choice", check_size)


def check_target(target, what="--target", args=None):
    if target not in TARGETS:
        raise BadInput(f"{what} {target!r}: images/init is built for {' and '.join(TARGETS)}; "
                       "give the FreeBSD kernel's TARGET")
    return target


TARGET = inputs.Rule("choice", check_target)


def build_init(out_dir, target=DEFAULT_TARGET):
    """images/init's program for `target`, built into the run folder:
    out_dir/init/<target>/init."""
    build_dir = pathlib.Path(out_dir) / "init"
    build_dir.mkdir(exist_ok=True)
    proc = tool.run(["make", "-s", "-C", paths.IMAGES / "init", f"OUT={build_dir}",
                     f"TARGETS={check_target(target)}"], "building images/init", check=False)
    (build_dir / "build.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise InfraError(f"building images/init failed (see {build_dir}/build.log); "
                         "install clang and lld (apt-get install clang lld)")
    return build_dir / target / "init"


def _make_parents(stage, rel, meta):
    """Makes rel's parent folders; refuses to go through a symlink, which
    (absolute, from a world) would write outside the stage."""
    parts = rel.split("/")[:-1]
    for i in range(len(parts)):
        parent = "/".join(parts[: i + 1])
        if (stage / parent).is_symlink():
            raise BadInput(f"/{rel} lies under the symlink /{parent}; "
                           "name the link's target in the manifest instead")
        (stage / parent).mkdir(exist_ok=True)
        meta.setdefault(parent, Meta("dir", 0o755))


def _clear(dest, kind):
    """Makes room for a new entry of this kind, never writing through a symlink."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        dest.unlink()
    elif dest.is_dir() and kind != "dir":
        shutil.rmtree(dest)


def stage_manifest(entries, stage, meta, out_dir, kernel_target=DEFAULT_TARGET):
    """Lays the manifest over whatever the stage holds, "@init" being the
    init for `kernel_target`; returns nothing, fills meta."""
    init = None
    for rel in sorted(entries):
        m, source, target = entries[rel]
        dest = stage / rel if rel else stage
        if rel:
            _make_parents(stage, rel, meta)
            _clear(dest, m.type)
        if m.type == "dir":
            dest.mkdir(exist_ok=True)
        elif m.type == "link":
            os.symlink(target, dest)
        else:
            if source == INIT_SOURCE:
                init = init or build_init(out_dir, kernel_target)
                source = init
            shutil.copyfile(source, dest)
        meta[rel] = m


def _safe_member(name, world):
    rel = name.lstrip("/")
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BadInput(f"world {world}: member {name!r} leaves the tree; use an unmodified base.txz")
    return "/".join(parts)


def stage_world_tar(world, stage, meta):
    try:
        tar = tarfile.open(world, "r:*")
    except (OSError, tarfile.TarError):
        raise BadInput(f"world {world}: not a readable tar archive (plain, gzip, bzip2 or xz); "
                       "give base.txz or a DESTDIR") from None
    with tar:
        for member in tar:
            rel = _safe_member(member.name, world)
            dest = stage / rel if rel else stage
            if rel:
                _make_parents(stage, rel, meta)
                _clear(dest, "dir" if member.isdir() else "file")
            mode = member.mode & 0o7777
            if member.isdir():
                dest.mkdir(exist_ok=True)
                kind = "dir"
            elif member.issym():
                os.symlink(member.linkname, dest)
                kind = "link"
            elif member.islnk():
                target = stage / _safe_member(member.linkname, world)
                # Only to a file already staged: never through a symlink to the host's files.
                if target.is_symlink() or not target.resolve().is_relative_to(stage.resolve()) \
                        or not target.is_file():
                    raise BadInput(f"world {world}: hard link {member.name} to {member.linkname}, "
                                   "which is not a file earlier in the archive; use an unmodified base.txz")
                os.link(target, dest, follow_symlinks=False)
                kind = "file"
            elif member.isreg():
                with tar.extractfile(member) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                kind = "file"
            else:
                raise BadInput(f"world {world}: {member.name} is a device or fifo, which a root "
                               "image does not hold; use an unmodified base.txz")
            meta[rel] = Meta(kind, mode, member.uid, member.gid)


def stage_world_dir(world, stage, meta):
    """Copies a DESTDIR, keeping its owners, modes and hard links."""
    seen = {}
    st = os.lstat(world)
    meta[""] = Meta("dir", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    for top, dirs, files in os.walk(world):
        dirs.sort()
        for name in sorted(dirs + files):
            src = os.path.join(top, name)
            rel = os.path.relpath(src, world)
            dest = stage / rel
            st = os.lstat(src)
            if stat.S_ISDIR(st.st_mode):
                dest.mkdir()
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(src), dest)
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    os.link(seen[key], dest)
                else:
                    try:
                        shutil.copyfile(src, dest, follow_symlinks=False)
                    except PermissionError:
                        raise BadInput(f"world {world}: cannot read {rel}; run as its owner or use base.txz")
                    seen[key] = dest
            else:
                raise BadInput(f"world {world}: {rel} is a device, fifo or socket, which a root "
                               "image does not hold; remove it or use base.txz")
            kind = MODE_TYPES[stat.S_IFMT(st.st_mode)]
            meta[rel] = Meta(kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)


def collect(stage, meta, timestamp):
    """The image's entries in path order (parents first), as the manifest records them.

    Of several names for one file, all but the first in path order say which
    name they are a hard link to.
    """
    entries, inodes = [], {}
    for top, dirs, files in os.walk(stage):
        for name in [None] + dirs + files if top == str(stage) else dirs + files:
            full = os.path.join(top, name) if name else top
            rel = os.path.relpath(full, stage) if name else ""
            m = meta[rel]
            entry = {"path": "/" + rel, "type": m.type, "mode": f"{m.mode:04o}",
                     "uid": m.uid, "gid": m.gid}
            if m.type == "link":
                entry["target"] = os.readlink(full)
            elif m.type == "file":
                st = os.lstat(full)
                inodes.setdefault((st.st_dev, st.st_ino), []).append(entry)
                entry["size"] = st.st_size
                entry["sha256"] = sha256_file(full)
            os.utime(full, (timestamp, timestamp), follow_symlinks=False)
            entries.append(entry)
    mark_hardlinks(inodes.values())
    return sorted(entries, key=lambda e: e["path"])


def mark_hardlinks(groups):
    for group in groups:
        first, *others = sorted(group, key=lambda e: e["path"])
        for e in others:
            e["hardlink"] = first["path"]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------ makefs

MTREE_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._,+=:@%~/-")


def mtree_name(text):
    """mtree's escaping: anything but plain characters as \\ooo octal bytes."""
    return "".join(chr(b) if b in MTREE_PLAIN else f"\\{b:03o}" for b in os.fsencode(text))


def mtree_spec(entries):
    lines = []
    for e in entries:
        name = "." + mtree_name(e["path"]) if e["path"] != "/" else "."
        line = f"{name} type={e['type']} mode={e['mode']} uid={e['uid']} gid={e['gid']}"
        if e["type"] == "link":
            line += f" link={mtree_name(e['target'])}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def sorted_readdir_shim():
    """The LD_PRELOAD library, built once per source version into the cache."""
    source = ROOTFS / "sorted_readdir.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    lib = paths.cache_root() / "image" / f"sorted_readdir-{digest}.so"
    if not lib.exists():
        lib.parent.mkdir(parents=True, exist_ok=True)
        tmp = lib.with_suffix(f".{os.getpid()}.tmp")
        tool.run(["cc", "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", tmp, source, "-ldl"],
                 f"building {source.name}")
        os.replace(tmp, lib)
    return lib


def run_makefs(image, stage, spec_path, version, size, timestamp, log_path):
    makefs = shutil.which("makefs") or ("/usr/sbin/makefs" if os.path.exists("/usr/sbin/makefs") else None)
    if not makefs:
        raise tool.missing("makefs", "building the image")
    size_args = ("-s", size) if size else DEFAULT_SIZE_ARGS
    argv = [makefs, "-t", "ffs", "-B", "le", "-T", str(timestamp), "-o", f"version={version}",
            *size_args, "-F", str(spec_path), "-x", str(image), str(stage)]
    env = dict(os.environ, LD_PRELOAD=str(sorted_readdir_shim()), TZ="UTC")
    proc = tool.run(argv, "makefs", env=env, check=False)
    pathlib.Path(log_path).write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        if size:
            raise BadInput(f"makefs could not make a {size} image ({last}); give a larger --size")
        raise InfraError(f"makefs failed ({last}); see {log_path}")
    return argv


# -------------------------------------------------------------- superblock

SBLOCK = 8192
FS_UFS1_MAGIC, FS_UFS2_MAGIC = 0x011954, 0x19540119
# struct fs (sys/ufs/ffs/fs.h, same in NetBSD's makefs): byte offsets used here.
SB_SBLKNO, SB_IBLKNO, SB_CGOFFSET, SB_CGMASK, SB_NCG = 8, 16, 24, 28, 44
SB_BSIZE, SB_FSIZE, SB_ID, SB_IPG, SB_FPG = 48, 52, 144, 184, 188
# fs_contigdirs, fs_csp, fs_maxcluster, fs_active: in-core pointers (LP64),
# meaningless on disk; makefs writes out its heap addresses.
SB_INCORE_POINTERS = slice(824, 856)
SB_SBLOCKLOC, SB_MAXSYMLINKLEN, SB_MAGIC = 1000, 1320, 1372
SB_SIZE = 1376


class Superblock:
    def __init__(self, raw):
        self.raw = raw
        self.magic = self.i32(SB_MAGIC)
        if self.magic not in (FS_UFS1_MAGIC, FS_UFS2_MAGIC):
            raise ValueError(f"no UFS magic (found {self.magic:#x})")
        self.version = 1 if self.magic == FS_UFS1_MAGIC else 2
        self.bsize, self.fsize = self.i32(SB_BSIZE), self.i32(SB_FSIZE)
        self.ncg, self.ipg, self.fpg = self.i32(SB_NCG), self.i32(SB_IPG), self.i32(SB_FPG)
        self.sblkno, self.iblkno = self.i32(SB_SBLKNO), self.i32(SB_IBLKNO)
        self.maxsymlinklen = self.i32(SB_MAXSYMLINKLEN)
        self.sblockloc = struct.unpack_from("<q", raw, SB_SBLOCKLOC)[0] if self.version == 2 else SBLOCK
        self.fs_id = struct.unpack_from("<II", raw, SB_ID)
        if not (4096 <= self.bsize <= 65536 and 512 <= self.fsize <= self.bsize and self.ncg > 0
                and self.ipg > 0 and self.fpg > 0):
            raise ValueError("superblock geometry out of range")

    def i32(self, off):
        return struct.unpack_from("<i", self.raw, off)[0]

    def cgstart(self, cg):
        """First fragment of cylinder group cg (UFS1 staggers them by cgoffset)."""
        base = self.fpg * cg
        if self.version == 1:
            cgmask = self.i32(SB_CGMASK) & 0xFFFFFFFF
            base += self.i32(SB_CGOFFSET) * (cg & ~cgmask & 0xFFFFFFFF)
        return base

    def copies(self):
        """Byte offsets of every superblock: the primary and one per cylinder group."""
        return [SBLOCK] + [(self.cgstart(cg) + self.sblkno) * self.fsize for cg in range(self.ncg)]


def read_superblock(f):
    f.seek(SBLOCK)
    return Superblock(f.read(SB_SIZE))


def fix_superblocks(image, seed):
    """Sets the fields makefs leaves to chance, in every copy; returns the fs id."""
    fs_id = tuple(v or 1 for v in struct.unpack_from("<II", seed))
    with open(image, "r+b") as f:
        sb = read_superblock(f)
        for off in sb.copies():
            f.seek(off)
            raw = bytearray(f.read(SB_SIZE))
            if struct.unpack_from("<i", raw, SB_MAGIC)[0] != sb.magic:
                raise InfraError(f"makefs left no superblock copy at byte {off} of {image}; "
                                 "this makefs lays images out differently: report it")
            struct.pack_into("<II", raw, SB_ID, *fs_id)
            raw[SB_INCORE_POINTERS] = bytes(SB_INCORE_POINTERS.stop - SB_INCORE_POINTERS.start)
            f.seek(off)
            f.write(raw)
    return fs_id


# UFS2 dinode (sys/ufs/ufs/dinode.h): di_atime, di_ctime, di_birthtime and
# their nanoseconds, which makefs copies from the staging tree's inodes
# (changed by makefs's own reading) where -T sets only di_mtime.
UFS2_TIMES = ((32, "<q"), (48, "<q"), (56, "<q"), (68, "<i"), (72, "<i"), (76, "<i"))


def fix_inode_times(image, timestamp):
    """Sets every used UFS2 inode's times to `timestamp`."""
    with open(image, "r+b") as f:
        reader = UfsReader(f)
        sb = reader.sb
        if sb.version != 2:
            return
        for ino in range(sb.ncg * sb.ipg):
            info = reader.inode(ino)
            if info["mode"] == 0:
                continue
            raw = bytearray(info["raw"])
            for off, fmt in UFS2_TIMES:
                struct.pack_into(fmt, raw, off, timestamp if fmt == "<q" else 0)
            cg, index = divmod(ino, sb.ipg)
            f.seek((sb.cgstart(cg) + sb.iblkno) * sb.fsize + index * reader.inode_size)
            f.write(raw)


# ---------------------------------------------------------------- read-back

ROOT_INO = 2


class UfsReader:
    """Enough of UFS1/UFS2 to list a tree and read its files, independent of makefs."""

    def __init__(self, f):
        self.f = f
        self.sb = read_superblock(f)
        v2 = self.sb.version == 2
        self.inode_size = 256 if v2 else 128
        self.addr = "<q" if v2 else "<i"
        self.addr_size = 8 if v2 else 4
        self.db_offset = 112 if v2 else 40
        self.nindir = self.sb.bsize // self.addr_size

    def inode(self, ino):
        sb = self.sb
        cg, index = divmod(ino, sb.ipg)
        self.f.seek((sb.cgstart(cg) + sb.iblkno) * sb.fsize + index * self.inode_size)
        raw = self.f.read(self.inode_size)
        mode = struct.unpack_from("<H", raw, 0)[0]
        if self.sb.version == 2:
            uid, gid, size = struct.unpack_from("<IIxxxxQ", raw, 4)
        else:
            size = struct.unpack_from("<Q", raw, 8)[0]
            uid, gid = struct.unpack_from("<II", raw, 112)
        addrs = [struct.unpack_from(self.addr, raw, self.db_offset + i * self.addr_size)[0]
                 for i in range(15)]
        return {"mode": mode, "uid": uid, "gid": gid, "size": size, "raw": raw, "addrs": addrs}

    def _block(self, frag):
        if frag == 0:
            return bytes(self.sb.bsize)
        self.f.seek(frag * self.sb.fsize)
        return self.f.read(self.sb.bsize).ljust(self.sb.bsize, b"\0")

    def _indirect(self, frag, level):
        block = self._block(frag)
        for i in range(self.nindir):
            a = struct.unpack_from(self.addr, block, i * self.addr_size)[0]
            if level == 0:
                yield a
            else:
                yield from self._indirect(a, level - 1)

    def read(self, ino_info):
        size, addrs = ino_info["size"], ino_info["addrs"]

        def blocks():
            yield from addrs[:12]
            for level, a in enumerate(addrs[12:]):
                yield from self._indirect(a, level)

        out, left = [], size
        for frag in blocks():
            if left <= 0:
                break
            out.append(self._block(frag)[:left])
            left -= self.sb.bsize
        return b"".join(out)

    def readlink(self, info):
        if info["size"] < self.sb.maxsymlinklen:
            return info["raw"][self.db_offset:self.db_offset + info["size"]].decode("utf-8", "surrogateescape")
        return self.read(info).decode("utf-8", "surrogateescape")

    def entries(self, dir_info):
        data = self.read(dir_info)
        off = 0
        while off < len(data):
            ino, reclen, _type, namlen = struct.unpack_from("<IHBB", data, off)
            if reclen == 0:
                raise ValueError("directory entry of length 0")
            if ino and data[off + 8:off + 8 + namlen] not in (b".", b".."):
                yield os.fsdecode(data[off + 8:off + 8 + namlen]), ino
            off += reclen

    def tree(self):
        """{'/path': entry as the manifest records it}, the root included."""
        found, inodes = {}, {}
        todo = [("/", ROOT_INO)]
        while todo:
            path, ino = todo.pop()
            info = self.inode(ino)
            kind = MODE_TYPES.get(stat.S_IFMT(info["mode"]))
            if kind is None:
                raise ValueError(f"{path}: unexpected inode mode {info['mode']:o}")
            entry = {"path": path, "type": kind, "mode": f"{stat.S_IMODE(info['mode']):04o}",
                     "uid": info["uid"], "gid": info["gid"]}
            if kind == "dir":
                todo.extend((path.rstrip("/") + "/" + name, child) for name, child in self.entries(info))
            elif kind == "link":
                entry["target"] = self.readlink(info)
            else:
                entry["size"] = info["size"]
                entry["sha256"] = hashlib.sha256(self.read(info)).hexdigest()
                inodes.setdefault(ino, []).append(entry)
            found[path] = entry
        mark_hardlinks(inodes.values())
        return found


def verify(image, entries):
    """Reads the image back and compares it with the manifest, entry by entry."""
    try:
        with open(image, "rb") as f:
            found = UfsReader(f).tree()
    except (ValueError, struct.error) as e:
        raise InfraError(f"{image} does not read back as UFS ({e}); see makefs.log")
    expected = {e["path"]: e for e in entries}
    for path in sorted(set(expected) | set(found)):
        if expected.get(path) != found.get(path):
            raise InfraError(f"{image}: {path} reads back as {found.get(path)}, "
                             f"manifest says {expected.get(path)}; the image is not what was asked for")


# --------------------------------------------------------------------- run

def make_image(out_dir, manifest=None, world=None, fmt="ufs1", size=None, target=DEFAULT_TARGET):
    """Builds out_dir/rootfs.img and its manifest, for a kernel of `target`
    (amd64 or i386: which init it holds); returns the manifest data."""
    out_dir = pathlib.Path(out_dir)
    check_target(target)
    out_dir.mkdir(parents=True, exist_ok=True)
    FORMAT(fmt, "--format", None)
    if size is not None:
        check_size(size)
    if world is not None:
        WORLD(world, "--world", None)
    if manifest is None and world is None:
        manifest = DEFAULT_MANIFEST
    overlay = load_manifest(manifest) if manifest is not None else {}
    timestamp = int(os.environ.get("SOURCE_DATE_EPOCH") or 0)

    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".stage-") as tmp:
        stage = pathlib.Path(tmp) / "root"
        stage.mkdir()
        meta = {"": Meta("dir", 0o755)}
        if world is not None:
            if os.path.isdir(world):
                stage_world_dir(world, stage, meta)
            else:
                stage_world_tar(world, stage, meta)
        stage_manifest(overlay, stage, meta, out_dir, target)
        entries = collect(stage, meta, timestamp)
        spec = mtree_spec(entries)
        spec_path = out_dir / "rootfs.mtree"
        spec_path.write_text(spec)
        seed = hashlib.sha256(json.dumps([fmt, size, timestamp, entries], sort_keys=True).encode()).digest()
        image = out_dir / IMAGE_NAME
        argv = run_makefs(image, stage, spec_path, FORMATS[fmt], size, timestamp, out_dir / "makefs.log")
    fs_id = fix_superblocks(image, seed)
    fix_inode_times(image, timestamp)
    verify(image, entries)
    with open(image, "rb") as f:
        sb = read_superblock(f)
    data = {
        "image": IMAGE_NAME,
        "sha256": sha256_file(image),
        "bytes": image.stat().st_size,
        "format": fmt,
        "target": target,
        "superblock_offset": sb.sblockloc,
        "block_size": sb.bsize,
        "fragment_size": sb.fsize,
        "fs_id": list(fs_id),
        "timestamp": timestamp,
        "inputs": {"manifest": str(manifest) if manifest else None,
                   "world": str(world) if world else None},
        "makefs": [os.path.basename(a) if a in (argv[0], str(spec_path)) else a for a in argv[:-2]]
                  + [IMAGE_NAME, "<stage>"],
        "entries": entries,
    }
    write_json(str(out_dir / MANIFEST_NAME), data)
    return data


def run(args):
    with recorded(args.out, "image") as record:
        with record.stage("image"):
            data = make_image(record.out_dir, manifest=args.manifest, world=args.world,
                              fmt=args.format, size=args.size, target=args.target)
    record["image"] = {k: data[k] for k in ("image", "sha256", "bytes", "format", "target",
                                            "superblock_offset")}
    record["image"]["path"] = str(pathlib.Path(record.out_dir) / IMAGE_NAME)
    record["image"]["manifest"] = str(pathlib.Path(record.out_dir) / MANIFEST_NAME)
    status = record.finish(Verdict.PASS)
    print(f"xenboot: image {record['image']['path']} ({data['format']}, init for {data['target']}, "
          f"{data['bytes']} bytes, sha256 {data['sha256']})")
    return status


def add_parser(subparsers):
    p = subparsers.add_parser("image", help="make the UFS root image a FreeBSD guest boots from",
                              description=__doc__.splitlines()[0])
    option = functools.partial(inputs.option, p)
    option("--manifest", help=f"TOML manifest under images/rootfs (default: {DEFAULT_MANIFEST.name} "
           "unless --world is given, then laid over the world)", check=MANIFEST_FILE.given(load=load_manifest))
    option("--world", help="a FreeBSD world: installworld DESTDIR or base.txz", check=WORLD)
    option("--format", default="ufs1", check=FORMAT,
           help="ufs1 (default: readable by Linux's ufs driver and `file`) or ufs2 "
                "(makefs puts its superblock at 8192, not FreeBSD's 65536)")
    option("--target", default=DEFAULT_TARGET, check=TARGET,
           help=f"the FreeBSD kernel's target: which images/init the image holds ({' or '.join(TARGETS)}, "
                "default amd64)")
    option("--size", help="image size for makefs -s, e.g. 64m (default: contents + 10%%, at least 16m)",
           check=SIZE)
    option("--out", help="run folder (default: out/<timestamp>-<id>/)", check=result.out_input())
    p.set_defaults(func=run)
