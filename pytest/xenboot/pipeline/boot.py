"""`xenboot boot`: check a PV kernel, boot it on a Xen host, judge its console.

Stages, each timed in result.json `durations`:
  check   the kernel file (kernelcheck), the spec, the command line
  lab     the lab cache (built once) and the host (QEMU + dom0, or local dom0)
  create  `xl create -F -p`, console pty relayed, then `xl unpause`
  console the judge reads the console against the spec
  teardown evidence (xenconsoled's copy, diagnosis) collected, domain destroyed
Whatever happens, result.json, junit.xml and reproduce.sh are written and
QEMU is gone when this returns.
"""
import contextlib
import dataclasses
import functools
import os
import re
import secrets
import shlex
import shutil
import signal
import threading
import time

from xenboot.console import console, xenconsole
from xenboot.core import inputs, paths, result, terminal, tool
from xenboot.guest import gdb, kernelcheck, symbolize, xl
from xenboot.judge import spec as specs
from xenboot.guest.symbols import Symbols, text_bounds
from xenboot.core.errors import BadInput, HarnessError, InfraError, Verdict
from xenboot.host.hosts import HOST, LocalXenHost, check_host_kind
from xenboot.host.lab import config as labconfig
from xenboot.host.lab import remote
from xenboot.host.lab.qemu import lab_host
from xenboot.console.mirror import ConsoleMirror
from xenboot.console.progress import Progress

DEFAULT_LOG_CAP = console.DEFAULT_LOG_CAP
NAMED_KERNELS = {"probe": "build/probe/probe"}
CMDLINE = inputs.Text("Xen passes a guest at most 1023 characters of printable text", max_len=1023)
# A guest needs a few MiB to start; more than a big host has is a typo.
MEMORY = inputs.Integer(16, 65536, "MiB of guest memory")
LOG_CAP = inputs.Integer(4 * inputs.KiB, 16 * inputs.GiB, "bytes of console.log")
# A FreeBSD root with a whole world is 1-2 GiB; reproduce.sh hashes it on every boot.
DISK = inputs.File("disk image", "run `make image` or give DISK=<path of a raw disk image>", 4 * inputs.GiB)
# The xl template of a guest type, where it is not pv.cfg.in.
TEMPLATES = {kernelcheck.PVH: "pvh.cfg.in"}
# reproduce.sh's inputs, each with the rule it is taken by.
REPRODUCED = {"kernel": kernelcheck.KERNEL_FILE, "spec": specs.SPEC_FILE, "disk": DISK, "template": xl.TEMPLATE,
              "lab_config": labconfig.CONFIG_FILE}


@dataclasses.dataclass
class BootRequest:
    kernel: str
    spec: str = "generic"
    cmdline: str = ""
    host: str = "lab"
    memory_mb: int = 128
    disk: str = None
    out_dir: str = None
    log_cap: int = DEFAULT_LOG_CAP
    lab_config: str = None
    # The lab's flavour (lab.toml [flavours]); None: its default.
    lab: str = None
    # The lab's CPU profile (lab.toml [cpu_profiles]); None: the one the kernel needs.
    lab_cpu: str = None
    template: str = None
    interactive: bool = False
    # A crashed domain's memory kept as core.xen (xl dump-core).
    core: bool = True


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so every cleanup runs."""


def _raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def sigterm_raises():
    """SIGTERM unwinds the main thread like Ctrl-C does, so teardown runs.
    Boots in other threads (several guests on one host) leave signals to
    whoever owns the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def resolve_kernel(name, what="KERNEL"):
    """A path, or a name of a kernel this project builds (KERNEL=probe)."""
    if not os.path.exists(name) and name in NAMED_KERNELS:
        path = paths.REPO / NAMED_KERNELS[name]
        if not path.exists():
            raise BadInput(f"{what}={name}: {path} is not built; run `make {name}`")
        return str(path)
    return name


class Target:
    """One guest and its run folder: the run `record`, the `host`, the xl
    `domain`, the console `session` (usable after the verdict), and the
    verdict so far. `live()` boots it, on its own host or, given
    `shared_host` (see shared_lab_host), as one of several guests there.
    `early_host` is a BackgroundStart of its own host that its caller began
    (used if it runs the CPU profile the kernel needs)."""

    def __init__(self, req, shared_host=None, early_host=None):
        self.req = req
        self.shared_host = shared_host
        self.early_host = early_host
        self.out = result.run_dir(req.out_dir)
        self.record = result.RunRecord(self.out, name=f"boot {os.path.basename(req.kernel)}")
        self.record["request"] = dataclasses.asdict(req) | {"out_dir": self.out}
        self.host = None
        self.domain = None
        self.session = None
        self.verdict = None
        self.message = None

    def finish(self):
        """result.json, junit.xml and reproduce.sh, for whatever verdict it
        has, in the room the run folder kept for them."""
        self.record.release_reserve()
        _write_reproducer(self.out, self.req, self.record)
        _symbolize(self.record, self.out)
        self.record.finish(self.verdict or Verdict.INFRA, self.message)

    @contextlib.contextmanager
    def live(self, progress=print):
        """Boot and judge, then yield (also when the boot failed: the
        verdict says why and there is no session); on the way out tear
        down and write result.json, junit.xml and reproduce.sh, whatever
        happened."""
        try:
            with sigterm_raises(), contextlib.ExitStack() as teardown:
                try:
                    _bring_up(self, teardown, progress)
                except HarnessError as e:
                    self.verdict, self.message = e.verdict, e.message
                yield self
        except (KeyboardInterrupt, Terminated) as e:
            what = "SIGINT" if isinstance(e, KeyboardInterrupt) else "SIGTERM"
            self.verdict = Verdict.INFRA
            self.message = f"interrupted by {what}; partial logs kept in {self.out}"
            raise
        finally:
            self.finish()


def _symbolize(record, out):
    """The symbolize stage, once the console is complete: every kernel
    address of the run named (guest/symbolize.py) in result.json
    `symbolized` and console.decoded.log. A boot refused before its kernel
    was staged has nothing to name; a failure to name is recorded, never
    the run's verdict."""
    staged = os.path.join(out, "share", "kernel")
    if not os.path.isfile(staged):
        return
    with record.stage("symbolize"):
        try:
            symbolizer = symbolize.Symbolizer(symbolize.debug_file(record["kernel"]["path"], staged))
            record["symbolized"] = symbolize.decode_run(symbolizer, record.data, os.path.join(out, "console.log"), out)
        except HarnessError as e:
            record["symbolized"] = {"error": e.message}


def booted(req, progress=print, shared_host=None):
    """`with booted(req) as target:` a live Target for `req`."""
    return Target(req, shared_host).live(progress)


def boot(req, progress=print, shared_host=None, then=None, early_host=None):
    """Run one boot to its verdict, then `then(target)` if given, while the
    guest still lives; return the finished RunRecord."""
    target = Target(req, shared_host, early_host)
    try:
        with target.live(progress):
            if then:
                then(target)
    except (KeyboardInterrupt, Terminated):
        pass
    return target.record


def _bring_up(target, teardown, progress):
    req, out, record = target.req, target.out, target.record
    with record.stage("check"):
        check_host_kind(req.host)
        for given, what, picks in ((req.lab, "LAB", "Xen"), (req.lab_cpu, "LAB_CPU", "CPU")):
            if given and req.host != "lab":
                raise BadInput(f"{what}={given} picks the embedded host's {picks}: "
                               f"HOST={req.host} runs this machine's")
        kernel_path = resolve_kernel(req.kernel)
        record["kernel"], elf = kernelcheck.inspect_kernel(kernel_path)
        cpu_profile = _cpu_profile(req, kernel_path, record["kernel"]["guest_type"])
        spec = specs.load_spec(req.spec)
        record["spec"] = {"name": req.spec, "path": str(spec.path),
                          "sha256": kernelcheck.sha256(spec.path)}
        cmdline = CMDLINE.check(req.cmdline, "CMDLINE")
        if req.interactive:
            terminal.require_tty("INTERACTIVE=1")
        if req.disk:
            DISK.check(req.disk, "DISK")
        share = os.path.join(out, "share")
        os.makedirs(share, mode=0o700, exist_ok=True)
        _stage_kernel(elf, share, kernel_path)
    with record.stage("lab"):
        _check_shared_host(target.shared_host, kernel_path, cpu_profile)
        target.host = target.shared_host or teardown.enter_context(_host_for(target, share, progress, cpu_profile))
    record["host"] = target.host.describe() | {"xen_version": target.host.xen_facts.version}
    _check_guest_type(kernel_path, record["kernel"]["guest_type"], target.host)
    _run_domain(target, share, spec, cmdline, teardown, progress)


def _cpu_profile(req, kernel, guest_type):
    """The lab CPU profile of this boot: LAB_CPU's, else the one the kernel needs."""
    needed = labconfig.profile_for(guest_type)
    if guest_type == kernelcheck.PVH and req.lab_cpu not in (None, needed):
        raise BadInput(f"LAB_CPU={req.lab_cpu}: {kernel} is a PVH kernel, which needs the lab CPU with SVM: "
                       f"use LAB_CPU={needed} (or leave LAB_CPU unset)")
    return req.lab_cpu or needed


def _check_shared_host(host, kernel, cpu_profile):
    """A shared embedded host runs one CPU profile: a boot that needs
    another gets its own host from the caller, not a wrong verdict."""
    running = getattr(host, "cpu_profile", None)
    if running not in (None, cpu_profile):
        raise BadInput(f"{kernel}: this boot needs the lab CPU profile {cpu_profile}, but the shared host it was "
                       f"given runs {running}: boot it on a host of {cpu_profile} (or on its own host)")


# The xen_caps entry a guest type needs, where it is not its own name.
XEN_CAP = {kernelcheck.PVH: "hvm-3.0-x86_32"}


def _check_guest_type(kernel, guest_type, host):
    """Refuse, before any domain is built, a kernel the host's Xen cannot run."""
    caps = host.xen_facts.caps
    if XEN_CAP.get(guest_type, guest_type) not in caps:
        why = {"xen-3.0-x86_32p": "cannot run 32-bit PV guests (built without CONFIG_PV32): use LAB=debug",
               kernelcheck.PVH: "runs no HVM guests, which PVH ones are (no SVM or VT-x)"}.get(
                   guest_type, f"runs no {guest_type} guests")
        raise BadInput(f"{kernel}: a {guest_type} kernel, but the host's Xen {why} "
                       f"(xen_caps: {' '.join(caps)})")


def _stage_kernel(elf, share, kernel_path):
    """Put what Xen will load into the share: the ELF itself (a bzImage is
    unpacked by the check, as Xen's loader would, because inflating it in
    dom0 under emulation costs seconds), and its symbols for xenctx: the
    kernel's own, or those of the kernel.debug FreeBSD leaves beside a
    stripped kernel."""
    staged = os.path.join(share, "kernel")
    with open(staged, "wb") as f:
        f.write(elf)
    debug = symbolize.debug_file(kernel_path, staged)
    if debug != staged:
        # For gdb (gdb.kernel_in): the DWARF of a stripped kernel.
        os.symlink(os.path.abspath(debug), os.path.join(share, "kernel.debug"))
    # No symbols only costs xenctx its names; no nm at all is a missing package.
    syms = tool.run(["nm", "-n", debug], "reading the kernel's symbols", check=False)
    if syms.returncode == 0 and syms.stdout:
        with open(os.path.join(share, "kernel.syms"), "w") as f:
            f.write(syms.stdout + text_bounds(staged))


def _host_for(target, share, progress, cpu_profile):
    """The boot's host, as a context manager: the one its caller began
    starting, unless that runs another CPU profile (then it is stopped),
    else a lab server's that can take it (host/lab/remote.py), else its
    own."""
    req, early = target.req, target.early_host
    if req.host == "lab" and early is None:
        served = remote.attach(target.out, req.lab, cpu_profile, req.lab_config, progress)
        if served is not None:
            return served
    if early is not None:
        if early.cpu_profile == cpu_profile:
            return early.take()
        early.stop()
    if req.host == "xl":
        return LocalXenHost(target.out)
    return lab_host(target.out, share, req.lab_config, progress, flavour=req.lab, cpu_profile=cpu_profile)


def shared_lab_host(folder, lab_config=None, progress=print, flavour=None, cpu_profile=labconfig.PV_PROFILE,
                    tcg_threads=None):
    """One embedded host for several boots (`Target(req, shared_host=...)`)
    whose run folders all lie inside `folder`; its own logs go to
    folder/host/."""
    host_dir = os.path.join(folder, "host")
    os.makedirs(host_dir, mode=0o700, exist_ok=True)
    return lab_host(host_dir, folder, lab_config, progress, flavour=flavour, cpu_profile=cpu_profile,
                    tcg_threads=tcg_threads)


def _run_domain(target, share, spec, cmdline, teardown, progress):
    req, out, record, host = target.req, target.out, target.record, target.host
    # Unique per run: guests on one shared host may have run folders of the
    # same name in different places.
    name = f"xenboot-{os.path.basename(out)[:40]}-{secrets.token_hex(3)}"
    disk = ""
    if req.disk:
        # The guest writes to a copy (FreeBSD mounts its root read-write),
        # so the image stays as built and the copy shows what the guest did.
        # script= makes libxl take a file target (through a loop device).
        staged = os.path.join(share, "disk.img")
        shutil.copyfile(req.disk, staged)
        spec_line = f"format=raw, vdev=xvda, access=rw, script=block, target={host.stage_file(staged)}"
        disk = f"disk = [ {xl.xl_string(spec_line)} ]"
    template = req.template or str(paths.CONFIGS / "xl" / TEMPLATES.get(record["kernel"]["guest_type"],
                                                                       "pv.cfg.in"))
    cfg_text = xl.render_config(template, {
        "NAME": xl.xl_string(name), "KERNEL": xl.xl_string(host.stage_file(os.path.join(share, "kernel"))),
        "CMDLINE": xl.xl_string(cmdline), "MEMORY": str(int(req.memory_mb)), "DISK": disk})
    cfg = os.path.join(share, "guest.cfg")
    with open(cfg, "w") as f:
        f.write(cfg_text)
    domain = target.domain = xl.Domain(host, name, host.stage_file(cfg), log_dir=out)
    if claim := getattr(host, "claim_domain", None):
        # A server's host outlives this run: it destroys what a killed run leaves.
        claim(name)
    teardown.callback(_tear_down_domain, target, name)
    # From here on: what Xen says while it builds the domain is its too.
    xen_source = host.xen_console()
    with record.stage("create"):
        with _step(record, "share"):
            if waited := host.wait_visible(cfg):
                record["share_wait"] = waited
        with _step(record, "create"):
            domain.create_paused(timeout=120)
        xen = xenconsole.XenConsole(xen_source, domain.domid, out).start()
        teardown.callback(xen.close)
        with _step(record, "console pty"):
            tty = domain.console_tty(timeout=30)
        with _step(record, "console relay"):
            attachment = host.attach_console(tty)
        teardown.callback(attachment.close)
        with _step(record, "unpause"):
            domain.unpause()
    progress(f"boot: domain {name} (domid {domain.domid}) running; judging with spec {req.spec}")
    symbols = os.path.join(share, "kernel.syms")
    watcher = _DomainWatch(domain, out, symbols if os.path.exists(symbols) else None, attachment)
    target.session = teardown.enter_context(console.ConsoleSession(
        attachment.fd, spec, out, domain=watcher, t0=domain.unpaused_at, log_cap=req.log_cap,
        on_match=lambda event: _report_match(event, progress), xen=xen, lost=watcher.lost))
    mirror = ConsoleMirror(out, target.session.send_bytes)
    teardown.callback(mirror.close)
    target.session.tee = mirror.broadcast
    gdb_server = None
    if hasattr(host, "attach_gdbsx"):
        bits = record["kernel"]["bits"]
        gdb_server = gdb.GdbServer(out, lambda: host.attach_gdbsx(domain.domid, bits))
        teardown.callback(gdb_server.close)
        gdb_limits = gdb.limits(record["kernel"]["guest_type"], record["host"].get("accelerator"))
        gdb.write_limits(out, gdb_limits)
    with record.stage("console"):
        outcome = target.session.judge()
    if outcome.verdict is Verdict.INFRA:
        record["failed_step"] = "console"
    report = xen.conclude(outcome, Symbols.read(watcher.symbols).name)
    if report is not None:
        record["xen"] = report
    outcome.to_result(record)
    if gdb_server and outcome.verdict in GDB_VERDICTS:
        with record.stage("gdb"):
            record["gdb"] = _gdb_record(gdb_server, out, gdb_limits)
    target.verdict, target.message = outcome.verdict, outcome.message


# Verdicts whose domain is still there to look at: crashed and preserved,
# at db>, or quiet.
GDB_VERDICTS = {Verdict.CRASH, Verdict.PANIC, Verdict.DEBUGGER, Verdict.HANG, Verdict.TIMEOUT}


def _gdb_record(server, out, limits):
    """result.json `gdb`: a batch gdb session on the failed domain, or why
    there is none (never the verdict's business), and what gdb cannot do
    on it."""
    try:
        found = gdb.batch(gdb.kernel_in(out), server.path)
    except HarnessError as e:
        found = {"error": "; ".join([e.message, *server.errors])}
    return {**found, "limits": limits} if limits else found


def _report_match(event, progress):
    where = " (from Xen's console)" if event.get("source") == xenconsole.XEN else ""
    if "milestone" in event:
        progress(f"boot: {event['t']:8.3f}s  milestone {event['milestone']}{where}: {event['text'][:120]}")
    elif "fatal" in event:
        progress(f"boot: {event['t']:8.3f}s  {event['fatal']}{where}: {event['text']}")


@contextlib.contextmanager
def _step(record, name):
    """An infrastructure failure says which step of the boot it stopped;
    each step's seconds go to result.json `create_steps` (which part of
    the create stage a slow host spends its time in)."""
    start = time.monotonic()
    try:
        yield
    except InfraError as e:
        record["failed_step"] = name
        raise InfraError(f"{name}: {e.message}", **e.details) from None
    finally:
        record.data.setdefault("create_steps", {})[name] = round(time.monotonic() - start, 3)


# Verdicts whose run folder gets dom0's side (dom0/): what the host did is
# part of the story. None: the boot was cut short.
DOM0_SIDE = {Verdict.INFRA, Verdict.CRASH, Verdict.HANG, Verdict.TIMEOUT, None}


def _tear_down_domain(target, name):
    record = target.record
    with record.stage("teardown"):
        domain = target.domain
        record["domain"] = {"name": name, "domid": domain.domid, "end": domain.end_reason(),
                            "xl_create": domain.create_log}
        _fetch(target.host, xl.CONSOLE_LOG.format(name=name), os.path.join(target.out, "console.xenconsoled.log"))
        if target.verdict in DOM0_SIDE:
            _keep_dom0_side(target, "dom0")
        if record["domain"]["end"] == "crash" and target.req.core:
            record["core"] = _dump_core(target)
        destroyed = False
        try:
            domain.destroy()
            destroyed = True
        except HarnessError as e:
            # The verdict stands; the destroy's failure and the host after
            # it are recorded (the next guest on this host meets it).
            record["domain"]["destroy_error"] = e.message
            _keep_dom0_side(target, "dom0-after-destroy")
        if target.host.kind == "lab":
            # A lab dom0's /var/log is its RAM: a flood's log (18 MB of 140)
            # left there is memory a lab server's later guests lack.
            with contextlib.suppress(HarnessError):
                target.host.run(["rm", "-f", xl.CONSOLE_LOG.format(name=name)], timeout=30, check=False)
                if destroyed and (unclaim := getattr(target.host, "unclaim_domain", None)):
                    unclaim(name)


# A core is the guest's memory, copied out of dom0 at about 2 MiB/s under
# TCG (128 MiB: a minute): above this it is not kept (--no-core: never).
CORE_CAP_MB = 256
CORE_FILE = "core.xen"


def _dump_core(target):
    """result.json `core`: `xl dump-core` of the crashed domain (preserved
    until teardown, whatever the verdict: a panic may end in a crash) written through the share into the run folder as
    core.xen, Xen's own ELF core format (README: reading it), or why not."""
    memory = target.req.memory_mb
    if memory > CORE_CAP_MB:
        return {"skipped": f"the guest's {memory} MiB is over the {CORE_CAP_MB} MiB cap on a kept core"}
    staged = os.path.join(target.out, "share", CORE_FILE)
    # libxc writes the guest's pages straight from their foreign mapping,
    # which a 9p share refuses (EFAULT): through a FIFO, cat copies them.
    fifo = f"/tmp/xenboot-core-{target.domain.domid}"
    script = (f"rm -f {fifo} && mkfifo {fifo} && {{ cat {fifo} > {shlex.quote(target.host.stage_file(staged))} & }}"
              f" && xl dump-core {target.domain.domid} {fifo}; status=$?;"
              # An xl that failed before opening the FIFO leaves cat waiting for a writer for ever.
              f" if [ $status -ne 0 ]; then kill $! 2>/dev/null; fi; wait; rm -f {fifo}; exit $status")
    try:
        job = target.host.run(["sh", "-c", script], timeout=300, check=False)
    except HarnessError as e:
        return {"error": e.message}
    if job.status != 0:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged)
        if "p2m_size < nr_pages" in job.text:
            # libxc walks the guest's own pfn-to-mfn list; a kernel that
            # crashed before publishing it (the probe, FreeBSD's early
            # crashes) leaves nothing to walk.
            return {"error": "xl dump-core: the guest had not published its p2m list (shared_info's max_pfn, "
                             "pfn_to_mfn_frame_list_list) when it crashed"}
        said = "; ".join(line.strip() for line in job.text.splitlines() if line.strip())
        return {"error": f"xl dump-core exited {job.status}: {said[-400:]}"}
    path = os.path.join(target.out, CORE_FILE)
    os.replace(staged, path)
    return {"file": CORE_FILE, "bytes": os.path.getsize(path)}


def _keep_dom0_side(target, folder):
    domain = target.domain
    config = None if domain.created.is_set() else domain.cfg
    missing = xl.dom0_side(target.host, domain.domid, os.path.join(target.out, folder), config=config)
    target.record.data.setdefault("dom0", {})[folder] = {"missing": missing} if missing else {}


class _DomainWatch:
    """What the judge may ask of the domain: has it ended, has the harness
    lost it, and, when it has gone quiet, what Xen can tell about it (kept
    in the run folder too)."""

    # A console relay ends when xenconsoled closes the guest's pty, which a
    # domain's end does too, and QEMU's end closes the console channel: the
    # end gets this long to be seen first.
    RELAY_GRACE = 2.0

    def __init__(self, domain, out, symbols, attachment):
        self.domain = domain
        self.out = out
        self.symbols = symbols  # nm listing in the share, or None
        self.attachment = attachment

    def end_reason(self):
        return self.domain.end_reason()

    def console_complete(self):
        return self.attachment.ended() is not None

    def lost(self, channel_closed=False):
        """Why the console no longer shows a running guest, or None. A
        closed console channel or relay has a cause that may still be on
        its way (the domain's end, the host's); it gets RELAY_GRACE."""
        relay = self.attachment.ended()
        if relay or channel_closed:
            self.domain.ended.wait(self.RELAY_GRACE)
        if self.domain.lost:
            return self.domain.lost
        if relay and self.domain.end_reason() is None:
            return f"{relay} while the domain ran"
        return None

    def diagnose(self, verdict):
        found = self.domain.diagnose(self.symbols and self.domain.host.stage_file(self.symbols))
        folder = os.path.join(self.out, "diagnosis")
        os.makedirs(folder, exist_ok=True)
        for what, text in found.items():
            with open(os.path.join(folder, what.replace(" ", "-") + ".txt"), "w") as f:
                f.write(text)
        return {"verdict": str(verdict), "files": sorted(os.listdir(folder)),
                "frames": _frames(found["xenctx"], self.symbols),
                "xenctx": found["xenctx"].strip().splitlines()[:40],
                "events": xl.event_state(found["xl dmesg"], self.domain.domid, found["xenstore"])}


FRAME = re.compile(r"\[<([0-9a-f]+)>\]\s+(\S+)")


def _frames(xenctx, symbols):
    """The return addresses in xenctx's stack trace, innermost first, as
    function+offset: only words that land in a function (an nm text
    symbol), not the stack's own addresses or data."""
    symbols = Symbols.read(symbols)
    trace = xenctx.split("Stack Trace:", 1)[-1]
    # Named again from the address: xenctx names a 32-bit guest's zero words
    # as the symbol 4 GiB below them (hypercall_page+0x3ffa5000).
    names = (symbols.name(int(address, 16)) for address, _ in FRAME.findall(trace))
    return [name for name in names if name and name.split("+")[0] in symbols.functions]


def _fetch(host, path, dest):
    """Copy a file of the Xen host's into the run folder: evidence, so a
    failure to get it is never fatal."""
    try:
        data = host.read_file(path)
    except HarnessError:
        return
    if data is not None:
        xl.keep(dest, data)


def _usable(rule, path):
    """Whether `path` passes its rule: a refused boot may name a FIFO (hashing
    it would block) or an unreadable or huge file, which has no bytes to pin."""
    try:
        rule.check(path, "input")
    except BadInput:
        return False
    return True


def _write_reproducer(out, req, record):
    """reproduce.sh: the same boot, by path, on a fresh host (a new run
    folder), refused when an input's bytes changed since this run."""
    spec = record.get("spec") or {}
    given = {"kernel": resolve_kernel(req.kernel) if req.kernel in NAMED_KERNELS else req.kernel,
             "spec": spec.get("path", req.spec), "disk": req.disk, "template": req.template,
             "lab_config": req.lab_config or (str(paths.CONFIGS / "lab.toml") if req.host == "lab" else None)}
    given = {k: os.path.abspath(v) for k, v in given.items() if v and _usable(REPRODUCED[k], v)}
    argv = ["ci/xenboot", "boot", "--cmdline", req.cmdline, "--host", req.host,
            "--memory", str(req.memory_mb), "--log-cap", str(req.log_cap)]
    if not req.core:
        argv.append("--no-core")
    host = record.get("host") or {}
    for option, value in (("--lab", host.get("flavour") or req.lab),
                          ("--lab-cpu", host.get("cpu_profile") or req.lab_cpu)):
        if value:
            argv += [option, value]
    for name, path in given.items():
        argv += [f"--{name.replace('_', '-')}", path]
    lines = ["#!/bin/sh",
             f"# Re-runs the boot of {out} on a fresh host from the recorded inputs;",
             "# refuses when an input changed since (its sha256 no longer matches).",
             "# Extra arguments go to `ci/xenboot boot` (e.g. --interactive, --out DIR).",
             "set -eu", f"cd {shlex.quote(str(paths.REPO))}",
             # A fresh host even where a lab server would have taken it.
             f"unset {remote.SERVER_ENV}"]
    for path in given.values():
        line = f"{kernelcheck.sha256(path)}  {path}"
        lines.append(f"echo {shlex.quote(line)} | sha256sum --check --status || "
                     f"{{ echo {shlex.quote(f'reproduce: {path} changed since this run (sha256 differs)')} >&2; exit 2; }}")
    lines.append("exec " + " ".join(shlex.quote(a) for a in argv) + ' "$@"')
    path = os.path.join(out, "reproduce.sh")
    # A command line's bytes that are not UTF-8 go back as they came.
    with open(path, "w", errors="surrogateescape") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o755)


def add_parser(sub):
    p = sub.add_parser("boot", help="boot a Xen PV kernel and judge its console against a spec")
    option = functools.partial(inputs.option, p)
    option("--kernel", required=True, help="kernel file (ELF or bzImage), or `probe`",
           check=kernelcheck.KERNEL_FILE.given(resolve=resolve_kernel))
    option("--spec", default="generic", help="milestone spec name or path", check=specs.SPEC_INPUT)
    option("--cmdline", default="", help="guest kernel command line", check=CMDLINE)
    option("--host", default="lab", help="lab (embedded Xen in QEMU) or xl (this dom0)", check=HOST)
    option("--memory", dest="memory_mb", default=128, help="guest MiB", check=MEMORY)
    option("--disk", help="disk image attached as xvda", check=DISK)
    option("--out", dest="out_dir", help="run folder (default out/<UTC time>-<id>)", check=result.out_input())
    option("--log-cap", default=DEFAULT_LOG_CAP, help="console.log size cap, bytes", check=LOG_CAP)
    option("--lab-config", help="lab config (default configs/lab.toml)", check=labconfig.CONFIG_INPUT)
    option("--lab", help="the lab's Xen: debian or debug (lab.toml [flavours]; default debian)",
           check=labconfig.FLAVOUR_INPUT)
    option("--lab-cpu", help="the lab's CPU: pv or hvm (lab.toml [cpu_profiles]; default: the one the kernel needs)",
           check=labconfig.CPU_PROFILE_INPUT)
    option("--template", help="xl domain config template (default configs/xl/pv.cfg.in, pvh.cfg.in for a PVH kernel)",
           check=xl.TEMPLATE)
    p.add_argument("--interactive", action="store_true",
                   help=f"after the spec, hand the live console to this terminal ({terminal.ESCAPE_NAME} leaves)")
    add_core_option(p)
    p.set_defaults(func=_command, refuse=_refuse)


def add_core_option(parser):
    parser.add_argument("--no-core", dest="core", action="store_false",
                        help=f"keep no core.xen of a crashed domain (kept up to {CORE_CAP_MB} MiB of guest memory)")


def _request(args):
    fields = {f.name for f in dataclasses.fields(BootRequest)}
    return BootRequest(**{k: v for k, v in vars(args).items() if k in fields})


def _command(args):
    req = _request(args)
    with Progress() as progress:
        progress.stage("boot", logs=[os.path.join(req.out_dir, "console.log")])
        # The status line must stop redrawing before a person takes the console.
        record = boot(req, progress=progress,
                      then=(lambda target: (progress.close(), hand_over(target))) if req.interactive else None)
    summarize(record)
    return record.data["exit_status"]


def _refuse(args, error):
    """A boot refused before its check stage leaves what a boot refused in
    it leaves: result.json, junit.xml, reproduce.sh and the verdict line."""
    target = Target(_request(args))
    target.verdict, target.message = error.verdict, error.message
    target.finish()
    summarize(target.record)
    return target.record.data["exit_status"]


def hand_over(target):
    """The live console to the user, after the spec has run."""
    if target.session is None or target.domain.end_reason() is not None:
        print("xenboot: the guest is not running any more; nothing to hand over", flush=True)
        return
    print(f"xenboot: you are on the guest console of {target.domain.name}; "
          f"{terminal.ESCAPE_NAME} ends the session and tears everything down\r", flush=True)
    why = target.session.interact()
    print(f"\r\nxenboot: console session ended ({why})", flush=True)


def summarize(record):
    data = record.data
    frames = (data.get("diagnosis") or {}).get("frames")
    if frames:
        print(f"  where the guest was (xenctx): {' < '.join(frames[:6])}")
    rip = (data.get("symbolized") or {}).get("rip")
    if rip and rip["line"]:
        print(f"  where Xen stopped it (RIP): {rip['name']} at {rip['line']}")
    frames = (data.get("gdb") or {}).get("backtrace")
    if frames:
        print(f"  gdb's innermost frame: {frames[0]}")
    where = f" at {data['failed_at']}" if data.get("failed_at") else ""
    print(f"xenboot: {data['verdict']}{where}: {data.get('message') or ''} ({record.out_dir})".rstrip(), flush=True)
