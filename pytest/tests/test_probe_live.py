"""The probe kernel driven at its prompt on the embedded host, through the
pytest plugin's `target` fixture (issue 3): each fault command gives the
verdict a harness user relies on."""
import pytest

from xenboot.console import ExpectFailed
from xenboot.errors import Verdict

pytestmark = pytest.mark.xenboot(kernel="probe", spec="probe")


def test_echo_round_trip(target):
    target.session.send_line("echo hello from the harness")
    match = target.session.expect(r"^hello from the harness$", timeout=10)
    assert match.seconds > 0
    target.session.expect(r"^probe> ", timeout=10)


def test_info_names_the_domain(target):
    target.session.send_line("info")
    assert target.session.expect(r"^info domain (\S+)", timeout=10).group(1) == "domU"


def test_panic_command_is_panic(target):
    target.session.send_line("panic from a test")
    with pytest.raises(ExpectFailed) as failed:
        target.session.expect(r"^never printed$", timeout=20)
    assert failed.value.verdict is Verdict.PANIC
    assert "from a test" in failed.value.message


def test_fault_command_crashes_the_domain(target):
    target.session.send_line("fault")
    with pytest.raises(ExpectFailed) as failed:
        target.session.expect(r"^never printed$", timeout=20)
    assert failed.value.verdict is Verdict.CRASH
    assert target.domain.end_reason() == "crash"


def test_poweroff_command_ends_the_domain_cleanly(target):
    target.session.send_line("poweroff")
    assert target.domain.ended.wait(20)
    assert target.domain.end_reason() == "poweroff"
