"""A person at the console (issue 7), as a person would: the harness runs in
a real terminal (tmux), keys are typed with send-keys and the screen is read
with capture-pane."""
import json
import os
import shutil
import subprocess
import time

import pytest

from xenboot.core import paths

XENBOOT = str(paths.REPO / "ci" / "xenboot")
PROBE = str(paths.REPO / "build" / "probe" / "probe")
# tmux gives no event for "this text is on the screen now": the screen is
# read again at this interval until the deadline.
SCREEN_POLL = 0.2

pytestmark = [pytest.mark.lab, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]


class Terminal:
    def __init__(self, tmp_path, command):
        self.server = f"xenboot-test-{os.getpid()}-{tmp_path.name}"[:90]
        self.tmux("new-session", "-d", "-s", "t", "-x", "160", "-y", "50", command)
        self.tmux("set-option", "-t", "t", "remain-on-exit", "on")

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.server, *args], check=True,
                              capture_output=True, text=True).stdout

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "t", "-S", "-200")

    def wait_for(self, text, timeout=120):
        deadline = time.monotonic() + timeout
        while text not in self.screen():
            assert time.monotonic() < deadline, f"{text!r} never appeared:\n{self.screen()}"
            time.sleep(SCREEN_POLL)

    def type(self, *keys):
        self.tmux("send-keys", "-t", "t", *keys)

    def close(self):
        subprocess.run(["tmux", "-L", self.server, "kill-server"], capture_output=True)


@pytest.fixture
def terminal(tmp_path):
    made = []

    def start(command):
        made.append(Terminal(tmp_path, command))
        return made[-1]

    yield start
    for t in made:
        t.close()


def qemu_running_for(folder):
    return subprocess.run(["pgrep", "-f", f"qemu-system.*{folder}"], capture_output=True).returncode == 0


def test_probe_console_handed_to_a_person_and_back(tmp_path, terminal):
    out = tmp_path / "run"
    term = terminal(f"{XENBOOT} boot --kernel {PROBE} --spec probe --interactive --out {out}; "
                    f"echo EXIT=$?")
    term.wait_for("you are on the guest console")
    term.type("echo hi from tmux", "Enter")
    term.wait_for("\nhi from tmux")
    term.type("C-]")
    term.wait_for("EXIT=0")
    assert "console session ended (escape)" in term.screen()
    assert not qemu_running_for(out)
    sent = [json.loads(line) for line in (out / "console.jsonl").read_text().splitlines()]
    assert "".join(e["text"] for e in sent if e["dir"] == "send").startswith("echo hi from tmux")
    assert b"\nhi from tmux" in (out / "console.log").read_bytes()


def test_interactive_without_a_terminal_is_refused(tmp_path):
    proc = subprocess.run([XENBOOT, "boot", "--kernel", PROBE, "--interactive", "--out", str(tmp_path / "run")],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "INTERACTIVE=1 needs a terminal" in proc.stdout.strip().splitlines()[-1]
    assert not (tmp_path / "run" / "host.log").exists()


def test_dom0_shell_for_a_person(tmp_path, terminal):
    term = terminal(f"{XENBOOT} lab shell; echo EXIT=$?")
    term.wait_for("dom0#")  # capture-pane drops trailing blanks
    term.type("xl list", "Enter")
    term.wait_for("Domain-0")
    term.type("exit", "Enter")
    term.wait_for("EXIT=0")


def test_a_second_terminal_joins_a_running_boot(tmp_path, terminal):
    out = tmp_path / "run"
    spec = tmp_path / "long.toml"
    spec.write_text("hang = 120\n[[milestone]]\nname = \"mirrored\"\n"
                    "pattern = '^typed from a second terminal$'\nbudget = 120\n")
    boot = subprocess.Popen([XENBOOT, "boot", "--kernel", PROBE, "--spec", str(spec), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in boot.stdout:  # the guest runs and its console is offered
            if "running; judging" in line:
                break
        term = terminal(f"{XENBOOT} console {out}; echo EXIT=$?")
        term.wait_for("on the guest console of")
        term.type("echo typed from a second terminal", "Enter")
        # The probe answered, and the boot's own judge saw the answer.
        assert boot.wait(120) == 0
        term.wait_for("EXIT=0")
    finally:
        boot.kill()
    result = json.loads((out / "result.json").read_text())
    assert result["verdict"] == "PASS"
    sent = [json.loads(line) for line in (out / "console.jsonl").read_text().splitlines()]
    assert "".join(e["text"] for e in sent if e["dir"] == "send").startswith("echo typed from")
    assert not (out / "console.sock").exists()
