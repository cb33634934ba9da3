"""configs/lab.toml: the embedded host's inputs, validated before use."""
import dataclasses
import os
import tomllib
import typing

from xenboot.core import inputs, paths
from xenboot.core.errors import BadInput

SCHEMA = {
    "apt": {"mirror": str},
    "packages": {"names": list, "metapackages": list, "pins": dict},
    "xen": {"version": str, "source": str, "source_suite": str, "packages": list,
            "image": str, "cmdline": list},
    "flavours": {"default": str, "freebsd": str},
    "dom0": {"kernel_glob": str, "cmdline": list, "programs": list,
             "libraries": list, "links": dict, "modules": list},
    "qemu": {"packages": list, "suite": str, "version": str, "binary": str, "data": str,
             "memory_mb": int, "guest_memory_mb": int, "cpus": int, "accelerator": str, "kvm_probe_seconds": int,
             "console_ports": int, "ready_timeout": int, "snapshot": bool, "tcg_threads": str},
    "cpu_profiles": {"pv": str, "hvm": str},
}
ACCELERATORS = ("tcg", "kvm", "auto")
TCG_THREADS = ("multi", "single")
# Overrides [qemu] tcg_threads for one run: a caller that runs several lab
# hosts at once on this machine's cores (`make test`'s workers) sets single.
TCG_THREADS_ENV = "XENBOOT_LAB_TCG_THREADS"
# The CPU profile a kernel of each guest type (kernelcheck) needs: SVM for
# PVH; every other host (a PV kernel's, a dom0 shell's) has pv's.
PV_PROFILE = "pv"
GUEST_CPU_PROFILES = {"pvh": "hvm"}
FLAVOUR_KEYS = {"build": bool, "config": list}
CONFIG_FILE = inputs.File("lab config", "give a lab config TOML file (like configs/lab.toml)",
                          inputs.TEXT_MAX, text=True)


@dataclasses.dataclass(frozen=True)
class LabConfig:
    path: str
    raw: dict

    def __getitem__(self, section):
        return self.raw[section]


def load(path=None, what="lab config"):
    """The lab config at `path` (default configs/lab.toml), checked; one
    already loaded is returned as it is."""
    if isinstance(path, LabConfig):
        return path
    path = str(path or paths.CONFIGS / "lab.toml")
    try:
        raw = tomllib.loads(CONFIG_FILE.read_text(path, what))
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{path}: not valid TOML: {e}") from None
    for section, keys in SCHEMA.items():
        table = raw.get(section)
        if not isinstance(table, dict):
            raise BadInput(f"{path}: missing table [{section}]")
        for key, kind in keys.items():
            if not isinstance(table.get(key), kind):
                raise BadInput(f"{path}: [{section}] {key} must be a {kind.__name__}")
        for key in table:
            if key not in keys and not (section == "flavours" and isinstance(table[key], dict)):
                raise BadInput(f"{path}: [{section}] unknown key {key!r}")
    for section in raw:
        if section not in SCHEMA:
            raise BadInput(f"{path}: unknown table [{section}]")
    for key, choices in (("accelerator", ACCELERATORS), ("tcg_threads", TCG_THREADS)):
        if raw["qemu"][key] not in choices:
            raise BadInput(f"{path}: [qemu] {key} must be one of {', '.join(choices)}")
    threads = os.environ.get(TCG_THREADS_ENV)
    if threads is not None:
        if threads not in TCG_THREADS:
            raise BadInput(f"{TCG_THREADS_ENV}={threads!r}: must be one of {', '.join(TCG_THREADS)} "
                           f"(or unset, for {path}'s [qemu] tcg_threads)")
        raw["qemu"]["tcg_threads"] = threads
    _check_flavours(path, raw["flavours"])
    return LabConfig(path, raw)


def flavours(config):
    """The flavour names, as lab.toml lists them."""
    return [name for name, table in config["flavours"].items() if isinstance(table, dict)]


def flavour(config, name=None, freebsd=False):
    """(name, table) of the flavour asked for, else the default for this
    kind of boot; BAD_INPUT naming the choices when there is no such one."""
    name = name or config["flavours"]["freebsd" if freebsd else "default"]
    table = config["flavours"].get(name)
    if not isinstance(table, dict):
        raise BadInput(f"LAB={name}: no such lab flavour in {config.path}: "
                       f"use one of {', '.join(flavours(config))}")
    return name, table


def profile_for(guest_type):
    return GUEST_CPU_PROFILES.get(guest_type, PV_PROFILE)


class CpuProfile(typing.NamedTuple):
    name: str
    model: str  # QEMU's -cpu


def cpu_profile(config, name):
    """The [cpu_profiles] profile `name`, or BAD_INPUT naming the choices."""
    model = config["cpu_profiles"].get(name)
    if model is None:
        raise BadInput(f"LAB_CPU={name}: no such lab CPU profile in {config.path}: "
                       f"use one of {', '.join(config['cpu_profiles'])}")
    return CpuProfile(name, model)


def _check_flavours(path, table):
    for name, flav in table.items():
        if not isinstance(flav, dict):
            continue
        for key, value in flav.items():
            if key not in FLAVOUR_KEYS or not isinstance(value, FLAVOUR_KEYS[key]):
                raise BadInput(f"{path}: [flavours.{name}] {key} is not one of "
                               f"build (bool), config (list)")
        if not isinstance(flav.get("build"), bool):
            raise BadInput(f"{path}: [flavours.{name}] build must be a bool")
        if any(not isinstance(line, str) or "=" not in line for line in flav.get("config", [])):
            raise BadInput(f"{path}: [flavours.{name}] config lines must be strings like CONFIG_X=y")
    for role in ("default", "freebsd"):
        if not isinstance(table.get(table[role]), dict):
            raise BadInput(f"{path}: [flavours] {role} = {table[role]!r} names no [flavours.*] table")


CONFIG_INPUT = CONFIG_FILE.given(load=load)
# The flavours are the ones the command's lab config (its --lab-config, if it
# has one, checked before) lists.
FLAVOUR_INPUT = inputs.Rule("choice", lambda value, what, args: flavour(load(getattr(args, "lab_config", None)),
                                                                         value))
CPU_PROFILE_INPUT = inputs.Rule("choice", lambda value, what, args: cpu_profile(
    load(getattr(args, "lab_config", None)), value))
