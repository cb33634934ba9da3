"""The project's own tests: the harness package on the path, and its pytest
plugin (the `target` fixture and the --kernel/--spec/--host options)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pytest  # noqa: E402

pytest_plugins = ["xenboot.plugin"]


def pytest_configure(config):
    # A user's suite may skip what a broken boot cannot test; here a boot
    # that does not PASS is the harness failing, and a skip would hide it.
    config.option.xenboot_fail_unbooted = True


@pytest.fixture(scope="session")
def debian_vmlinuz():
    """Debian's Linux kernel from the lab cache: a real PV guest kernel."""
    from xenboot.lab import cache as labcache, config as labconfig
    cache = labcache.LabCache(labconfig.load())
    cache.ensure(log=lambda line: None)
    (path,) = (cache.packages_dir / "root" / "boot").glob("vmlinuz-*")
    return str(path)
