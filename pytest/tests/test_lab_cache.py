"""The lab cache is built once, reused, rebuilt only where its inputs changed,
and a broken one is an INFRA error that says what to run."""
import json
import os
import tarfile

import pytest

from xenboot.core import paths
from xenboot.guest import kernelcheck
from xenboot.core.errors import BadInput, InfraError
from xenboot.host.lab import cache as labcache, config as labconfig, cpio, elfdeps, xenbuild


@pytest.fixture(scope="module")
def built():
    cache = labcache.LabCache(labconfig.load())
    cache.ensure(log=lambda line: None)
    return cache


def test_second_ensure_builds_nothing(built):
    before = {p: os.stat(p).st_mtime_ns for p in built.host_files().values()}
    said = []
    again = labcache.LabCache(labconfig.load())
    again.ensure(log=said.append)
    assert said == []
    assert {p: os.stat(p).st_mtime_ns for p in again.host_files().values()} == before


def _config_with(tmp_path, old, new):
    text = (paths.CONFIGS / "lab.toml").read_text()
    assert old in text
    path = tmp_path / "lab.toml"
    path.write_text(text.replace(old, new))
    return labconfig.load(path)


def test_dom0_change_rebuilds_only_the_host_layer(built, tmp_path):
    changed = labcache.LabCache(_config_with(tmp_path, '"ufs",\n]', '"ufs", "brd",\n]'))
    assert changed.packages_key == built.packages_key
    assert changed.host_key != built.host_key


def test_boot_time_inputs_rebuild_nothing(built, tmp_path):
    changed = labcache.LabCache(_config_with(tmp_path, '"rdinit=/init"', '"rdinit=/init", "loglevel=8"'))
    assert (changed.packages_key, changed.host_key) == (built.packages_key, built.host_key)


def test_package_change_rebuilds_everything(built, tmp_path):
    changed = labcache.LabCache(_config_with(tmp_path, '"busybox-static",', '"busybox-static", "kmod",'))
    assert changed.packages_key != built.packages_key
    assert changed.host_key != built.host_key


def test_broken_cache_is_infra_with_a_remedy(built, tmp_path):
    broken = labcache.LabCache(built.config, root=tmp_path)
    with pytest.raises(InfraError, match="make lab LAB=debian"):
        broken.host_files()
    broken.host_dir.mkdir(parents=True)
    broken.xen_dir.mkdir(parents=True)
    (broken.host_dir / "vmlinux").write_bytes(b"")
    with pytest.raises(InfraError, match=r"broken \(initramfs.cpio, manifest.json, xen.elf missing\)"
                                         r".*make lab-clean lab LAB=debian"):
        broken.host_files()


def test_manifest_records_package_versions(built):
    manifest = json.loads(built.host_files()["manifest.json"].read_text())
    # Tools and hypervisor at the one version whose source is served.
    xen = built.config["xen"]
    assert all(manifest["versions"][name] == xen["version"] for name in xen["packages"])
    assert any(m.endswith("xen-blkback.ko") for m in manifest["modules"])


def test_module_order_puts_dependencies_first(built):
    root = built.packages_dir / "root"
    (modules,) = (root / "lib" / "modules").iterdir()
    order = [os.path.basename(m) for m in elfdeps.module_load_order(str(modules), ["9p", "virtio_console"])]
    assert order.index("9pnet.ko") < order.index("9p.ko")
    assert order.index("virtio_ring.ko") < order.index("virtio.ko") < order.index("virtio_console.ko")


def test_libraries_resolve_inside_the_unpacked_tree(built):
    libs, interps = elfdeps.library_closure(str(built.packages_dir / "root"),
                                            ["usr/lib/xen-4.17/bin/xl"], ["libgcc_s.so.1"])
    assert interps == ["lib64/ld-linux-x86-64.so.2"]
    names = {os.path.basename(lib) for lib in libs}
    assert {"libxenlight.so.4.17", "libyajl.so.2", "libc.so.6", "libgcc_s.so.1"} <= names


def test_cpio_is_deterministic_newc(tmp_path):
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "a").write_text("x")
    os.symlink("a", tree / "bin" / "b")
    cpio.write_tree(str(tree), str(tmp_path / "one.cpio"))
    os.utime(tree / "bin" / "a", (1, 1))
    cpio.write_tree(str(tree), str(tmp_path / "two.cpio"))
    one = (tmp_path / "one.cpio").read_bytes()
    assert one == (tmp_path / "two.cpio").read_bytes()
    assert one.startswith(b"070701") and b"TRAILER!!!" in one


def test_bad_lab_config_names_file_and_key(tmp_path):
    path = tmp_path / "lab.toml"
    path.write_text((paths.CONFIGS / "lab.toml").read_text().replace('accelerator = "tcg"', 'accelerator = "warp"'))
    with pytest.raises(BadInput, match=r"lab.toml: \[qemu\] accelerator must be one of"):
        labconfig.load(path)


def test_bad_tcg_threads_name_the_key_or_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(labconfig.TCG_THREADS_ENV, raising=False)
    path = tmp_path / "lab.toml"
    path.write_text((paths.CONFIGS / "lab.toml").read_text().replace('tcg_threads = "multi"', 'tcg_threads = "many"'))
    with pytest.raises(BadInput, match=r"lab.toml: \[qemu\] tcg_threads must be one of multi, single"):
        labconfig.load(path)
    monkeypatch.setenv(labconfig.TCG_THREADS_ENV, "many")
    with pytest.raises(BadInput, match=r"^XENBOOT_LAB_TCG_THREADS='many': must be one of multi, single \(or unset"):
        labconfig.load()
    monkeypatch.setenv(labconfig.TCG_THREADS_ENV, "single")
    assert labconfig.load()["qemu"]["tcg_threads"] == "single"


def test_auto_accelerator_is_probed_once_and_remembered(built, tmp_path, monkeypatch):
    from xenboot.host.lab import accel
    raw = dict(built.config.raw, qemu=dict(built.config["qemu"], accelerator="auto"))
    config = labconfig.LabConfig(built.config.path, raw)
    cache = labcache.LabCache(config, root=tmp_path)
    cache.root.mkdir()
    os.symlink(built.qemu_dir, cache.qemu_dir)
    files = built.host_files()
    # MOCK of the KVM probe: Xen does not boot under KVM on this project's
    # machines, and "kvm" is the answer a memo must give back without
    # probing again.
    probed = []

    def kvm_boots_xen(config, qemu, files, timeout, cpu_model):
        if cpu_model in probed:
            raise AssertionError("the KVM probe ran again: the remembered answer was not used")
        probed.append(cpu_model)
        return cpu_model == pv
    monkeypatch.setattr(accel, "kvm_boots_xen", kvm_boots_xen)
    pv, hvm = config["cpu_profiles"]["pv"], config["cpu_profiles"]["hvm"]
    assert accel.choose(config, cache, files, pv) == "kvm"
    (memo,) = cache.root.glob("accel-*.json")
    assert json.loads(memo.read_text())["accelerator"] == "kvm"
    assert accel.choose(config, cache, files, pv) == "kvm"
    # Each CPU model is probed and remembered on its own: KVM may run one and not the other.
    assert accel.choose(config, cache, files, hvm) == "tcg"
    assert accel.choose(config, cache, files, hvm) == "tcg" and probed == [pv, hvm]
    fixed = labconfig.LabConfig(config.path, dict(raw, qemu=dict(raw["qemu"], accelerator="tcg")))
    assert accel.choose(fixed, cache, files, pv) == "tcg"


def test_lab_qemu_is_the_pinned_package_with_its_own_data(built):
    q = built.config["qemu"]
    manifest = json.loads((built.qemu_dir / "manifest.json").read_text())
    assert manifest["versions"] == {name: q["version"] for name in q["packages"]}
    command = built.qemu_command()
    assert command[0] == str(built.qemu_dir / "root" / q["binary"])
    assert command[1:] == ["-L", str(built.qemu_dir / "root" / q["data"])]
    assert (built.qemu_dir / "root" / q["data"] / "multiboot_dma.bin").is_file()
    # Runs on this host (its libraries are the installed QEMU's).
    upstream = q["version"].split(":", 1)[1].split("+", 1)[0]
    assert labcache.qemu_version(command).startswith(f"QEMU emulator version {upstream} ")
    assert manifest["qemu_version"] == labcache.qemu_version(command)


def test_own_qemu_replaces_the_lab_one(built, monkeypatch):
    monkeypatch.setenv(labcache.QEMU_ENV, "/usr/bin/qemu-system-x86_64")
    assert built.qemu_command() == ["/usr/bin/qemu-system-x86_64"]


def test_flavours_share_every_layer_but_the_hypervisor(built):
    debug = labcache.LabCache(built.config, flavour="debug")
    same = ("packages_key", "host_key", "qemu_key")
    assert [getattr(debug, k) for k in same] == [getattr(built, k) for k in same]
    assert built.flavour == "debian" and debug.flavour == "debug"
    assert labcache.LabCache(built.config, freebsd=True).flavour == "debug"


def test_unknown_flavour_is_bad_input_naming_the_choices(built):
    with pytest.raises(BadInput, match=r"LAB=fast: no such lab flavour .*use one of debian, debug"):
        labcache.LabCache(built.config, flavour="fast")


def test_flavour_table_is_validated(tmp_path):
    with pytest.raises(BadInput, match=r"\[flavours\] freebsd = 'nope' names no \[flavours.\*\] table"):
        _config_with(tmp_path, 'freebsd = "debug"', 'freebsd = "nope"')
    with pytest.raises(BadInput, match=r"\[flavours.debug\] config lines must be strings like CONFIG_X=y"):
        _config_with(tmp_path, '"CONFIG_PV32=y"]', '"CONFIG_PV32"]')


@pytest.fixture(scope="module")
def debug_built(built):
    cache = labcache.LabCache(labconfig.load(), flavour="debug")
    cache.ensure(log=lambda line: None)
    return cache


def test_debug_hypervisor_is_built_once_from_debians_source(debug_built):
    xen = debug_built.xen_dir
    src = json.loads((debug_built.src_dir / "manifest.json").read_text())
    assert src["version"] == debug_built.config["xen"]["version"]
    assert src["dsc_sha256"] == kernelcheck.sha256(debug_built.src_dir / src["dsc"])
    config = (xen / "config").read_text().splitlines()
    assert {"CONFIG_DEBUG=y", "CONFIG_PV32=y"} <= set(config)
    # A multiboot ELF for QEMU, and the symbols to read Xen's traces with.
    assert (xen / "xen.elf").read_bytes()[:4] == b"\x7fELF"
    assert b"do_general_protection" in (xen / "xen-syms").read_bytes()
    manifest = json.loads((xen / "manifest.json").read_text())
    assert manifest["build_seconds"] > 0
    before = {p: os.stat(p).st_mtime_ns for p in xen.iterdir()}
    said = []
    labcache.LabCache(labconfig.load(), flavour="debug").ensure(log=said.append)
    assert said == []
    assert {p: os.stat(p).st_mtime_ns for p in xen.iterdir()} == before


def test_debug_hypervisor_says_who_and_when_from_the_source_not_the_machine(debug_built, tmp_path):
    """Reproducible: the compile date is debian/changelog's, the version and
    maintainer the package's (what xl info and Xen's boot banner show)."""
    with tarfile.open(next(debug_built.src_dir.glob("*.debian.tar.xz"))) as t:
        t.extractall(tmp_path, members=[t.getmember(f"debian/{name}") for name in ("changelog", "control")])
    identity = xenbuild.build_environment(tmp_path)
    elf = (debug_built.xen_dir / "xen.elf").read_bytes()
    for key in ("XEN_BUILD_DATE", "DEB_VERSION"):
        assert identity[key].encode() in elf, key


@pytest.mark.slow
def test_debug_hypervisor_builds_the_same_in_another_folder(debug_built, tmp_path):
    """A second build of the same source and config, elsewhere, is byte for
    byte the cached one (about a minute on 2 cores)."""
    dsc = next(debug_built.src_dir.glob("*.dsc"))
    xenbuild.build(str(dsc), debug_built.flavour_table["config"], str(tmp_path))
    for name in ("xen.gz", "xen-syms"):
        assert kernelcheck.sha256(tmp_path / name) == kernelcheck.sha256(debug_built.xen_dir / name), name


def test_switching_flavours_rebuilds_nothing(built, debug_built):
    for flavour in ("debian", "debug", "debian"):
        said = []
        files = labcache.LabCache(labconfig.load(), flavour=flavour).ensure(log=said.append)
        assert said == []
        assert files["xen.elf"].parent.name.startswith(f"xen-{flavour}-")
    assert built.host_files()["xen.elf"] != debug_built.host_files()["xen.elf"]


def test_debug_key_follows_the_config_lines(debug_built, tmp_path):
    changed = labcache.LabCache(_config_with(tmp_path, '"CONFIG_PV32=y"]', '"CONFIG_PV32=y", "CONFIG_SHADOW_PAGING=y"]'),
                                flavour="debug")
    assert changed.src_key == debug_built.src_key
    assert changed.xen_key != debug_built.xen_key
    assert changed.host_key == debug_built.host_key
