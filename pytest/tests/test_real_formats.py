"""The FreeBSD console formats the specs and the transcripts rely on, read
from a real FreeBSD source tree ($XENBOOT_REAL_TREE, e.g. a 10.4 tree): if a
tree prints them differently, the spec comments that cite these files are
wrong for it. Skipped without a tree (CI has none)."""
import os
import pathlib
import re

import pytest

from xenboot.judge.spec import load_spec

TREE = os.environ.get("XENBOOT_REAL_TREE")
pytestmark = [pytest.mark.real_tree,
              pytest.mark.skipif(not TREE, reason="XENBOOT_REAL_TREE is not set: set it to a real "
                                                  "FreeBSD source tree to check the console formats")]

# (file under sys/, C source text that prints it, a line as printed, the
# spec entry that must match that line)
FORMATS = [
    ("kern/subr_kdb.c", 'printf("KDB: debugger backends:");', "KDB: debugger backends: ddb",
     ("milestone", "kdb-backends")),
    ("kern/subr_kdb.c", 'printf("KDB: current backend: %s\\n",', "KDB: current backend: ddb",
     ("milestone", "kdb-current")),
    ("kern/subr_kdb.c", 'printf("KDB: enter: %s\\n", msg);', "KDB: enter: panic", ("milestone", "kdb")),
    ("i386/i386/machdep.c", 'printf("real memory  = %ju (%ju MB)\\n", memsize, memsize >> 20);',
     "real memory  = 134217728 (128 MB)", ("milestone", "real-memory")),
    ("i386/i386/machdep.c", 'printf("avail memory = %ju (%ju MB)\\n",', "avail memory = 107474944 (102 MB)",
     ("milestone", "avail-memory")),
    ("i386/i386/machdep.c", 'printf("WARNING: loader(8) metadata is missing!\\n");',
     "WARNING: loader(8) metadata is missing!", ("milestone", "loader-metadata")),
    ("x86/x86/nexus.c", 'retval += printf(" on motherboard\\n");', "xc0: <Xen Console> on motherboard",
     ("milestone", "console")),
    ("dev/xen/console/console.c", 'device_set_desc(child, "Xen Console");',
     "xc0: <Xen Console> on motherboard", ("milestone", "console")),
    ("dev/xen/blkfront/blkfront.c", 'device_printf(dev, "%juMB <%s> at %s",',
     "xbd0: 16MB <Virtual Block Device> at device/vbd/51712 on xenbusb_front0", ("milestone", "disk")),
    ("kern/vfs_mountroot.c", 'printf("Trying to mount root from %s:%s [%s]...\\n", fs, dev,',
     "Trying to mount root from ufs:/dev/xbd0 []...", ("milestone", "mountroot")),
    ("kern/vfs_mountroot.c", 'printf("Mounting from %s:%s failed with error %d",',
     "Mounting from ufs:/dev/xbd0 failed with error 19.", ("note", "root-failed")),
    ("kern/vfs_mountroot.c", 'printf("\\nmountroot> ");', "mountroot> ", ("fatal", "mountroot-prompt")),
    ("kern/init_main.c", 'printf("exec %.*s: error %d\\n", (int)(next - path),',
     "exec /sbin/init: error 8", ("note", "init-failed")),
    ("kern/init_main.c", 'printf("init: not found in path %s\\n", init_path);',
     "init: not found in path /sbin/init:/sbin/oinit:/sbin/init.bak:/rescue/init", ("note", "init-missing")),
    ("kern/init_main.c", 'panic("no init");', "panic: no init", ("fatal", "panic")),
]


@pytest.mark.parametrize("path, source, line, entry", FORMATS, ids=[f[3][1] + ":" + f[0] for f in FORMATS])
def test_the_tree_prints_what_the_i386_spec_matches(path, source, line, entry):
    text = (pathlib.Path(TREE) / "sys" / path).read_text(errors="replace")
    assert source in text, f"{path} no longer has {source}"
    spec = load_spec("freebsd-xen-pv-i386")
    kind, name = entry
    items = {"milestone": spec.milestones, "note": spec.notes, "fatal": spec.fatal}[kind]
    pattern = next(i.pattern for i in items if i.name == name)
    assert pattern.regex.search(line), f"{kind} {name} does not match {line!r}"


def test_ddb_prompt_pager_and_stop_line():
    ddb = pathlib.Path(TREE) / "sys" / "ddb"
    assert 'db_printf("db> ");' in (ddb / "db_command.c").read_text()
    output = (ddb / "db_output.c").read_text()
    spec = load_spec("freebsd-xen-pv-i386")
    assert f'db_printf("{spec.debugger.pager}\\r");' in output and 'db_printf("        ");' in output
    assert re.search(r'\{ "lines",\s*&db_lines_per_page', (ddb / "db_variables.c").read_text())


def test_the_xen_console_ends_lines_with_newline_cr_and_buffers_4k():
    console = (pathlib.Path(TREE) / "sys" / "dev" / "xen" / "console" / "console.c").read_text()
    assert "#define WBUF_SIZE     4096" in console
    assert "== '\\n') {\n        \t\twbuf[WBUF_MASK(wp++)] = '\\r';" in console
