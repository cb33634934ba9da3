"""The nightly's boots stage: rows in waves, several guests to one embedded
host as its memory and console ports allow, each boot in boots/<row>-<attempt>/.
Only INFRA is retried (on a fresh host, at most MAX_ATTEMPTS boots a row);
a guest's verdict is final."""
import contextlib
import math
import os
import threading
from collections import deque

from xenboot.core import inputs, result
from xenboot.core.errors import BadInput, HarnessError, Verdict
from xenboot.host.lab import config as labconfig
from xenboot.host.lab.qemu import lab_host
from xenboot.pipeline import freebsd
from xenboot.pipeline.boot import BootRequest, Terminated, boot

MAX_ATTEMPTS = 3
PARALLEL = inputs.Integer(1, 64, "guests booting at once")


def attempt_dir(ctx, row):
    # Flat and unique by name: boot.py names the domain after the folder,
    # and guests on one host need distinct names.
    return ctx.boots_dir / f"{row.id}-{len(row.attempts) + 1}"


def _record_attempt(ctx, row, folder, data):
    if ctx.stopped:
        return
    milestones = data.get("milestones") or []
    row.attempts.append({"folder": os.path.relpath(folder, ctx.run_dir),
                         "verdict": data["verdict"], "message": data.get("message"),
                         "reached": milestones[-1]["name"] if milestones else None,
                         "failed_at": data.get("failed_at"), "share_wait": data.get("share_wait")})


def unbooted(ctx, row, folder, verdict, message):
    """result.json for an attempt that never reached a boot, so the run
    still aggregates every boot it attempted."""
    # Also over a result.json a crashed boot() left: this one says why.
    os.makedirs(folder, mode=0o700, exist_ok=True)
    record = result.RunRecord(str(folder), name=f"boot {row.id}")
    record["request"] = row.describe()
    record.finish(verdict, message)
    _record_attempt(ctx, row, folder, record.data)


def _boot_row(ctx, row, folder, kernel, host, host_dir):
    # FreeBSD boots as `make boot` boots it: the root device first in its
    # environment.
    cmdline = freebsd.kernel_cmdline(row.cmdline) if row.kernel.source == "freebsd" else row.cmdline
    req = BootRequest(kernel=kernel["path"], spec=row.spec, host=row.host, cmdline=cmdline, memory_mb=row.memory,
                      disk=kernel["disk"], out_dir=str(folder), lab_config=ctx.lab_config, lab=row.lab)
    try:
        data = boot(req, progress=lambda line: ctx.progress(f"{row.id}: {line}"),
                    shared_host=host).data
    except Exception as e:
        # A harness bug in one boot must not take the other rows with it.
        unbooted(ctx, row, folder, Verdict.INFRA, f"harness error: {e!r}")
        return
    if host_dir is not None and not (folder / "host.log").exists():
        # The host's log is shared by its guests; each boot folder links it.
        os.symlink(os.path.relpath(host_dir / "host.log", folder), folder / "host.log")
    _record_attempt(ctx, row, folder, data)


def next_wave(pending, parallel, ports, capacity):
    """The next rows to boot together and the embedded hosts they share,
    [((flavour, CPU profile), rows)]: at most `parallel` rows; on each host
    at most `ports` guests whose memory together fits in `capacity` MiB
    (more and Xen refuses the next `xl create`: out of memory, an INFRA of
    our own making). A row that fits no host, when the wave has as many
    hosts of its kind as `parallel` rows need, waits for the next wave."""
    wave, hosts, waiting = [], [], deque()
    while pending and len(wave) < parallel:
        row = pending.popleft()
        if row.host == "lab":
            kind = (row.lab, row.cpu_profile or labconfig.PV_PROFILE)
            mine = [h for h in hosts if h[0] == kind]
            host = next((h for h in mine if len(h[1]) < ports
                         and sum(r.memory for r in h[1]) + row.memory <= capacity), None)
            if host is None and len(mine) >= math.ceil(parallel / ports):
                waiting.append(row)
                continue
            if host is None:
                host = (kind, [])
                hosts.append(host)
            host[1].append(row)
        wave.append(row)
    pending.extendleft(reversed(waiting))
    return wave, hosts


def _run_wave(ctx, wave, kernels, lab_hosts):
    """The embedded hosts `lab_hosts` ([((flavour, CPU profile), rows)], next_wave), the
    xl rows on this machine, all guests at once; hosts stop when the wave
    is over."""
    folders = {row.id: attempt_dir(ctx, row) for row in wave}
    placed = [(row, None, None) for row in wave if row.host != "lab"]
    with contextlib.ExitStack() as hosts:
        for (flavour, cpu_profile), chunk in lab_hosts:
            host_dir = ctx.new_host_dir()
            try:
                # Started on this thread: QEMU dies with the thread that
                # started it (PR_SET_PDEATHSIG), and this one outlives the wave.
                host = hosts.enter_context(lab_host(str(host_dir), str(ctx.boots_dir), ctx.lab_config,
                                                    ctx.progress, flavour=flavour, cpu_profile=cpu_profile,
                                                    tcg_threads="single" if len(lab_hosts) > 1 else None))
            except Exception as e:
                # A host that cannot start fails its guests' attempts, which
                # are INFRA (retried) unless the input was bad.
                verdict = e.verdict if isinstance(e, HarnessError) else Verdict.INFRA
                message = e.message if isinstance(e, HarnessError) else f"{e!r} ({host_dir}/qemu.stderr)"
                for row in chunk:
                    unbooted(ctx, row, folders[row.id], verdict, f"embedded host: {message}")
                continue
            placed += [(row, host, host_dir) for row in chunk]
        ctx.progress.watch([folders[row.id] / "console.log" for row, _, _ in placed])
        finished = set()

        def boot_and_mark(row, *args):
            try:
                _boot_row(ctx, row, *args)
            finally:
                finished.add(row.id)

        workers = [threading.Thread(target=boot_and_mark, name=f"boot-{row.id}", daemon=True,
                                    args=(row, folders[row.id], kernels[row.kernel.name], host, host_dir))
                   for row, host, host_dir in placed]
        for worker in workers:
            worker.start()
        try:
            for worker in workers:
                worker.join()
        except (KeyboardInterrupt, Terminated) as e:
            # Not Thread.is_alive(): a join interrupted by a signal marks the
            # thread it waited for as stopped (CPython bpo-45274's fix).
            what = "SIGINT" if isinstance(e, KeyboardInterrupt) else "SIGTERM"
            for row, _, _ in placed:
                if row.id not in finished:
                    _record_attempt(ctx, row, folders[row.id],
                                    {"verdict": Verdict.INFRA.value, "message": f"interrupted by {what}"})
            ctx.stopped = what
            raise


def assign_flavours(rows, lab_config=None):
    """Each lab row's flavour: its `lab`, else lab.toml's default for its
    kind of kernel (FreeBSD's own); a typo fails here, before any boot.
    The lab config, or None without lab rows."""
    lab_rows = [r for r in rows if r.host == "lab"]
    if not lab_rows:
        return None
    config = labconfig.load(lab_config)
    room = config["qemu"]["guest_memory_mb"]
    for row in lab_rows:
        row.lab = labconfig.flavour(config, row.lab, freebsd=row.kernel.source == "freebsd")[0]
        if row.memory > room:
            raise BadInput(f"row {row.id}: memory {row.memory} MiB: an embedded host has room for {room} MiB "
                           f"of guests (lab.toml [qemu] guest_memory_mb); give a smaller size")
    return config


def run_boots(ctx, rows, kernels):
    config = assign_flavours(rows, ctx.lab_config)
    for row in rows:
        row.cpu_profile = labconfig.profile_for(kernels[row.kernel.name]["guest_type"])
    ports, room = (config["qemu"]["console_ports"], config["qemu"]["guest_memory_mb"]) if config else (1, 0)
    pending = deque(rows)
    waves = 0
    while pending:
        wave, lab_hosts = next_wave(pending, ctx.parallel, ports, room)
        waves += 1
        ctx.progress.stage(f"boots, wave {waves}: {', '.join(row.id for row in wave)}")
        _run_wave(ctx, wave, kernels, lab_hosts)
        pending.extend(row for row in wave if Verdict(row.attempts[-1]["verdict"]).retryable
                       and len(row.attempts) < MAX_ATTEMPTS)
