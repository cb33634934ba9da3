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


REAL_TREE = "XENBOOT_REAL_TREE"


def pytest_configure(config):
    # A user's suite may skip what a broken boot cannot test; here a boot
    # that does not PASS is the harness failing, and a skip would hide it.
    config.option.xenboot_fail_unbooted = True
    config.addinivalue_line("markers", f"real_tree: builds the real FreeBSD source tree ${REAL_TREE} names "
                                       "(skipped without it; CI has none)")


def pytest_collection_modifyitems(config, items):
    if os.environ.get(REAL_TREE):
        return
    skip = pytest.mark.skip(reason=f"{REAL_TREE} is not set: set it to a real FreeBSD 10 source tree "
                                   "to run the builds of one")
    for item in items:
        if "real_tree" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def real_tree():
    """The real FreeBSD tree $XENBOOT_REAL_TREE names (only real_tree tests run with it)."""
    return pathlib.Path(os.environ[REAL_TREE]).resolve()
