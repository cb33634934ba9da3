"""`xenboot image`: UFS root images from Debian's makefs, byte for byte the
same for the same inputs, read back by the module's own UFS reader.

Mounting the image in Linux (ufs driver) is checked on the Xen host's dom0,
not here: these tests need no root.
"""
import json
import os
import struct
import subprocess
import tarfile

import pytest

from xenboot import cli
from xenboot.image import image
from xenboot.core.errors import BadInput, InfraError

UFS1_MAGIC, UFS2_MAGIC = 0x011954, 0x19540119
MAGIC_AT = 8192 + 1372


def xenboot(monkeypatch, *argv):
    """Runs `xenboot <argv>` through the real entry point, with only this stage's command."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("xenboot.image.image",))
    return cli.main(list(argv))


def magic(path):
    with open(path, "rb") as f:
        f.seek(MAGIC_AT)
        return struct.unpack("<I", f.read(4))[0]


@pytest.fixture(scope="module")
def default_image(tmp_path_factory):
    out = tmp_path_factory.mktemp("image")
    return out, image.make_image(out)


def test_default_image_is_ufs1_with_superblock_at_8192(default_image):
    out, data = default_image
    img = out / image.IMAGE_NAME
    assert magic(img) == UFS1_MAGIC and data["superblock_offset"] == 8192
    described = subprocess.run(["file", str(img)], capture_output=True, text=True).stdout
    assert "Unix Fast File system [v1] (little-endian)" in described
    assert "last written at Thu Jan  1 00:00:00 1970" in described


def test_default_image_holds_init_and_mount_points(default_image):
    out, data = default_image
    entries = {e["path"]: e for e in data["entries"]}
    assert set(entries) == {"/", "/dev", "/etc", "/etc/fstab", "/sbin", "/sbin/init"}
    assert entries["/sbin/init"]["mode"] == "0555"
    assert entries["/sbin/init"]["sha256"] == image.sha256_file(out / "init" / "amd64" / "init")
    with open(out / image.IMAGE_NAME, "rb") as f:
        found = image.UfsReader(f).tree()
    assert found == entries


def test_an_i386_image_holds_the_i386_init(default_image, tmp_path, monkeypatch, capsys):
    assert xenboot(monkeypatch, "image", "--out", str(tmp_path), "--target", "i386") == 0
    data = json.loads((tmp_path / image.MANIFEST_NAME).read_text())
    init = {e["path"]: e for e in data["entries"]}["/sbin/init"]
    assert data["target"] == "i386" and default_image[1]["target"] == "amd64"
    assert init["sha256"] == image.sha256_file(tmp_path / "init" / "i386" / "init")
    assert init["sha256"] != {e["path"]: e for e in default_image[1]["entries"]}["/sbin/init"]["sha256"]
    with open(tmp_path / "init" / "i386" / "init", "rb") as f:
        assert f.read(20)[18] == 3  # e_machine EM_386
    assert "init for i386" in capsys.readouterr().out


def test_manifest_next_to_image_matches_it(default_image):
    out, data = default_image
    written = json.loads((out / image.MANIFEST_NAME).read_text())
    assert written == data
    assert written["sha256"] == image.sha256_file(out / image.IMAGE_NAME)


def test_two_runs_give_the_same_bytes(default_image, tmp_path):
    out, data = default_image
    assert image.make_image(tmp_path)["sha256"] == data["sha256"]


def test_ufs2_superblock_and_repeatability(tmp_path):
    first = image.make_image(tmp_path / "a", fmt="ufs2")
    second = image.make_image(tmp_path / "b", fmt="ufs2")
    assert magic(tmp_path / "a" / image.IMAGE_NAME) == UFS2_MAGIC
    assert first["superblock_offset"] == 8192
    assert first["sha256"] == second["sha256"]


def test_source_date_epoch_sets_the_time_and_the_bytes(default_image, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1377000000")
    data = image.make_image(tmp_path)
    assert data["sha256"] != default_image[1]["sha256"]
    described = subprocess.run(["file", str(tmp_path / image.IMAGE_NAME)], capture_output=True, text=True).stdout
    assert "last written at Tue Aug 20 12:00:00 2013" in described


def test_readdir_shim_lists_in_name_order(tmp_path):
    for name in ("zeta", "alpha", "mid", "Beta"):
        (tmp_path / name).touch()
    listing = subprocess.run(["ls", "-f", str(tmp_path)],
                             env=dict(os.environ, LD_PRELOAD=str(image.sorted_readdir_shim())),
                             capture_output=True, text=True, check=True).stdout
    assert listing.split() == [".", "..", "Beta", "alpha", "mid", "zeta"]


def make_world(root, order):
    """A small world with what base.txz has: setuid files, hard links, symlinks, odd names."""
    for name in order:
        (root / "bin").mkdir(parents=True, exist_ok=True)
        (root / "bin" / name).write_text(f"#!/bin/sh\necho {name}\n")
    os.link(root / "bin" / "sh", root / "bin" / "[")
    (root / "usr" / "share").mkdir(parents=True)
    (root / "usr" / "share" / "big").write_bytes(bytes(range(256)) * 4096)
    (root / "odd name#1").write_text("odd\n")
    os.symlink("../odd name#1", root / "bin" / "link to odd")
    (root / "bin" / "sh").chmod(0o4555)


def test_world_dir_and_tar_give_the_same_image(tmp_path):
    make_world(tmp_path / "w1", ["sh", "cat", "test", "ls"])
    make_world(tmp_path / "w2", ["ls", "test", "cat", "sh"])
    with tarfile.open(tmp_path / "base.txz", "w:xz") as tar:
        tar.add(tmp_path / "w1", arcname=".")
    results = []
    for n, world in enumerate((tmp_path / "w1", tmp_path / "w2", tmp_path / "base.txz")):
        results.append(image.make_image(tmp_path / f"out{n}", world=str(world)))
    assert len({r["sha256"] for r in results}) == 1
    entries = {e["path"]: e for e in results[0]["entries"]}
    assert entries["/bin/["].get("hardlink") is None and entries["/bin/sh"]["hardlink"] == "/bin/["
    assert entries["/bin/sh"]["mode"] == "4555"
    assert entries["/bin/link to odd"]["target"] == "../odd name#1"
    assert entries["/usr/share/big"]["size"] == 256 * 4096


def test_tar_owners_reach_the_image_and_a_manifest_overlays_the_world(tmp_path):
    payload = tmp_path / "payload"
    payload.write_text("data\n")
    with tarfile.open(tmp_path / "base.txz", "w:xz") as tar:
        info = tar.gettarinfo(payload, arcname="./etc/owned")
        info.uid, info.gid, info.mode = 123, 45, 0o640
        with open(payload, "rb") as f:
            tar.addfile(info, f)
        info = tar.gettarinfo(payload, arcname="./sbin/init")
        with open(payload, "rb") as f:
            tar.addfile(info, f)
    data = image.make_image(tmp_path, world=str(tmp_path / "base.txz"), manifest=image.DEFAULT_MANIFEST)
    entries = {e["path"]: e for e in data["entries"]}
    assert (entries["/etc/owned"]["uid"], entries["/etc/owned"]["gid"], entries["/etc/owned"]["mode"]) == (123, 45, "0640")
    assert entries["/sbin/init"]["sha256"] == image.sha256_file(tmp_path / "init" / "amd64" / "init")


def tar_of(path, *members):
    """A tar archive of (name, tar type, link name) members; files are empty."""
    with tarfile.open(path, "w") as tar:
        for name, kind, linkname in members:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, linkname
            tar.addfile(info)
    return str(path)


def test_a_path_through_a_symlink_is_refused(tmp_path):
    world = tar_of(tmp_path / "base.tar", ("./etc", tarfile.SYMTYPE, str(tmp_path / "outside")),
                   ("./etc/passwd", tarfile.REGTYPE, ""))
    with pytest.raises(BadInput, match="lies under the symlink /etc"):
        image.make_image(tmp_path / "out", world=world)
    assert not (tmp_path / "outside").exists()


def test_a_later_member_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    (tmp_path / "outside").write_text("host file\n")
    world = tar_of(tmp_path / "base.tar", ("./motd", tarfile.SYMTYPE, str(tmp_path / "outside")),
                   ("./motd", tarfile.REGTYPE, ""))
    entries = {e["path"]: e for e in image.make_image(tmp_path / "out", world=world)["entries"]}
    assert entries["/motd"]["type"] == "file" and entries["/motd"]["size"] == 0
    assert (tmp_path / "outside").read_text() == "host file\n"


def test_a_hard_link_to_a_symlink_is_refused(tmp_path):
    (tmp_path / "secret").write_text("host file\n")
    world = tar_of(tmp_path / "base.tar", ("./a", tarfile.SYMTYPE, str(tmp_path / "secret")),
                   ("./b", tarfile.LNKTYPE, "./a"))
    with pytest.raises(BadInput, match="not a file earlier in the archive"):
        image.make_image(tmp_path / "out", world=world)


def test_read_back_catches_a_changed_byte(default_image, tmp_path):
    out, data = default_image
    img = tmp_path / "copy.img"
    raw = bytearray((out / image.IMAGE_NAME).read_bytes())
    init = (out / "init" / "amd64" / "init").read_bytes()
    at = raw.find(init[:512])
    raw[at + 100] ^= 0xFF
    img.write_bytes(raw)
    with pytest.raises(InfraError, match="/sbin/init reads back as"):
        image.verify(img, data["entries"])


@pytest.mark.parametrize("text, complaint", [
    ('["etc/x"]\ntype = "dir"\n', "must be absolute"),
    ('["/x/../y"]\ntype = "dir"\n', "has . or .."),
    ('["/x"]\ntype = "fifo"\n', "type must be one of"),
    ('["/x"]\ntype = "file"\nmode = "999"\nsource = "f"\n', "mode must be an octal"),
    ('["/x"]\ntype = "file"\nsource = "missing"\n', "is not a file"),
    ('["/x"]\ntype = "file"\nsource = "../../etc/passwd"\n', "outside the manifest's folder"),
    ('["/x"]\ntype = "dir"\ncolour = "red"\n', "unknown fields"),
])
def test_bad_manifests_are_bad_input(tmp_path, text, complaint):
    (tmp_path / "m.toml").write_text(text)
    with pytest.raises(BadInput, match=complaint):
        image.load_manifest(tmp_path / "m.toml")


def test_cli_writes_image_manifest_and_result(tmp_path, monkeypatch, capsys):
    assert xenboot(monkeypatch, "image", "--out", str(tmp_path)) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["verdict"] == "PASS"
    assert result["image"]["sha256"] == image.sha256_file(tmp_path / image.IMAGE_NAME)
    assert (tmp_path / image.MANIFEST_NAME).exists() and (tmp_path / "junit.xml").exists()
    assert "xenboot: image" in capsys.readouterr().out


@pytest.mark.parametrize("argv, complaint", [
    (["--size", "16k"], "give a larger --size"),
    (["--size", "lots"], "--size 'lots'"),
    (["--world", "/nonexistent/world"], "no such file or directory"),
    (["--world", "/etc/hostname"], "not a readable tar archive"),
])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, monkeypatch, capsys, argv, complaint):
    assert xenboot(monkeypatch, "image", "--out", str(tmp_path), *argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and complaint in err and err.startswith("xenboot: BAD_INPUT:")
    assert json.loads((tmp_path / "result.json").read_text())["verdict"] == "BAD_INPUT"


def test_an_unknown_target_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="--target 'arm64': images/init is built for amd64 and i386"):
        image.make_image(tmp_path, target="arm64")
    assert not (tmp_path / "init").exists()
