"""The FreeBSD source: the pinned freebsd-src submodule, or another checkout.

`xenboot pin [REV]` shows or moves the pin. The pin is the submodule's gitlink
in the index (what the next commit records); a checkout moves with it when it
already has the commit, since there is no network to fetch one.

Every command that needs the source calls `find_source`, which says in one
line how to get it when it is missing rather than letting a build fail deep
inside.
"""
import os
import pathlib
import re

from xenboot.core import inputs, paths, tool
from xenboot.core.errors import BadInput, EXIT_PASS

SUBMODULE = "freebsd-src"
FETCH_HINT = f"git submodule update --init {SUBMODULE}"
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
# A source tree is recognised by what the kernel build needs from it.
TREE_MARKERS = ("sys/conf/files", "sys/amd64/conf")
SRC = inputs.Folder("point it at a FreeBSD source checkout")
REV = inputs.Text("give a full 40-hex commit sha of freebsd-src",
                  problem=lambda rev: None if SHA_RE.match(rev.strip().lower()) else "is not a commit sha")


def git(repo, *argv, check=True):
    return tool.run(["git", "-C", repo, *argv], f"git {' '.join(argv)} in {repo}", check=check)


def find_source(explicit=None):
    """--src, else FREEBSD_SRC, else the submodule; BadInput when it is not there."""
    given = explicit or os.environ.get("FREEBSD_SRC")
    if given:
        origin = "--src" if explicit else "FREEBSD_SRC"
        src = pathlib.Path(SRC.check(given, origin)).resolve()
    else:
        src = paths.REPO / SUBMODULE
        if not src.is_dir() or not any(src.iterdir()):
            raise BadInput(f"{SUBMODULE} is not checked out; fetch it with `{FETCH_HINT}` "
                           "(or set FREEBSD_SRC=/path/to/freebsd-src)")
        origin = SUBMODULE
    missing = [m for m in TREE_MARKERS if not (src / m).exists()]
    if missing:
        raise BadInput(f"{origin} {src} is not a FreeBSD source tree (no {missing[0]}); "
                       f"fetch it with `{FETCH_HINT}` or point FREEBSD_SRC at one")
    return src


def source_commit(src):
    """(commit, commit time) of a git checkout whose top is src, else (None, None):
    a tree inside some other repository (a fixture in this one) has no commit."""
    top = git(src, "rev-parse", "--show-toplevel", check=False)
    if top.returncode != 0 or pathlib.Path(top.stdout.strip()).resolve() != pathlib.Path(src).resolve():
        return None, None
    commit, when = git(src, "log", "-1", "--format=%H %ct").stdout.split()
    return commit, int(when)


def pinned():
    """The commit the index pins the submodule to, or None."""
    proc = git(paths.REPO, "ls-files", "--stage", "--", SUBMODULE, check=False)
    fields = proc.stdout.split()
    return fields[1] if len(fields) >= 2 and fields[0] == "160000" else None


def pin(rev):
    """Moves the pin to rev (a full sha); returns (old, new, checkout moved?)."""
    repo = paths.REPO
    rev = REV.check(rev, "REV").strip().lower()
    old = pinned()
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{rev},{SUBMODULE}")
    checkout = repo / SUBMODULE
    moved = False
    if (checkout / ".git").exists() and git(checkout, "cat-file", "-e", f"{rev}^{{commit}}",
                                            check=False).returncode == 0:
        git(checkout, "checkout", "--quiet", "--detach", rev)
        moved = True
    return old, rev, moved


def run_pin(args):
    if args.rev is None:
        print(f"xenboot: {SUBMODULE} pinned to {pinned() or 'nothing'}")
        return EXIT_PASS
    old, new, moved = pin(args.rev)
    print(f"xenboot: {SUBMODULE} pinned to {new} (was {old or 'nothing'}); the index records it, commit it")
    if not moved:
        print(f"xenboot: the checkout does not have {new[:12]} yet; `{FETCH_HINT}` fetches it")
    return EXIT_PASS


def add_parser(subparsers):
    p = subparsers.add_parser("pin", help="show or move the freebsd-src pin",
                              description=__doc__.splitlines()[0])
    inputs.option(p, "rev", metavar="REV", nargs="?", help="full 40-hex commit sha to pin freebsd-src to",
                  check=REV)
    p.set_defaults(func=run_pin)
