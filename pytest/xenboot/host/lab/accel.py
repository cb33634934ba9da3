"""Which QEMU accelerator the embedded host uses.

TCG always works. KVM is only worth having where Xen actually boots under
it (on this project's machines it dies early on an emulation failure), so
"auto" boots Xen under KVM once, waits for Xen to start building dom0, and
remembers the answer per host layer and CPU.
"""
import ctypes
import hashlib
import json
import os
import select
import signal
import subprocess
import time

KVM_PROOF = b"*** Building a PV Dom0 ***"
PR_SET_PDEATHSIG = 1
# Resolved now: after fork() in a threaded harness the child must not dlopen.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent():
    """preexec_fn for QEMU: it must not outlive the harness, even one killed
    with SIGKILL."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def cpu_fingerprint():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        flags = ""
    return hashlib.sha256(flags.encode()).hexdigest()[:12]


def kvm_boots_xen(config, qemu, files, timeout, cpu_model):
    """True if Xen under KVM on `cpu_model` gets as far as building dom0
    within timeout (`qemu`: the QEMU command, LabCache.qemu_command())."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    q = config["qemu"]
    argv = [*qemu, "-nodefaults", "-no-user-config", "-display", "none",
            "-no-reboot", "-accel", "kvm", "-cpu", cpu_model, "-m", str(q["memory_mb"]),
            "-kernel", str(files["xen.elf"]), "-append", " ".join(config["xen"]["cmdline"]),
            "-initrd", f"{files['vmlinux']},{files['initramfs.cpio']}", "-serial", "stdio"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=die_with_parent)
    seen = b""
    try:
        deadline = time.monotonic() + timeout
        while KVM_PROOF not in seen[-4096:]:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
                return False
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                return False
            seen = seen[-4096:] + chunk
        return True
    finally:
        proc.kill()
        proc.wait()


def choose(config, cache, files, cpu_model):
    """The accelerator to use for a host of `cpu_model`: "tcg" or "kvm"."""
    wanted = config["qemu"]["accelerator"]
    if wanted != "auto":
        return wanted
    # Keyed by the model too: KVM may run one (nested SVM) and not another.
    memo = cache.root / (f"accel-{cache.host_key}-{cache.xen_key}-{cpu_fingerprint()}-"
                         f"{hashlib.sha256(cpu_model.encode()).hexdigest()[:12]}.json")
    if memo.is_file():
        with open(memo) as f:
            return json.load(f)["accelerator"]
    accel = "kvm" if kvm_boots_xen(config, cache.qemu_command(), files,
                                   config["qemu"]["kvm_probe_seconds"], cpu_model) else "tcg"
    memo.parent.mkdir(parents=True, exist_ok=True)
    with open(memo, "w") as f:
        json.dump({"accelerator": accel}, f)
    return accel
