"""The xl driver: one domain's life on any Xen host (hosts.py, lab/qemu.py).

create paused -> console attached -> unpause -> (the judge watches) ->
how it ended, diagnosis if it hung -> destroyed. `xl create -F` stays in the
foreground and says when and why the domain died, so the end is an event,
not something polled for.
"""
import re
import threading
import time

from xenboot import inputs
from xenboot.errors import BadInput, InfraError
from xenboot.xenheaders import constants

WAITING = re.compile(r"Waiting for domain (\S+) \(domid (\d+)\) to die")
SHUT_DOWN = re.compile(r"Domain (\d+) has shut down, reason code (\d+)")
DESTROYED = re.compile(r"Domain (\d+) has been destroyed")
TEMPLATE = inputs.File("xl template", "give an xl domain config template (like configs/xl/pv.cfg.in)",
                       inputs.TEXT_MAX, text=True)
# xl's words when Xen's domain builder refused the kernel: the input's fault.
LOADER_REFUSED = re.compile(r"xc_dom_find_loader|xc_dom_parse_image|elf_xen_|"
                            r"panic: xc_dom_|ELF note|not a Xen-ELF image")


class Domain:
    def __init__(self, host, name, cfg):
        self.host = host
        self.name = name
        self.cfg = cfg
        self.domid = None
        self.created = threading.Event()
        self.ended = threading.Event()
        self.reason = None
        self.unpaused_at = None
        self.create_log = []
        self._lines = b""
        self.job = None

    # -- xl create -F output -------------------------------------------------

    def _on_output(self, stream, data):
        if stream == "exit":
            self.reason = self.reason or ("destroyed" if self.created.is_set() else None)
            self.created.set()
            self.ended.set()
            return
        self._lines += data
        *lines, self._lines = self._lines.split(b"\n")
        for raw in lines:
            line = raw.decode(errors="replace")
            self.create_log.append(line)
            if m := WAITING.search(line):
                self.domid = int(m.group(2))
                self.created.set()
            elif m := SHUT_DOWN.search(line):
                code = int(m.group(2))
                self.reason = constants("sched.h", "SHUTDOWN_").get(code, f"code {code}")
                self.ended.set()
            elif DESTROYED.search(line):
                self.reason = self.reason or "destroyed"
                self.ended.set()

    def create_paused(self, timeout):
        self.job = self.host.start_job(["xl", "create", "-F", "-p", self.cfg], self._on_output)
        self.created.wait(timeout)
        if self.domid is None:
            self.job.kill()
            text = "\n".join(self.create_log).strip()
            last = text.splitlines()[-1] if text else "no output"
            if LOADER_REFUSED.search(text):
                raise BadInput(f"Xen refused the kernel: {last}")
            raise InfraError(f"xl create did not create the domain in {timeout:g} s: {last}")
        return self.domid

    # -- the judge's view ------------------------------------------------------

    def end_reason(self):
        """None while the domain lives; else poweroff, reboot, crash, ..."""
        return self.reason if self.ended.is_set() else None

    def console_tty(self, timeout):
        """The pty xenconsoled made for the guest console, once it has."""
        key = f"/local/domain/{self.domid}/console/tty"
        found = threading.Event()
        # xenstore fires a watch once when it is set up and again on every
        # change, so each event is the moment to look.
        watch = self.host.start_job(["xenstore-watch", key],
                                    on_output=lambda stream, data: found.set())
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                job = self.host.run(["xenstore-read", key], timeout=timeout, check=False)
                tty = job.stdout.decode().strip()
                if job.status == 0 and tty:
                    return tty
                found.clear()
                found.wait(max(0.0, deadline - time.monotonic()))
        finally:
            watch.kill()
        raise InfraError(f"xenconsoled gave domain {self.name} no console pty in {timeout:g} s")

    def unpause(self):
        self.host.run(["xl", "unpause", str(self.domid)], timeout=30)
        self.unpaused_at = time.monotonic()

    def destroy(self, timeout=30):
        # Also after the end: a crashed domain is preserved until destroyed.
        if self.domid is not None:
            self.host.run(["xl", "destroy", str(self.domid)], timeout=timeout, check=False)
            self.ended.wait(timeout)
        if self.job:
            self.job.kill()

    # -- evidence -------------------------------------------------------------

    def diagnose(self, symbols=None, timeout=30):
        """What Xen knows about a guest that went quiet: registers and stack
        (function+offset when `symbols`, an nm listing, is given), the
        domain list, and Xen's own log after dumping domain state."""
        def text(argv):
            job = self.host.run(argv, timeout=timeout, check=False)
            return job.text

        found = {"xl list": text(["xl", "list", "-l", str(self.domid)])[:20000]}
        found["xenctx"] = text(["xenctx", "-a", "-S"] + (["-s", symbols] if symbols else [])
                               + [str(self.domid)])
        text(["xl", "debug-keys", "q"])
        found["xl dmesg"] = text(["xl", "dmesg"])
        return found


def xl_string(value):
    """A value as an xl config string literal: the only escapes xl's parser
    knows are backslash sequences, and control characters are refused."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise BadInput(f"{value!r}: control characters cannot go into a domain config")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(template_path, values):
    """Fill @KEY@ placeholders; every value is an xl literal already."""
    text = TEMPLATE.read_text(template_path, "template")
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    if m := re.search(r"@[A-Z_]+@", text):
        raise BadInput(f"{template_path}: placeholder {m.group(0)} has no value")
    return text


def xl_info(host):
    """`xl info` on the host, as {field: value}."""
    job = host.run(["xl", "info"], timeout=30)
    info = dict(line.split(":", 1) for line in job.stdout.decode().splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in info.items()}


def xen_version(host):
    info = xl_info(host)
    return f"{info.get('xen_major', '?')}.{info.get('xen_minor', '?')}{info.get('xen_extra', '')}"


# Where a Linux dom0 shows Xen's capabilities (CONFIG_XEN_SYS_HYPERVISOR).
CAPS_FILE = "/sys/hypervisor/properties/capabilities"


def xen_caps(host):
    """The guest types the host's Xen runs, as Xen names them
    ("xen-3.0-x86_64", "xen-3.0-x86_32p", "hvm-3.0-x86_32", ...): from
    dom0's sysfs, else `xl info`'s xen_caps."""
    data = host.read_file(CAPS_FILE)
    text = data.decode() if data is not None else xl_info(host).get("xen_caps", "")
    caps = text.split()
    if not caps:
        raise InfraError(f"the Xen host reports no capabilities ({CAPS_FILE} and `xl info` xen_caps empty)")
    return caps
