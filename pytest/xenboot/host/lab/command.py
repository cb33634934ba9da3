"""`xenboot lab ...`: build, inspect and use the embedded Xen host by hand."""
import json
import os
import shutil
import signal
import sys
import tempfile

from xenboot.core import inputs, paths, terminal
from xenboot.core.errors import InfraError
from xenboot.host.lab import cache as labcache, config as labconfig, qemu, remote, server as labserver
from xenboot.host.lab.qemu import lab_host


LAYERS = ("packages", "host", "qemu", "apt", "src", "xen")


def _cache(args, flavour=None):
    return labcache.LabCache(labconfig.load(args.lab_config), flavour=flavour or args.lab)


def build(args):
    """The cache layers, then one host boot, which leaves the snapshot later
    hosts start from."""
    cache = _cache(args)
    files = cache.ensure()
    with tempfile.TemporaryDirectory(prefix="xenboot-lab-") as run_dir:
        os.mkdir(os.path.join(run_dir, "share"))
        with lab_host(run_dir, os.path.join(run_dir, "share"), args.lab_config,
                      flavour=cache.flavour) as host:
            print(f"lab: {cache.flavour} host up in {host.timings['dom0_ready']:.1f} s "
                  f"({'from the snapshot' if host.timings['from_snapshot'] else 'cold boot'}); "
                  f"{host.qemu_version}")
    with open(files["manifest.json"]) as f:
        manifest = json.load(f)
    with open(cache.xen_dir / "manifest.json") as f:
        xen = json.load(f)
    print(f"lab: host layer {cache.host_dir}")
    print(f"lab: {cache.flavour} hypervisor {cache.xen_dir}"
          + (f" (built in {xen['build_seconds']} s)" if "build_seconds" in xen else ""))
    for name, version in sorted(manifest["versions"].items()):
        print(f"  {name} {version}")
    return 0


def status(args):
    cache = _cache(args)
    state = "built" if cache.is_built() else f"not built (run `make lab LAB={cache.flavour}`)"
    print(f"lab: {cache.flavour} {state}: {', '.join(d.name for d in cache.layer_dirs())} in {cache.root}")
    return 0 if cache.is_built() else 1


def prune(args):
    """Remove cache layers that configs/lab.toml no longer leads to, in
    any of its flavours."""
    config = labconfig.load(args.lab_config)
    caches = [_cache(args, name) for name in labconfig.flavours(config)]
    keep = {d.name for cache in caches for d in cache.layer_dirs()}
    for layer in sorted(caches[0].root.glob("*-*")):
        if layer.is_dir() and layer.name.split("-")[0] in LAYERS and layer.name not in keep:
            shutil.rmtree(layer)
            print(f"lab: removed stale layer {layer}")
    return 0


def clean(args):
    root = paths.cache_root() / "lab"
    shutil.rmtree(root, ignore_errors=True)
    print(f"lab: removed {root}")
    return 0


def exec_(args):
    """Start a host, run one command in its dom0 (with the share folder at
    /share), print its output, stop the host."""
    share = os.path.abspath(args.share or tempfile.mkdtemp(prefix="xenboot-share-"))
    with tempfile.TemporaryDirectory(prefix="xenboot-lab-") as run_dir:
        with lab_host(run_dir, share, args.lab_config, flavour=args.lab) as host:
            job = host.run(args.argv, timeout=args.timeout, check=False)
            sys.stdout.buffer.write(job.stdout)
            sys.stderr.buffer.write(job.stderr)
            return job.status


def shell(args):
    """A shell in a fresh host's dom0 (xl list, xl dmesg, xenstore-ls by
    hand) for as long as the shell lives; the host stops with it."""
    terminal.require_tty("make shell")
    with tempfile.TemporaryDirectory(prefix="xenboot-lab-") as run_dir:
        os.mkdir(os.path.join(run_dir, "share"))
        with lab_host(run_dir, os.path.join(run_dir, "share"), args.lab_config,
                      flavour=args.lab, cpu_profile=args.lab_cpu or labconfig.PV_PROFILE) as host:
            attachment = host.open_shell()
            print(f"lab: dom0 shell; {terminal.ESCAPE_NAME} or `exit` leaves and stops the host\r",
                  flush=True)
            try:
                terminal.bridge(attachment.fd, lambda: os.read(attachment.fd, 65536),
                                attachment.sock.sendall, stop=lambda: attachment.ended() is not None)
            finally:
                attachment.close()
    return 0


def serve(args):
    """A host kept running for other processes' boots (server.py) until
    SIGTERM or Ctrl-C; its logs in <share>/lab-server-<flavour>-<cpu>/."""
    config = labconfig.load(args.lab_config)
    share = os.path.abspath(args.share)
    flavour = labconfig.flavour(config, args.lab)[0]
    cpu_profile = args.lab_cpu or labconfig.PV_PROFILE
    folder = labserver.folder_for(share, flavour, cpu_profile)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    # SIGTERM unwinds like Ctrl-C, so QEMU is stopped and the socket removed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with lab_host(folder, share, config, flavour=flavour, cpu_profile=cpu_profile) as host:
        server = labserver.LabServer(host, share, config)
        server.listen()
        try:
            print(f"lab: {flavour} host ({cpu_profile} CPU) serving at {server.path}, up in "
                  f"{host.timings['dom0_ready']:.1f} s; boots with their run folders in {share} use it "
                  f"under {remote.SERVER_ENV}={share}", flush=True)
            status = host.proc.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            server.stop()
    how = f"was killed by {signal.Signals(-status).name}" if status < 0 else f"exited with status {status}"
    raise InfraError(f"lab server {server.path}: its QEMU {how}: "
                     f"{qemu.tail(os.path.join(folder, 'qemu.stderr')) or qemu.tail(host.host_log)}")


def _common(p):
    inputs.option(p, "--lab-config", help="lab config (default configs/lab.toml)", check=labconfig.CONFIG_INPUT)
    inputs.option(p, "--lab", help="flavour: debian or debug (lab.toml [flavours]; default its default)",
                  check=labconfig.FLAVOUR_INPUT)


def add_parser(sub):
    lab = sub.add_parser("lab", help="the embedded Xen host").add_subparsers(dest="lab_command", required=True)
    for name, func, helptext in (("build", build, "build the lab cache (no-op when built)"),
                                 ("status", status, "say whether the lab cache is built"),
                                 ("clean", clean, "remove the lab cache"),
                                 ("prune", prune, "remove cache layers the lab config no longer uses"),
                                 ("shell", shell, "a shell in a fresh host's dom0")):
        p = lab.add_parser(name, help=helptext)
        _common(p)
        if name == "shell":
            inputs.option(p, "--lab-cpu", help="the lab's CPU: pv (default) or hvm (SVM, the PVH guests' host)",
                          check=labconfig.CPU_PROFILE_INPUT)
        p.set_defaults(func=func)
    p = lab.add_parser("serve", help="keep a host running for the boots whose run folders are in --share "
                                     f"(with {remote.SERVER_ENV}=<that folder>)")
    inputs.option(p, "--share", required=True, help="the folder dom0 sees at /share; boots with their run "
                                                    "folders in it use this host",
                  check=inputs.Folder("give a folder to share with the host's dom0"))
    inputs.option(p, "--lab-cpu", help="the lab's CPU: pv (default) or hvm (SVM, the PVH guests' host)",
                  check=labconfig.CPU_PROFILE_INPUT)
    _common(p)
    p.set_defaults(func=serve)
    p = lab.add_parser("exec", help="run one command in a fresh host's dom0")
    inputs.option(p, "--share", help="host folder mounted read-only at /share in dom0",
                  check=inputs.Folder("give a folder for dom0's /share"))
    inputs.option(p, "--timeout", default=120, help="seconds the command may take (default 120)",
                  check=inputs.Seconds(24 * 3600))
    inputs.option(p, "argv", metavar="ARGV", nargs="+", help="the command and its arguments",
                  check=inputs.Words("give a command for dom0 and its arguments"))
    _common(p)
    p.set_defaults(func=exec_)
