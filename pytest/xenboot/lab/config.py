"""configs/lab.toml: the embedded host's inputs, validated before use."""
import dataclasses
import tomllib

from xenboot import paths
from xenboot.errors import BadInput

SCHEMA = {
    "packages": {"names": list, "metapackages": list, "pins": dict},
    "xen": {"image": str, "cmdline": list},
    "dom0": {"kernel_glob": str, "cmdline": list, "programs": list,
             "libraries": list, "links": dict, "modules": list},
    "qemu": {"binary": str, "memory_mb": int, "cpus": int, "cpu": str,
             "accelerator": str, "kvm_probe_seconds": int,
             "console_ports": int, "ready_timeout": int, "snapshot": bool},
}
ACCELERATORS = ("tcg", "kvm", "auto")


@dataclasses.dataclass(frozen=True)
class LabConfig:
    path: str
    raw: dict

    def __getitem__(self, section):
        return self.raw[section]


def load(path=None):
    path = str(path or paths.CONFIGS / "lab.toml")
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise BadInput(f"{path}: lab config not found") from None
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
            if key not in keys:
                raise BadInput(f"{path}: [{section}] unknown key {key!r}")
    for section in raw:
        if section not in SCHEMA:
            raise BadInput(f"{path}: unknown table [{section}]")
    if raw["qemu"]["accelerator"] not in ACCELERATORS:
        raise BadInput(f"{path}: [qemu] accelerator must be one of {', '.join(ACCELERATORS)}")
    return LabConfig(path, raw)
