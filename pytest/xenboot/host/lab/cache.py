"""The lab cache: Debian packages unpacked, then Xen, dom0 kernel and initramfs.

Layers, each in a folder named after a hash of its inputs, so a change
rebuilds only what depends on it and a boot with unchanged inputs downloads
and builds nothing:

  packages-<key>/    the .debs of [packages] and [xen] packages, unpacked into root/
  host-<key>/        vmlinux, initramfs.cpio (packages + [dom0] + images/dom0/)
  qemu-<key>/        the [qemu] packages unpacked into root/ (the lab's QEMU)
  apt-<key>/         the private apt's sources list and indexes (lab/apt.py)
  src-<key>/         Xen's Debian source package ([xen] source at [xen] version)
  xen-<flavour>-<key>/  the flavour's hypervisor, xen.elf: Debian's, or one
                     built from src (xen.gz, xen-syms, .config kept), keyed
                     by the source's sha256 and the flavour's config lines

A layer is built in a temporary folder and renamed into place, so a reader
never sees half of one; a lock serialises builders.
"""
import contextlib
import fcntl
import glob
import gzip
import hashlib
import json
import os
import shutil
import tempfile

from xenboot.core import paths, tool
from xenboot.guest import kernelcheck
from xenboot.core.errors import InfraError
from xenboot.host.lab import config as labconfig, cpio, elfdeps, xenbuild
from xenboot.host.lab.apt import PrivateApt

# Bump when the builder's output changes for the same inputs.
LAYOUT = 3
DOM0_SOURCES = ("init", "block.c", "Makefile", "agent.c", "protocol.c", "protocol.h")
HOST_FILES = ("vmlinux", "initramfs.cpio", "manifest.json")
# A QEMU of the user's own instead of the lab's (it uses its own data folder).
QEMU_ENV = "XENBOOT_QEMU"


def _key(*parts):
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True).encode())
    return h.hexdigest()[:16]


def _run(argv, what, cwd=None):
    return tool.run(argv, what, cwd=cwd).stdout


@contextlib.contextmanager
def _locked(root):
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _build_layer(final, build):
    """Run build(tmpdir) and move the result to `final`, unless another
    process finished it while we waited for the lock."""
    with _locked(final.parent):
        if final.is_dir():
            return
        tmp = tempfile.mkdtemp(prefix=final.name + ".", dir=final.parent)
        try:
            build(tmp)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


class LabCache:
    """The layers for one flavour (lab.toml [flavours]; None: the default,
    or with `freebsd` the FreeBSD boots' default)."""

    def __init__(self, config, root=None, flavour=None, freebsd=False):
        self.config = config
        self.root = (root or paths.cache_root()) / "lab"
        self.flavour, self.flavour_table = labconfig.flavour(config, flavour, freebsd)
        pk, xen, q = config["packages"], config["xen"], config["qemu"]
        self.packages_key = _key(LAYOUT, pk["names"], pk["metapackages"], pk["pins"],
                                 xen["packages"], xen["version"])
        dom0_digests = {n: kernelcheck.sha256(paths.IMAGES / "dom0" / n) for n in DOM0_SOURCES}
        self.host_key = _key(LAYOUT, self.packages_key,
                             {k: v for k, v in config["dom0"].items() if k != "cmdline"},
                             dom0_digests)
        self.qemu_key = _key(LAYOUT, q["packages"], q["suite"], q["version"])
        self.src_key = _key(LAYOUT, xen["source"], xen["version"])
        mirror = config["apt"]["mirror"]
        self.apt = PrivateApt(self.root, [f"deb {mirror} {q['suite']} main",
                                          f"deb-src {mirror} {xen['source_suite']} main"])

    @property
    def builds_xen(self):
        return self.flavour_table["build"]

    @property
    def xen_key(self):
        """The hypervisor layer's key; None for a built flavour whose
        source is not downloaded yet (its sha256 is part of the key)."""
        if not self.builds_xen:
            return _key(LAYOUT, self.packages_key, self.config["xen"]["image"])
        if not self.src_dir.is_dir():
            return None
        with open(self.src_dir / "manifest.json") as f:
            dsc_sha256 = json.load(f)["dsc_sha256"]
        return _key(LAYOUT, xenbuild.RECIPE, dsc_sha256, self.flavour_table["config"])

    @property
    def xen_dir(self):
        key = self.xen_key
        return key and self.root / f"xen-{self.flavour}-{key}"

    @property
    def src_dir(self):
        return self.root / f"src-{self.src_key}"

    @property
    def qemu_dir(self):
        return self.root / f"qemu-{self.qemu_key}"

    def layer_dirs(self):
        """Every layer this flavour uses (a xen layer only once known)."""
        dirs = [self.packages_dir, self.host_dir, self.qemu_dir, self.apt.dir]
        if self.builds_xen:
            dirs.append(self.src_dir)
        return dirs + ([self.xen_dir] if self.xen_dir else [])

    def qemu_command(self):
        """argv[0] and the data folder option of the lab's QEMU."""
        own = os.environ.get(QEMU_ENV)
        if own:
            return [own]
        if not self.qemu_dir.is_dir():
            raise InfraError(f"the lab cache has no QEMU at {self.qemu_dir}: run `make lab`")
        q = self.config["qemu"]
        return [str(self.qemu_dir / "root" / q["binary"]), "-L", str(self.qemu_dir / "root" / q["data"])]

    @property
    def packages_dir(self):
        return self.root / f"packages-{self.packages_key}"

    @property
    def host_dir(self):
        return self.root / f"host-{self.host_key}"

    def snapshot_path(self, inputs):
        """Where a booted host's saved state lives, for these boot-time inputs."""
        return self.host_dir / f"snapshot-{_key(inputs)}.vmstate"

    def is_built(self):
        return all(d.is_dir() for d in (self.host_dir, self.qemu_dir)) and bool(
            self.xen_dir and self.xen_dir.is_dir())

    def host_files(self):
        """The built host's files (dom0's and the flavour's xen.elf); INFRA
        with the command to run if broken."""
        make = f"make lab LAB={self.flavour}"
        if not self.host_dir.is_dir() or not (self.xen_dir and self.xen_dir.is_dir()):
            raise InfraError(f"the lab cache has no {self.flavour} host for {self.config.path} at "
                             f"{self.root}: run `{make}`")
        files = {f: self.host_dir / f for f in HOST_FILES} | {"xen.elf": self.xen_dir / "xen.elf"}
        missing = [f for f, path in files.items() if not path.is_file()]
        if missing:
            raise InfraError(f"the lab cache at {self.root} is broken ({', '.join(missing)} "
                             f"missing): run `make lab-clean lab LAB={self.flavour}`")
        return files

    def ensure(self, log=print):
        """Build whatever layer is missing; return the host files."""
        if not self.packages_dir.is_dir():
            log(f"lab: downloading and unpacking Debian packages into {self.packages_dir}")
            _build_layer(self.packages_dir, self._build_packages)
        if not self.host_dir.is_dir():
            log(f"lab: building the dom0 initramfs into {self.host_dir}")
            _build_layer(self.host_dir, self._build_host)
        if not self.qemu_dir.is_dir() and not os.environ.get(QEMU_ENV):
            log(f"lab: downloading and unpacking QEMU {self.config['qemu']['version']} into {self.qemu_dir}")
            self._with_apt(self.qemu_dir, self._build_qemu)
        if self.builds_xen and not self.src_dir.is_dir():
            xen = self.config["xen"]
            log(f"lab: downloading Debian's source {xen['source']} {xen['version']} into {self.src_dir}")
            self._with_apt(self.src_dir, self._fetch_source)
        if not self.xen_dir.is_dir():
            if self.builds_xen:
                log(f"lab: building the {self.flavour} hypervisor into {self.xen_dir} (once; about a minute)")
                _build_layer(self.xen_dir, self._build_xen)
            else:
                _build_layer(self.xen_dir, self._unpack_xen)
        return self.host_files()

    def _with_apt(self, final, build):
        # The indexes first, under the lock, before the layer takes it.
        with _locked(self.root):
            self.apt.update()
        _build_layer(final, build)

    # -- packages layer ----------------------------------------------------

    def _resolve_names(self):
        pk = self.config["packages"]
        names = []
        for name in pk["names"]:
            if name in pk["metapackages"]:
                out = _run(["apt-cache", "depends", "--important", name], f"apt-cache depends {name}")
                deps = [line.split(":", 1)[1].strip() for line in out.splitlines()
                        if line.strip().startswith("Depends:")]
                if not deps:
                    raise InfraError(f"metapackage {name} has no dependency: run `apt-get update`")
                name = deps[0]
            pin = pk["pins"].get(name)
            names.append(f"{name}={pin}" if pin else name)
        return names

    def _build_packages(self, tmp):
        names = self._resolve_names() + [f"{name}={self.config['xen']['version']}"
                                         for name in self.config["xen"]["packages"]]
        versions = _download_and_unpack(
            tmp, names, lambda debs: _run(["apt-get", "download", *names],
                                          "apt-get download (run `apt-get update` first?)", cwd=debs))
        _write_manifest(tmp, {"layer": "packages", "requested": names, "versions": versions})

    def _build_qemu(self, tmp):
        q = self.config["qemu"]
        names = [f"{name}={q['version']}" for name in q["packages"]]
        versions = _download_and_unpack(tmp, names, lambda debs: self.apt.download(names, debs))
        binary = os.path.join(tmp, "root", q["binary"])
        if not os.access(binary, os.X_OK):
            raise InfraError(f"[qemu] binary {q['binary']} is not in the packages {', '.join(q['packages'])}")
        _write_manifest(tmp, {"layer": "qemu", "suite": q["suite"], "versions": versions,
                              "qemu_version": qemu_version([binary])})

    def _fetch_source(self, tmp):
        xen = self.config["xen"]
        dsc = self.apt.source(xen["source"], xen["version"], tmp)
        _write_manifest(tmp, {"layer": "src", "source": xen["source"], "version": xen["version"],
                              "dsc": os.path.basename(dsc), "dsc_sha256": kernelcheck.sha256(dsc)})

    def _build_xen(self, tmp):
        with open(self.src_dir / "manifest.json") as f:
            src = json.load(f)
        seconds = xenbuild.build(self.src_dir / src["dsc"], self.flavour_table["config"], tmp)
        _write_manifest(tmp, {"layer": "xen", "flavour": self.flavour, "source": src,
                              "config": self.flavour_table["config"], "build_seconds": seconds,
                              "sha256": {f: kernelcheck.sha256(os.path.join(tmp, f))
                                         for f in ("xen.elf", "xen-syms")}})

    def _unpack_xen(self, tmp):
        with gzip.open(self.packages_dir / "root" / self.config["xen"]["image"]) as z, \
                open(os.path.join(tmp, "xen.elf"), "wb") as out:
            shutil.copyfileobj(z, out)
        _write_manifest(tmp, {"layer": "xen", "flavour": self.flavour,
                              "image": self.config["xen"]["image"],
                              "sha256": {"xen.elf": kernelcheck.sha256(os.path.join(tmp, "xen.elf"))}})

    # -- host layer ----------------------------------------------------------

    def _build_host(self, tmp):
        src = str(self.packages_dir / "root")
        kernels = sorted(glob.glob(os.path.join(src, self.config["dom0"]["kernel_glob"])))
        if len(kernels) != 1:
            raise InfraError(f"[dom0] kernel_glob matches {len(kernels)} files in {src}, not one")
        # Xen would inflate the xz bzImage itself, which costs seconds under
        # TCG; the ELF inside is the same kernel, loaded the same way.
        with open(os.path.join(tmp, "vmlinux"), "wb") as f:
            f.write(kernelcheck.loadable_elf(kernels[0])[1])
        tree = os.path.join(tmp, "dom0")
        modules = self._assemble_dom0(src, tree, kernel_release=os.path.basename(kernels[0])[len("vmlinuz-"):])
        cpio.write_tree(tree, os.path.join(tmp, "initramfs.cpio"))
        shutil.rmtree(tree)
        with open(self.packages_dir / "manifest.json") as f:
            versions = json.load(f)["versions"]
        _write_manifest(tmp, {
            "layer": "host", "packages_key": self.packages_key, "versions": versions,
            "dom0_kernel": os.path.basename(kernels[0]), "modules": modules,
            "sha256": {f: kernelcheck.sha256(os.path.join(tmp, f))
                       for f in ("vmlinux", "initramfs.cpio")},
        })

    def _assemble_dom0(self, src, tree, kernel_release):
        dom0 = self.config["dom0"]
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "run", "tmp",
                  "root", "etc/xen", "etc/xenboot", "var/log", "var/lib"):
            os.makedirs(os.path.join(tree, d), exist_ok=True)
        os.symlink("../run", os.path.join(tree, "var/run"))
        libs, interps = elfdeps.library_closure(src, dom0["programs"], dom0["libraries"])
        for rel in dom0["programs"] + libs + interps:
            _copy(src, tree, rel)
        for link, target in dom0["links"].items():
            os.symlink(target, os.path.join(tree, link))
        busybox = os.path.join(src, "bin/busybox")
        _copy(src, tree, "bin/busybox")
        for applet in _run([busybox, "--list-full"], "busybox --list-full").split():
            dest = os.path.join(tree, applet)
            if not os.path.lexists(dest):
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                os.symlink("/bin/busybox", dest)
        modules_dir = os.path.join(src, "lib/modules", kernel_release)
        order = elfdeps.module_load_order(modules_dir, dom0["modules"])
        for rel in order:
            _copy(src, tree, os.path.join("lib/modules", kernel_release, rel))
        with open(os.path.join(tree, "etc/xenboot/modules"), "w") as f:
            f.writelines(f"{kernel_release}/{rel}\n" for rel in order)
        open(os.path.join(tree, "etc/xen/xl.conf"), "w").close()
        dom0_src = paths.IMAGES / "dom0"
        built = os.path.join(tree, "usr/bin")
        _run(["make", "-s", "-C", dom0_src, "O=" + built],
             "compiling images/dom0/agent.c and block.c (is gcc with libc6-dev installed?)")
        os.makedirs(os.path.join(tree, "etc/xen/scripts"), exist_ok=True)
        # Where libxl looks for a disk's hotplug script.
        os.replace(os.path.join(built, "block"), os.path.join(tree, "etc/xen/scripts/block"))
        shutil.copyfile(dom0_src / "init", os.path.join(tree, "init"))
        os.chmod(os.path.join(tree, "init"), 0o755)
        return order


def qemu_version(command):
    """QEMU's own first line of --version, e.g. "QEMU emulator version
    10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)"."""
    return tool.last_line(_run([*command[:1], "--version"], "QEMU --version").splitlines()[0])


def _download_and_unpack(tmp, names, download):
    """download(folder) fetches .debs there; each is unpacked into
    tmp/root; {package: version}."""
    debs = os.path.join(tmp, "debs")
    os.mkdir(debs)
    download(debs)
    root = os.path.join(tmp, "root")
    versions = {}
    for deb in sorted(os.listdir(debs)):
        path = os.path.join(debs, deb)
        _run(["dpkg-deb", "-x", path, root], f"dpkg-deb -x {deb}")
        pkg, version = _run(["dpkg-deb", "-f", path, "Package", "Version"],
                            f"dpkg-deb -f {deb}").split("\n")[:2]
        versions[pkg.split(": ", 1)[1]] = version.split(": ", 1)[1]
    return versions


def _copy(src_root, dest_root, rel):
    dest = os.path.join(dest_root, rel)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    shutil.copyfile(elfdeps.resolve_in_tree(src_root, rel), dest)
    shutil.copymode(elfdeps.resolve_in_tree(src_root, rel), dest)


def _write_manifest(folder, data):
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
