"""The lab cache: Debian packages unpacked, then Xen, dom0 kernel and initramfs.

Two layers, each in a folder named after a hash of its inputs, so a change
rebuilds only what depends on it and a boot with unchanged inputs downloads
and builds nothing:

  packages-<key>/   the .debs of [packages], unpacked into root/
  host-<key>/       xen.elf, vmlinux, initramfs.cpio (packages + [xen] image
                    + [dom0] + images/dom0/)

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

from xenboot import kernelcheck, paths, tool
from xenboot.errors import InfraError
from xenboot.lab import cpio, elfdeps

# Bump when the builder's output changes for the same inputs.
LAYOUT = 2
DOM0_SOURCES = ("init", "agent.c", "block")
HOST_FILES = ("xen.elf", "vmlinux", "initramfs.cpio", "manifest.json")


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
    def __init__(self, config, root=None):
        self.config = config
        self.root = (root or paths.cache_root()) / "lab"
        pk = config["packages"]
        self.packages_key = _key(LAYOUT, pk["names"], pk["metapackages"], pk["pins"])
        dom0_digests = {n: kernelcheck.sha256(paths.IMAGES / "dom0" / n) for n in DOM0_SOURCES}
        self.host_key = _key(LAYOUT, self.packages_key, config["xen"]["image"],
                             {k: v for k, v in config["dom0"].items() if k != "cmdline"},
                             dom0_digests)

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
        return self.host_dir.is_dir()

    def host_files(self):
        """The built host's files; INFRA with the command to run if broken."""
        if not self.host_dir.is_dir():
            raise InfraError(f"the lab cache has no host for {self.config.path} at "
                             f"{self.host_dir}: run `make lab`")
        missing = [f for f in HOST_FILES if not (self.host_dir / f).is_file()]
        if missing:
            raise InfraError(f"the lab cache at {self.host_dir} is broken ({', '.join(missing)} "
                             f"missing): run `make lab-clean lab`")
        return {f: self.host_dir / f for f in HOST_FILES}

    def ensure(self, log=print):
        """Build whatever layer is missing; return the host files."""
        if not self.packages_dir.is_dir():
            log(f"lab: downloading and unpacking Debian packages into {self.packages_dir}")
            _build_layer(self.packages_dir, self._build_packages)
        if not self.host_dir.is_dir():
            log(f"lab: building the dom0 initramfs into {self.host_dir}")
            _build_layer(self.host_dir, self._build_host)
        return self.host_files()

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
        debs = os.path.join(tmp, "debs")
        os.mkdir(debs)
        names = self._resolve_names()
        _run(["apt-get", "download", *names], "apt-get download (run `apt-get update` first?)", cwd=debs)
        root = os.path.join(tmp, "root")
        versions = {}
        for deb in sorted(os.listdir(debs)):
            path = os.path.join(debs, deb)
            _run(["dpkg-deb", "-x", path, root], f"dpkg-deb -x {deb}")
            pkg, version = _run(["dpkg-deb", "-f", path, "Package", "Version"],
                                f"dpkg-deb -f {deb}").split("\n")[:2]
            versions[pkg.split(": ", 1)[1]] = version.split(": ", 1)[1]
        _write_manifest(tmp, {"layer": "packages", "requested": names, "versions": versions})

    # -- host layer ----------------------------------------------------------

    def _build_host(self, tmp):
        src = str(self.packages_dir / "root")
        with gzip.open(os.path.join(src, self.config["xen"]["image"])) as z, \
                open(os.path.join(tmp, "xen.elf"), "wb") as out:
            shutil.copyfileobj(z, out)
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
                       for f in ("xen.elf", "vmlinux", "initramfs.cpio")},
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
        for name, dest in (("init", "init"), ("block", "etc/xen/scripts/block")):
            os.makedirs(os.path.dirname(os.path.join(tree, dest)), exist_ok=True)
            shutil.copyfile(dom0_src / name, os.path.join(tree, dest))
            os.chmod(os.path.join(tree, dest), 0o755)
        _run(["gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror",
              "-ffile-prefix-map=" + str(paths.REPO) + "=.",
              "-o", os.path.join(tree, "usr/bin/xenboot-agent"), str(dom0_src / "agent.c")],
             "compiling images/dom0/agent.c (is gcc with libc6-dev installed?)")
        return order


def _copy(src_root, dest_root, rel):
    dest = os.path.join(dest_root, rel)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    shutil.copyfile(elfdeps.resolve_in_tree(src_root, rel), dest)
    shutil.copymode(elfdeps.resolve_in_tree(src_root, rel), dest)


def _write_manifest(folder, data):
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
