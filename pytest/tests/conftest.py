"""The project's own tests: the harness package on the path, and its pytest
plugin (the `target` fixture and the --kernel/--spec/--host options)."""
import os
import pathlib
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import importlib.util  # noqa: E402

import pytest  # noqa: E402

import xenboot  # noqa: E402
from xenboot.host.lab import config as labconfig, remote, server as labserver  # noqa: E402

pytest_plugins = ["xenboot.plugin"]

# Found from the harness, not from this file: a user's suite may run a copy
# of this conftest (test_plugin does). Loaded by path, since Python's own
# sitecustomize already holds that name.
NOHOSTS = pathlib.Path(xenboot.__file__).parents[1] / "tests" / "nohosts"
_spec = importlib.util.spec_from_file_location("xenboot_tests_nohosts", NOHOSTS / "sitecustomize.py")
nohosts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nohosts)
# Fixtures that start a Xen host (or fetch what one boots): a test that asks
# for one is marked `lab` without saying so.
LAB_FIXTURES = {"target", "debian_vmlinuz"}


@pytest.fixture(scope="session")
def debian_vmlinuz():
    """Debian's Linux kernel from the lab cache: a real PV guest kernel."""
    from xenboot.host.lab import cache as labcache
    cache = labcache.LabCache(labconfig.load())
    cache.ensure(log=lambda line: None)
    (path,) = (cache.packages_dir / "root" / "boot").glob("vmlinuz-*")
    return str(path)


# The lab servers a worker's lab tests boot on (host/lab/server.py): the
# flavours most of them ask for, on the PV CPU. The rest start hosts of
# their own, as do the tests marked own_host.
SERVED_FLAVOURS = ("debian", "debug")


class LabServers:
    """This worker's lab servers, sharing its base temp folder (where
    every tmp_path lies) with dom0; started when the first lab test runs,
    started again if one has gone (a test stopped its host)."""

    def __init__(self, share):
        self.share = share
        self.servers = {}

    def ensure(self):
        for flavour in SERVED_FLAVOURS:
            server = self.servers.get(flavour)
            if server is None or not server.alive():
                self.servers[flavour] = labserver.ServerProcess(self.share, flavour)

    def stop(self):
        for server in self.servers.values():
            server.stop()


@pytest.fixture(scope="session")
def lab_servers(tmp_path_factory):
    servers = LabServers(tmp_path_factory.getbasetemp())
    yield servers
    servers.stop()


@pytest.fixture(autouse=True)
def _on_a_lab_server(request):
    """A lab test's boots run on this worker's lab servers, unless it is
    marked own_host."""
    node = request.node
    if not node.get_closest_marker("lab") or node.get_closest_marker("own_host"):
        yield
        return
    servers = request.getfixturevalue("lab_servers")
    servers.ensure()
    os.environ[remote.SERVER_ENV] = str(servers.share)
    try:
        yield
    finally:
        os.environ.pop(remote.SERVER_ENV, None)


# Trees outside the project that some tests build (never committed): the
# marker, the variable, what it names, and whether the tests so marked need
# it set (skipped without it) or unset (skipped while it is set).
TREES = {
    "real_tree": ("XENBOOT_REAL_TREE", "a real FreeBSD 10 source tree", "set"),
    "branch_tree": ("XENBOOT_BRANCH_TREE", "a reconstruction of the amd64_xen_pv branch's tree "
                                           "(the branch's amd64 files over a FreeBSD 10 tree)", "set"),
    "xtf_tree": ("XENBOOT_XTF", "XTF (xen-project/xtf), built outside the project", "set"),
    "modern_tree": ("XENBOOT_MODERN_TREE", "a FreeBSD 12.2-14.x source tree (through its own "
                                           "tools/build/make.py)", "set"),
    # The modern_tree tests copy it instead of building from nothing (75 min
    # on 2 cores); a test of the build from nothing needs it unset.
    "fresh_objdir": ("XENBOOT_MODERN_OBJDIR", "a finished object folder (MAKEOBJDIRPREFIX) of "
                                              "$XENBOOT_MODERN_TREE's GENERIC, copied, never written", "unset"),
}


def pytest_configure(config):
    # A user's suite may skip what a broken boot cannot test; here a boot
    # that does not PASS is the harness failing, and a skip would hide it.
    config.option.xenboot_fail_unbooted = True
    if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
        # Several workers' lab hosts share the cores: MTTCG's vCPUs would
        # spin on each other (configs/lab.toml tcg_threads).
        os.environ.setdefault(labconfig.TCG_THREADS_ENV, "single")
    for marker, (variable, what, needs) in TREES.items():
        if needs == "set":
            config.addinivalue_line("markers", f"{marker}: builds {what}, ${variable} (skipped without it; "
                                               "CI has none)")
        else:
            config.addinivalue_line("markers", f"{marker}: builds in an object folder of its own, from "
                                               f"nothing (skipped while ${variable} names {what})")
    config.addinivalue_line("markers", "lab: boots QEMU's embedded lab or a real guest (a test not marked "
                                       "so that starts a Xen host fails; `make test-fast` leaves these out)")
    config.addinivalue_line("markers", "own_host: a lab test about a host of its own (its start, its QEMU, "
                                       "faults in it): it gets no lab server")
    config.addinivalue_line("markers", "slow: boots nothing but takes long (builds, downloads); "
                                       "`make test-fast` leaves these out")
    nohosts.refuse_hosts(lambda: _unmarked_record)


# Before pytest-xdist's worker reads the groups (--dist loadgroup).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if LAB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.lab)
        if _uses_a_module_fixture(item):
            # One worker for the module: its fixture (a bench run, a real
            # nightly, a build) is set up once, not once per worker.
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
    for marker, (variable, what, needs) in TREES.items():
        value = os.environ.get(variable)
        if needs == "set" and not value:
            reason = f"{variable} is not set: set it to {what} to run the builds of one"
        elif needs == "unset" and value:
            reason = (f"{variable}={value} is set, and this test builds from nothing in an object folder of "
                      f"its own: unset {variable} to run it")
        else:
            continue
        for item in items:
            if marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


def _uses_a_module_fixture(item):
    info = getattr(item, "_fixtureinfo", None)
    return info is not None and any(defs[-1].scope in ("module", "class", "package")
                                    for defs in info.name2fixturedefs.values())


def _tree(marker):
    return pathlib.Path(os.environ[TREES[marker][0]]).resolve()


@pytest.fixture(scope="session")
def real_tree():
    """The real FreeBSD tree $XENBOOT_REAL_TREE names (only real_tree tests run with it)."""
    return _tree("real_tree")


@pytest.fixture(scope="session")
def xtf_tree():
    """The built XTF tree $XENBOOT_XTF names (only xtf_tree tests run with it)."""
    return _tree("xtf_tree")


@pytest.fixture(scope="session")
def branch_tree():
    """The branch reconstruction $XENBOOT_BRANCH_TREE names (only branch_tree tests run with it)."""
    return _tree("branch_tree")


@pytest.fixture(scope="session")
def modern_tree():
    """The FreeBSD 12.2-14.x tree $XENBOOT_MODERN_TREE names (only modern_tree tests run with it)."""
    return _tree("modern_tree")


@pytest.fixture(scope="session")
def modern_objdir():
    """The finished object folder $XENBOOT_MODERN_OBJDIR names, or None (build from nothing)."""
    value = os.environ.get(TREES["fresh_objdir"][0])
    return pathlib.Path(value).resolve() if value else None



# While a test not marked `lab` runs: the file its host starts are written
# to (None while a `lab` test runs, or between tests).
_unmarked_record = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Setup, call and teardown of a test not marked `lab` with every host
    start refused, here and in its child processes."""
    global _unmarked_record
    if item.get_closest_marker("lab"):
        yield
        return
    record = item.config._tmp_path_factory.getbasetemp() / "unmarked-hosts"
    saved = {name: os.environ.get(name) for name in (nohosts.RECORD, "PYTHONPATH")}
    os.environ[nohosts.RECORD] = _unmarked_record = str(record)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NOHOSTS), saved["PYTHONPATH"]]))
    try:
        yield
    finally:
        _unmarked_record = None
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A host started (and refused) in a test not marked `lab` fails that
    phase, whatever the test made of the refusal."""
    report = (yield).get_result()
    record = _unmarked_record and pathlib.Path(_unmarked_record)
    if record and record.exists():
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} starts a Xen host but is not marked lab "
                           f"(mark it @pytest.mark.lab):\n{record.read_text()}")
        record.unlink()
