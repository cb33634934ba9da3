"""The project's own tests: the harness package on the path, and its pytest
plugin (the `target` fixture and the --kernel/--spec/--host options)."""
import os
import pathlib
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pytest  # noqa: E402

pytest_plugins = ["xenboot.plugin"]


@pytest.fixture(scope="session")
def debian_vmlinuz():
    """Debian's Linux kernel from the lab cache: a real PV guest kernel."""
    from xenboot.lab import cache as labcache, config as labconfig
    cache = labcache.LabCache(labconfig.load())
    cache.ensure(log=lambda line: None)
    (path,) = (cache.packages_dir / "root" / "boot").glob("vmlinuz-*")
    return str(path)


# Trees outside the project that some tests build (never committed): the
# marker, the variable naming the tree, and what to set it to.
TREES = {
    "real_tree": ("XENBOOT_REAL_TREE", "a real FreeBSD 10 source tree"),
    "branch_tree": ("XENBOOT_BRANCH_TREE", "a reconstruction of the amd64_xen_pv branch's tree "
                                           "(the branch's amd64 files over a FreeBSD 10 tree)"),
}


def pytest_configure(config):
    # A user's suite may skip what a broken boot cannot test; here a boot
    # that does not PASS is the harness failing, and a skip would hide it.
    config.option.xenboot_fail_unbooted = True
    for marker, (variable, what) in TREES.items():
        config.addinivalue_line("markers", f"{marker}: builds {what}, ${variable} (skipped without it; "
                                           "CI has none)")


def pytest_collection_modifyitems(config, items):
    for marker, (variable, what) in TREES.items():
        if os.environ.get(variable):
            continue
        skip = pytest.mark.skip(reason=f"{variable} is not set: set it to {what} to run the builds of one")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)


def _tree(marker):
    return pathlib.Path(os.environ[TREES[marker][0]]).resolve()


@pytest.fixture(scope="session")
def real_tree():
    """The real FreeBSD tree $XENBOOT_REAL_TREE names (only real_tree tests run with it)."""
    return _tree("real_tree")


@pytest.fixture(scope="session")
def branch_tree():
    """The branch reconstruction $XENBOOT_BRANCH_TREE names (only branch_tree tests run with it)."""
    return _tree("branch_tree")
