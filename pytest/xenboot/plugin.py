"""pytest plugin: hand tests a booted Xen PV guest.

    pytest -p xenboot.plugin --kernel build/probe/probe --spec probe tests/

    @pytest.mark.xenboot(kernel="probe", spec="probe", cmdline="probe.run=info", lab="debug")
    def test_echo(target):
        target.session.send_line("echo hi")
        target.session.expect(r"^hi$")

    @pytest.mark.parametrize("xenboot_request", [{"kernel": "probe", "spec": "probe"},
                                                 {"kernel": "vmlinuz", "spec": "generic"}],
                             indirect=True)
    def test_each(target): ...

A boot that does not PASS skips the tests that need it, with the verdict as
the reason; with `--xenboot-fail-unbooted` (or the ini setting
`xenboot_fail_unbooted = true`) it fails them instead, as this project's own
tests ask. junit.xml gets the verdict, the run folder and each milestone's
time as properties of every test that used the target (pytest writes test
properties with `-o junit_family=xunit1`, as `make test` runs it).
"""
import dataclasses
import os

import pytest

from xenboot.core import paths
from xenboot.pipeline.boot import BootRequest, booted
from xenboot.core.errors import Verdict
from xenboot.core.result import new_run_dir

FIELDS = {f.name for f in dataclasses.fields(BootRequest)}
FAIL_UNBOOTED_HELP = "a boot that does not PASS fails the tests that need it (default: skips them)"


def pytest_addoption(parser):
    group = parser.getgroup("xenboot", "booting Xen PV guests")
    group.addoption("--kernel", help="kernel the `target` fixture boots (path, or `probe`)")
    group.addoption("--spec", default=None, help="milestone spec (default generic)")
    group.addoption("--host", default="lab", help="lab (embedded Xen in QEMU) or xl (this dom0)")
    group.addoption("--cmdline", default=None, help="guest kernel command line")
    group.addoption("--lab", default=None, help="the lab's Xen: debian or debug (default: lab.toml's)")
    group.addoption("--xenboot-out", default=None, help="parent folder of the run folders")
    group.addoption("--xenboot-fail-unbooted", action="store_true",
                    help=FAIL_UNBOOTED_HELP)
    parser.addini("xenboot_fail_unbooted", type="bool", default=False,
                  help=FAIL_UNBOOTED_HELP)


def pytest_configure(config):
    config.addinivalue_line("markers", "xenboot(**request): what the `target` fixture boots "
                                       "(kernel, spec, cmdline, host, lab, memory_mb, disk, log_cap)")


@pytest.fixture
def xenboot_request(request):
    """The BootRequest for this test: a parametrized dict, else the
    `xenboot` marker, over the command-line options."""
    opts = request.config.option
    fields = {"kernel": opts.kernel, "spec": opts.spec, "host": opts.host, "cmdline": opts.cmdline,
              "lab": opts.lab}
    marker = request.node.get_closest_marker("xenboot")
    if marker:
        fields.update(marker.kwargs)
    fields.update(getattr(request, "param", None) or {})
    unknown = set(fields) - FIELDS
    if unknown:
        raise pytest.UsageError(f"xenboot request: unknown field(s) {', '.join(sorted(unknown))}")
    if not fields.get("kernel"):
        pytest.skip("no kernel to boot: pass --kernel or mark the test with xenboot(kernel=...)")
    parent = os.path.join(opts.xenboot_out or str(paths.out_root() / "pytest"),
                          request.node.name.replace("/", "_")[:100])
    os.makedirs(parent, exist_ok=True)
    return BootRequest(**{k: v for k, v in fields.items() if v is not None}
                       | {"out_dir": new_run_dir(parent)})


@pytest.fixture
def target(xenboot_request, record_property, request):
    """A booted guest that passed its spec: `.session` (ConsoleSession:
    send_line, expect), `.domain`, `.host`, `.record`, `.out`."""
    with booted(xenboot_request, progress=lambda line: None) as booted_target:
        record_property("xenboot_verdict", booted_target.verdict.value)
        record_property("xenboot_run", booted_target.out)
        for m in booted_target.record.get("milestones") or []:
            record_property(f"milestone {m['name']}", m["seconds"])
        if booted_target.verdict is not Verdict.PASS:
            why = f"boot {booted_target.verdict.value}: {booted_target.message} ({booted_target.out})"
            config = request.config
            if config.getoption("xenboot_fail_unbooted") or config.getini("xenboot_fail_unbooted"):
                pytest.fail(why, pytrace=False)
            pytest.skip(why)
        yield booted_target
