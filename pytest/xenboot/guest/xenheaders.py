"""ABI constants read from Xen's public headers (Debian's libxen-dev), so the
harness never carries a retyped copy that could drift from Xen's."""
import functools
import os
import re

from xenboot.core.errors import InfraError

# XENBOOT_XEN_INCLUDE: where the headers are when not at the usual place
# (the harness running inside the embedded host's dom0 reads this machine's).
INCLUDE = os.environ.get("XENBOOT_XEN_INCLUDE", "/usr/include/xen")


@functools.lru_cache(maxsize=None)
def constants(header, prefix):
    """{number: name} for every `#define <prefix><NAME> <number>` in header."""
    path = f"{INCLUDE}/{header}"
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise InfraError(f"{path} not found: run `apt-get install libxen-dev`") from None
    return {int(num, 0): name for name, num in
            re.findall(rf"#define {prefix}(\w+)\s+(0x[0-9a-fA-F]+|\d+)\b", text)
            if name != "MAX"}
