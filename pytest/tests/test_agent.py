"""images/dom0's agent, built natively and driven over a socketpair (`serve
-`), and its control-line parser under libFuzzer: a request that fails costs
its job, never the agent (issue 19). The lab boots show the same agent in
dom0."""
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading

import pytest

from xenboot.core import paths
from xenboot.core.errors import InfraError
from xenboot.host.lab import dom0
from xenboot.host.lab.agent import Agent

DOM0 = paths.IMAGES / "dom0"
SEEDS = DOM0 / "fuzz" / "corpus"


def make_dom0(out, *targets):
    subprocess.run(["make", "-s", "-C", str(DOM0), f"O={out}", *targets], check=True,
                   capture_output=True, text=True)


@pytest.fixture(scope="module")
def agent_binary():
    # Readable by nobody (see as_nobody), which pytest's own tmp folders are not.
    out = tempfile.mkdtemp(prefix="xenboot-agent-")
    os.chmod(out, 0o755)
    make_dom0(out)
    yield os.path.join(out, "xenboot-agent")
    shutil.rmtree(out)


def as_nobody():
    """Root's processes ignore RLIMIT_NPROC: as root, the agent runs as nobody."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


@pytest.fixture
def served(agent_binary):
    """(the agent's process, the harness's end of its control channel)."""
    ours, theirs = socket.socketpair()
    proc = subprocess.Popen([agent_binary, "serve", "-"], stdin=theirs, **as_nobody())
    theirs.close()
    ours.settimeout(10)
    yield proc, ours
    # shutdown(): a close() alone waits for the Agent's reader in recv().
    ours.shutdown(socket.SHUT_RDWR)
    ours.close()
    # The harness going away ends the agent, as in dom0.
    assert proc.wait(timeout=10) == 0


class Wire:
    """The control channel by hand: lines as the harness writes them, replies
    as the agent does, split into fields."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def run(self, job_id, *argv):
        self.send(" ".join(["run", job_id] + [a.encode().hex() for a in argv]))

    def reply(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the agent closed the control channel")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode().split(" ")

    def error(self):
        """(job id, message) of the next reply, which must be an error."""
        kind, job_id, message = self.reply()
        assert kind == "error"
        return job_id, bytes.fromhex(message).decode()

    def answers(self, job_id="ok"):
        """The agent still runs jobs, and nothing came before this one's."""
        self.run(job_id, "echo", "hi")
        assert self.reply() == ["out", job_id, b"hi\n".hex()]
        assert self.reply() == ["exit", job_id, "0"]


@pytest.fixture
def wire(served):
    wire = Wire(served[1])
    assert wire.reply() == ["ready"]
    yield wire
    assert served[0].poll() is None


@pytest.fixture
def agent(served):
    """The harness's own client (lab/agent.py) on a native agent."""
    agent = Agent(served[1])
    agent.wait_ready(10)
    return agent


def hexes(*args):
    return " ".join(a.encode().hex() for a in args)


REFUSED = [
    # Longer than `line` in send_data once was; ids go back unencoded.
    (f"run {'7' * 33} {hexes('true')}", "-", "no job id of 1 to 32"),
    (f"run 1/2 {hexes('true')}", "-", "no job id"),
    (f"run  {hexes('true')}", "-", "no job id"),
    ("run", "-", "no job id"),
    ("run 7 7472756", "7", "argv[0]: odd number of hex digits"),
    (f"run 7 {hexes('sh')} 2D63", "7", "argv[1]: not lowercase hex"),
    (f"run 7 {hexes('echo')} 610062", "7", "argv[1] holds a NUL byte"),
    ("run 7", "7", "no program to run"),
    (f"run 7 {hexes(*['true'] * 257)}", "7", "more than 256 arguments"),
    ("kill 7 abc", "7", "signal is not a number from 1 to 64"),
    ("kill 7 -9", "7", "signal is not a number"),
    ("kill 7 +9", "7", "signal is not a number"),
    ("kill 7 0", "7", "signal is not a number"),
    ("kill 7 65", "7", "signal is not a number"),
    ("kill 7 99999999999999999999", "7", "signal is not a number"),
    ("kill 7", "7", "kill takes one signal number"),
    ("kill 7 9 9", "7", "kill takes one signal number"),
    ("stop 7", "7", "unknown request"),
    # Answered from its start; its rest is dropped, not read as requests.
    (f"run 7 {hexes('echo')} {'61' * 40000}", "7", "line longer than 65535 bytes"),
]


@pytest.mark.parametrize("line, job_id, words", REFUSED, ids=[line[:40] for line, _, _ in REFUSED])
def test_refused_line_is_an_error_naming_its_job_and_the_agent_goes_on(wire, line, job_id, words):
    wire.send(line)
    got_id, message = wire.error()
    assert got_id == job_id and words in message, message
    wire.answers()


def test_id_of_the_longest_length_is_taken(wire):
    wire.run("A_9" + "z" * 29, "true")
    assert wire.reply() == ["exit", "A_9" + "z" * 29, "0"]


def test_duplicate_id_and_full_table_cost_only_that_request(wire):
    wire.run("s0", "sleep", "30")
    wire.run("s0", "true")
    assert wire.error() == ("s0", "job id already in use")
    for i in range(1, 64):
        wire.run(f"s{i}", "sleep", "30")
    wire.run("extra", "true")
    assert wire.error() == ("extra", "no free job slot (64 jobs running)")
    for i in range(64):
        wire.send(f"kill s{i} 15")
    assert sorted(tuple(wire.reply()) for _ in range(64)) == sorted(("exit", f"s{i}", "143") for i in range(64))
    wire.answers()


def test_kill_of_an_ended_or_unknown_job_is_no_error(wire):
    wire.run("t", "true")
    assert wire.reply() == ["exit", "t", "0"]
    wire.send("kill t 15")
    wire.send("kill never 15")
    wire.answers()


def test_empty_argument_reaches_the_program(agent):
    job = agent.run(["sh", "-c", 'printf "[%s]" "$@"', "x", "", "y"], timeout=10)
    assert job.stdout == b"[][y]"


def test_kill_right_behind_run_reaches_the_job(agent):
    job = agent.start(["sleep", "30"])
    job.kill()
    assert job.wait(10) == 128 + 15


def test_program_that_cannot_run_exits_127_saying_why(agent):
    job = agent.run(["/nonexistent/program"], timeout=10, check=False)
    assert job.status == 127
    assert b"xenboot-agent: exec /nonexistent/program: No such file or directory" in job.stderr
    agent.run(["true"], timeout=10)


@contextlib.contextmanager
def limited(pid, name, option, soft):
    """The agent's soft limit `option` (prlimit(1)'s name; `name`, that of
    /proc/PID/limits) at `soft` for the with-block. prlimit runs as the
    agent's user: another user's limits take CAP_SYS_RESOURCE, which root in
    a container may not have."""
    with open(f"/proc/{pid}/limits") as f:
        (old,) = (line[len(name):].split()[0] for line in f if line.startswith(name))
    def prlimit(value):
        subprocess.run(["prlimit", f"--pid={pid}", f"--{option}={value}:"], check=True, **as_nobody())
    prlimit(soft)
    try:
        yield
    finally:
        prlimit(old)


def open_fds(pid):
    return sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))


def test_fork_failure_ends_the_job_as_infra_naming_it(served, agent):
    with limited(served[0].pid, "Max processes", "nproc", 0):
        with pytest.raises(InfraError, match=r"^host command true: dom0 agent, job \d+: "
                                             r"fork: Resource temporarily unavailable$"):
            agent.run(["true"], timeout=10)
    agent.run(["true"], timeout=10)


def test_pipe_failure_ends_the_job_and_leaks_no_descriptor(served, agent):
    pid = served[0].pid
    before = open_fds(pid)
    # Room for the job's first pipe, not for its second.
    with limited(pid, "Max open files", "nofile", before[-1] + 3):
        with pytest.raises(InfraError, match=r"dom0 agent, job \d+: pipe2: Too many open files$"):
            agent.run(["true"], timeout=10)
    assert open_fds(pid) == before
    agent.run(["true"], timeout=10)


def test_line_naming_no_job_wakes_every_waiter(agent):
    # Short: the agent leaves it running when the channel closes, as in dom0.
    job = agent.start(["sleep", "2"])
    agent._send("run")
    with pytest.raises(InfraError, match="dom0 agent refused a control line: no job id"):
        job.wait(10)


@pytest.mark.slow
def test_control_line_parser_under_libfuzzer(tmp_path):
    make_dom0(tmp_path, "fuzz")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    # A new corpus folder first: libFuzzer writes what it finds there, and
    # only reads the seeds.
    proc = subprocess.run([str(tmp_path / "fuzz-protocol"), "-max_total_time=20", "-timeout=10",
                           "-print_final_stats=1", f"-artifact_prefix={artifacts}/",
                           str(corpus), str(SEEDS)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert list(artifacts.iterdir()) == []
    stats = dict(line.removeprefix("stat::").split(":") for line in proc.stderr.splitlines()
                 if line.startswith("stat::"))
    assert int(stats["number_of_executed_units"]) > 10000, proc.stderr[-2000:]


def test_a_console_attachment_closed_by_two_owners_gives_its_port_back_once():
    """gdb's bridge and the boot's teardown close gdbsx's attachment at
    once: the port goes back once (twice listed it twice as free, and on a
    lab server a second release failed the boot), and the second owner
    returns only once it is back."""
    released, entered, proceed = [], threading.Event(), threading.Event()

    def release():
        entered.set()
        proceed.wait(10)  # a release in progress while the other owner closes
        released.append(1)

    a, b = socket.socketpair()
    attachment = dom0.ConsoleAttachment(a, relay=None, release=release)
    first = threading.Thread(target=attachment.close)
    first.start()
    assert entered.wait(10)
    second = threading.Thread(target=attachment.close)
    second.start()
    second.join(0.5)
    assert second.is_alive(), "the second owner returned while the port was still being given back"
    proceed.set()
    for thread in (first, second):
        thread.join(10)
    assert released == [1]
    a.close()
    b.close()
