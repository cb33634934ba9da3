"""The project's own tests: the harness package on the path, and its pytest
plugin (the `target` fixture and the --kernel/--spec/--host options)."""
import os
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
