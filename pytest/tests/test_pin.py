"""The freebsd-src pin: a gitlink without a clone, moved by `xenboot pin`, and
the one-line hint every source-needing command gives when it is absent."""
import configparser
import json
import subprocess

import pytest

from xenboot import cli
from xenboot.build import source
from xenboot.core import paths

PIN = "00a82464f2191a802270470b4634e5b67263c4d3"


def xenboot(monkeypatch, *argv):
    """Runs `xenboot <argv>` through the real entry point, with only the commands tested here."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("xenboot.build.source", "xenboot.build.build"))
    return cli.main(list(argv))


def git(repo, *argv):
    return subprocess.run(["git", "-C", str(repo), *argv], check=True, capture_output=True,
                          text=True).stdout.strip()


def commit(repo, message):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "-q", "--allow-empty", "-m", message], check=True)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A project checkout with an empty submodule folder, as a fresh clone has."""
    git(tmp_path, "init", "-q")
    (tmp_path / source.SUBMODULE).mkdir()
    monkeypatch.setattr(paths, "REPO", tmp_path)
    monkeypatch.delenv("FREEBSD_SRC", raising=False)
    return tmp_path


def test_project_pins_freebsd_src_as_a_gitlink():
    staged = git(paths.REPO, "ls-files", "--stage", "--", source.SUBMODULE).split()
    assert staged[0] == "160000" and source.SHA_RE.match(staged[1])
    modules = configparser.ConfigParser()
    modules.read(paths.REPO / ".gitmodules")
    section = modules[f'submodule "{source.SUBMODULE}"']
    assert section["path"] == source.SUBMODULE
    assert section["url"] == "https://github.com/freebsd/freebsd-src"


def test_pin_moves_the_gitlink(repo, monkeypatch, capsys):
    assert xenboot(monkeypatch, "pin", PIN) == 0
    assert source.pinned() == PIN
    assert xenboot(monkeypatch, "pin", "5f1ae06da66f53abfd744cf8091b79c5160b3d46".upper()) == 0
    assert source.pinned() == "5f1ae06da66f53abfd744cf8091b79c5160b3d46"
    out = capsys.readouterr().out
    assert f"(was {PIN})" in out and source.FETCH_HINT in out
    assert xenboot(monkeypatch, "pin") == 0
    assert "pinned to 5f1ae06da66f" in capsys.readouterr().out


@pytest.mark.parametrize("rev", ["00a82464", "g" * 40, PIN + "0", "HEAD"])
def test_pin_refuses_anything_but_a_full_sha(repo, monkeypatch, capsys, rev):
    assert xenboot(monkeypatch, "pin", rev) == 2
    err = capsys.readouterr().err
    assert err.startswith("xenboot: BAD_INPUT:") and "40-hex" in err
    assert source.pinned() is None


def test_pin_checks_out_a_commit_the_checkout_has(repo, monkeypatch):
    checkout = repo / source.SUBMODULE
    git(checkout, "init", "-q")
    first = commit(checkout, "first")
    commit(checkout, "second")
    assert xenboot(monkeypatch, "pin", first) == 0
    assert git(checkout, "rev-parse", "HEAD") == first


def test_kernel_without_source_exits_2_with_the_fetch_command(repo, monkeypatch, capsys, tmp_path):
    out = tmp_path / "out"
    assert xenboot(monkeypatch, "kernel", "--out", str(out)) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err]
    assert "freebsd-src is not checked out" in err and "`git submodule update --init freebsd-src`" in err
    assert json.loads((out / "result.json").read_text())["verdict"] == "BAD_INPUT"


def test_freebsd_src_pointing_nowhere_is_bad_input(repo, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("FREEBSD_SRC", str(tmp_path / "absent"))
    assert xenboot(monkeypatch, "kernel", "--out", str(tmp_path / "out")) == 2
    assert "FREEBSD_SRC=" in capsys.readouterr().err


def test_a_folder_that_is_not_a_freebsd_tree_is_bad_input(repo, monkeypatch, capsys, tmp_path):
    (tmp_path / "notsrc").mkdir()
    assert xenboot(monkeypatch, "kernel", "--src", str(tmp_path / "notsrc"), "--out", str(tmp_path / "out")) == 2
    assert "is not a FreeBSD source tree (no sys/conf/files)" in capsys.readouterr().err
