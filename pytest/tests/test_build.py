"""The kernel build drivers, tested on what exists here: the cross toolchain
on small inputs, the compat shims, and the 10.x driver's sequencing on the
source tree FIXTURE in fixtures/freebsd-src-fixture (a toy with the 2013
tree's interface, amd64 and i386; nothing built from it is FreeBSD, and
results say so); the era check, and the make.py driver's steps on that
fixture made to say 13.2 with a FAKE make.py. Builds of real trees are at
the end: a FreeBSD 10 tree (real_tree) and a 12.2-14.x one (modern_tree).
"""
import hashlib
import json
import os
import pathlib
import re
import shlex
import shutil
import struct
import subprocess
import tempfile

import pytest
from elftools.elf.elffile import ELFFile

from xenboot import cli
from xenboot.build import build, driver, freebsd10, makepy, source
from xenboot.core import paths
from xenboot.guest.xenheaders import constants

FIXTURE = paths.REPO / "pytest" / "tests" / "fixtures" / "freebsd-src-fixture"
FIXTURE_SYS = FIXTURE / "sys"


def xenboot(monkeypatch, *argv):
    """Runs `xenboot <argv>` through the real entry point, with only the kernel command."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("xenboot.build.build",))
    return cli.main(list(argv))


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def elf_summary(path):
    """ELF class, machine, OS ABI and the Xen notes by name, read with
    pyelftools and struct."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        summary = {"class": elf.elfclass, "machine": elf["e_machine"], "osabi": elf["e_ident"]["EI_OSABI"],
                   "xen": {}}
        for section in elf.iter_sections():
            if section.header.sh_type != "SHT_NOTE":
                continue
            data, pos = section.data(), 0
            # Parsed by hand: pyelftools reads Xen's note types as GNU ones.
            while pos + 12 <= len(data):
                namesz, descsz, n_type = struct.unpack_from("<III", data, pos)
                name = data[pos + 12:pos + 12 + namesz].rstrip(b"\0")
                desc_at = pos + 12 + (namesz + 3) // 4 * 4
                desc = data[desc_at:desc_at + descsz]
                pos = desc_at + (descsz + 3) // 4 * 4
                if name == b"Xen":
                    summary["xen"][XEN_NOTES.get(n_type, n_type)] = desc
    return summary


XEN_NOTES = constants("elfnote.h", "XEN_ELFNOTE_")


# ------------------------------------------------------------ the toolchain

def test_lld_links_with_the_freebsd_output_format(tmp_path):
    """sys/conf/ldscript.amd64 names elf64-x86-64-freebsd, which only ld.lld takes."""
    (tmp_path / "a.c").write_text("void btext(void) { for (;;); }\nint common_sym;\n")
    cc = shlex.split(freebsd10.cross_cc(tmp_path, tmp_path))
    run([*cc, "-ffreestanding", "-mcmodel=kernel", "-c", "a.c"], cwd=tmp_path, check=True)
    linked = run(["ld.lld", "-T", str(FIXTURE_SYS / "conf" / "ldscript.amd64"), "-o", "k", "a.o"], cwd=tmp_path)
    assert linked.returncode == 0, linked.stderr
    assert 'OUTPUT_FORMAT("elf64-x86-64-freebsd"' in (FIXTURE_SYS / "conf" / "ldscript.amd64").read_text()
    with open(tmp_path / "k", "rb") as f:
        elf = ELFFile(f)
        assert elf["e_ident"]["EI_OSABI"] == "ELFOSABI_FREEBSD" and elf["e_machine"] == "EM_X86_64"
        assert elf["e_entry"] >= 0xffffffff80000000


def test_lld_takes_the_kernel_link_line_of_kern_post_mk(tmp_path):
    """The 2013 link: a dynamic kernel (hack.So) with a red-herring interpreter."""
    cc = shlex.split(freebsd10.cross_cc(tmp_path, tmp_path))
    (tmp_path / "a.c").write_text("void btext(void) { for (;;); }\n")
    (tmp_path / "hack.c").write_text("int hack;\n")
    run([*cc, "-ffreestanding", "-mcmodel=kernel", "-c", "a.c"], cwd=tmp_path, check=True)
    run([*cc, "-shared", "-nostdlib", "hack.c", "-o", "hack.So"], cwd=tmp_path, check=True)
    linked = run(["ld.lld", "-Bdynamic", "-T", str(FIXTURE_SYS / "conf" / "ldscript.amd64"), "--no-warn-mismatch",
                  "-warn-common", "-export-dynamic", "-dynamic-linker", "/red/herring", "-o", "kernel", "-X",
                  "a.o", "hack.So"], cwd=tmp_path)
    assert linked.returncode == 0, linked.stderr
    for argv in (["--only-keep-debug", "kernel", "kernel.debug"],
                 ["--strip-debug", "--add-gnu-debuglink=kernel.debug", "kernel"]):
        run(["llvm-objcopy", *argv], cwd=tmp_path, check=True)


def genassym(tmp_path, *extra_flags):
    """Compiles the fixture's genassym.c with the driver's compiler and reads it back with nm."""
    cc = shlex.split(freebsd10.cross_cc(tmp_path, tmp_path))
    run([*cc, "-ffreestanding", "-nostdinc", f"-I{FIXTURE_SYS}", *extra_flags, "-c",
         str(FIXTURE_SYS / "amd64" / "amd64" / "genassym.c"), "-o", "genassym.o"], cwd=tmp_path, check=True)
    return run(["sh", str(FIXTURE_SYS / "kern" / "genassym.sh"), "genassym.o"], cwd=tmp_path, check=True,
               env=dict(os.environ, NM="llvm-nm", AWK="original-awk")).stdout


def test_driver_compiler_makes_common_symbols_genassym_reads(tmp_path):
    assert genassym(tmp_path).splitlines() == [
        "#define\tKERNBASE\t0xffffffff80000000",
        "#define\tNEGATIVE_ONE\t-0x1",
        "#define\tPCB_RIP\t0x28",
    ]


def test_without_common_symbols_genassym_reads_nothing(tmp_path):
    """Why the driver adds -fcommon: clang 11+ defaults to -fno-common."""
    assert genassym(tmp_path, "-fno-common") == ""


def test_compat_shims_build_a_program_with_sbuf_queue_and_strlcpy(tmp_path):
    (tmp_path / "Makefile").write_text("PROG=\tt\nSRCS=\tt.c\nLDADD=\t-lsbuf\n.include <bsd.prog.mk>\n")
    (tmp_path / "t.c").write_text(r'''
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/sbuf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct item { char name[8]; STAILQ_ENTRY(item) link; };
STAILQ_HEAD(, item) items = STAILQ_HEAD_INITIALIZER(items);

int
main(void)
{
	struct sbuf *sb = sbuf_new_auto();
	struct item *it, *next;
	int i;

	for (i = 0; i < 3; i++) {
		it = calloc(1, sizeof(*it));
		strlcpy(it->name, "truncated-name", sizeof(it->name));
		it->name[0] = (char)('a' + i);
		STAILQ_INSERT_TAIL(&items, it, link);
	}
	STAILQ_FOREACH_SAFE(it, &items, link, next) {
		sbuf_printf(sb, "%s;", it->name);
		free(it);
	}
	for (i = 0; i < 1000; i++)
		sbuf_putc(sb, 'x');
	if (sbuf_finish(sb) != 0)
		return (1);
	printf("%.24s %zd\n", sbuf_data(sb), sbuf_len(sb));
	sbuf_delete(sb);
	return (0);
}
''')
    made = run(["bmake", "-m", str(freebsd10.COMPAT / "mk"), "-C", str(tmp_path)])
    assert made.returncode == 0, made.stdout + made.stderr
    assert run([str(tmp_path / "t")], check=True).stdout == "aruncat;bruncat;cruncat; 1024\n"


def test_file2c_output_compiles_to_the_same_bytes(tmp_path):
    data = bytes(range(256)) + b"kernconf\n"
    (tmp_path / "in").write_bytes(data)
    with open(tmp_path / "in", "rb") as stdin:
        text = run([str(freebsd10.COMPAT / "bin" / "file2c"), "unsigned char x[] = {", ",0};"],
                   stdin=stdin, check=True).stdout
    (tmp_path / "t.c").write_text('#include <stdio.h>\n' + text +
                                  'int main(void) { fwrite(x, 1, sizeof(x) - 1, stdout); return 0; }\n')
    run(["cc", "-o", str(tmp_path / "t"), str(tmp_path / "t.c")], check=True)
    assert subprocess.run([str(tmp_path / "t")], capture_output=True, check=True).stdout == data


def test_file2c_takes_freebsds_options(tmp_path):
    """10.x makes acpi_wakecode.h with `file2c -sx`."""
    (tmp_path / "in").write_bytes(bytes([1, 255, 128, 0]))
    file2c = str(freebsd10.COMPAT / "bin" / "file2c")
    with open(tmp_path / "in", "rb") as stdin:
        text = run([file2c, "-sx", "static char w[] = {", "};"], stdin=stdin, check=True).stdout
    assert text == "static char w[] = {\n\t0x01, 0xff, 0x80, 0x00\n};\n"
    with open(tmp_path / "in", "rb") as stdin:
        assert run([file2c, "-n", "2"], stdin=stdin, check=True).stdout == "1,255,\n128,0\n"


def test_date_shim_prints_the_source_date_and_passes_the_rest_through():
    date = str(freebsd10.COMPAT / "bin" / "date")
    env = dict(os.environ, SOURCE_DATE_EPOCH="1377000000", TZ="UTC")
    assert run([date], env=env, check=True).stdout.strip() == "Tue Aug 20 12:00:00 UTC 2013"
    # 10.4's newvers.sh: FreeBSD's `date -r <seconds>`.
    assert run([date, "-r", "1377000000"], env=env, check=True).stdout.strip() == "Tue Aug 20 12:00:00 UTC 2013"
    assert run([date, "-u", "-d", "@0", "+%Y"], check=True).stdout.strip() == "1970"
    # GNU's -r FILE still works.
    assert run([date, "-r", "/", "+%Y"], check=True).returncode == 0


def test_xargs_shim_runs_nothing_on_empty_input():
    """10.x's depend pipes empty file lists into `xargs mkdep`."""
    xargs = str(freebsd10.COMPAT / "bin" / "xargs")
    assert run([xargs, "echo", "ran"], input="", check=True).stdout == ""
    assert run([xargs, "echo", "ran"], input="a b\n", check=True).stdout == "ran a b\n"


def test_compiler_says_only_its_version_to_newvers():
    """newvers.sh: `$CC -v 2>&1 | grep version` goes into the kernel."""
    cc = shlex.split(freebsd10.cross_cc("/src", "/obj", "i386"))
    said = subprocess.run(f"{shlex.join(cc)} -v 2>&1 | grep version", shell=True, capture_output=True,
                          text=True, check=True).stdout
    assert said == run(["clang", "--version"], check=True).stdout.splitlines()[0] + "\n"


def test_compat_host_tools_link_globals_defined_in_a_header(tmp_path):
    """10.x's usr.sbin/config defines globals in config.h (gcc 12: -fno-common)."""
    (tmp_path / "Makefile").write_text("PROG=\tt\nSRCS=\tt.c u.c g.h\n.include <bsd.prog.mk>\n")
    (tmp_path / "g.h").write_text("int shared_global;\n")
    (tmp_path / "t.c").write_text('#include "g.h"\nvoid u(void);\nint main(void) { u(); return shared_global - 7; }\n')
    (tmp_path / "u.c").write_text('#include "g.h"\nvoid u(void) { shared_global = 7; }\n')
    made = run(["bmake", "-m", str(freebsd10.COMPAT / "mk"), "-C", str(tmp_path)])
    assert made.returncode == 0, made.stdout + made.stderr
    assert run([str(tmp_path / "t")]).returncode == 0


def test_mkdep_shim_appends_compiler_dependencies(tmp_path):
    (tmp_path / "a.c").write_text('#include "h.h"\n')
    (tmp_path / "h.h").write_text("\n")
    (tmp_path / "b.c").write_text("int b;\n")
    (tmp_path / ".newdep").write_text("earlier.o: earlier.c\n")
    env = dict(os.environ, MKDEP_CPP=freebsd10.cross_cc(tmp_path, tmp_path) + " -E")
    run([str(freebsd10.COMPAT / "bin" / "mkdep"), "-a", "-f", ".newdep", "-O2", "-I.", "a.c", "b.c"],
        cwd=tmp_path, env=env, check=True)
    assert (tmp_path / ".newdep").read_text().split("\n") == ["earlier.o: earlier.c", "a.o: a.c h.h", "b.o: b.c", ""]


@pytest.mark.parametrize("log, error", [
    ("cc -c a.c\na.c:3:9: warning: unused\nsys/x.c:12:5: error: expected ';'\nb.c:1:1: error: later\n",
     "sys/x.c:12:5: error: expected ';'"),
    ("ld.lld: error: undefined symbol: foo\n*** [kernel] Error code 1\n", "ld.lld: error: undefined symbol: foo"),
    ("==> xenboot: all: bmake -Wno-error\nsomething\n*** [kernel] Error code 1\n", "*** [kernel] Error code 1"),
    # make.py's: only the failed step counts, its linker is named by path, and
    # a compiler's -Wno-error= flag is not an error.
    ("==> xenboot: kernel-toolchain: make.py\nx.c:1:1: error: fixed since\n==> xenboot: buildkernel: make.py\n"
     "/usr/bin/cc -Wno-error=address -c a.c\n/usr/lib/llvm-14/bin/ld.lld: error: undefined symbol: xen_start\n"
     "*** [kernel.full] Error code 1\n", "/usr/lib/llvm-14/bin/ld.lld: error: undefined symbol: xen_start"),
    ("/usr/bin/cc -Wno-error=address -c a.c\nmake[2]: stopped in /src\n*** Error code 1\n", "*** Error code 1"),
])
def test_first_error_quotes_the_compiler(log, error):
    assert driver.first_error(log) == error


# ------------------------------------------------- the driver on the fixture

@pytest.fixture
def tree(tmp_path):
    """A private copy of the fixture, so a test may change it."""
    src = tmp_path / "src"
    shutil.copytree(FIXTURE, src)
    # As old as sources usually are: a fresh clone's files are seconds old,
    # and make, comparing whole seconds, would take objects built in the
    # same second for stale.
    age(src, 3600)
    return src


def kernel_run(monkeypatch, tree, objdir, out, *extra):
    status = xenboot(monkeypatch, "kernel", "--src", str(tree), "--objdir", str(objdir), "--out", str(out), *extra)
    return status, json.loads((out / "result.json").read_text())


def compile_dir(objdir, tree, target="amd64", kernconf="XEN"):
    """Where the Linux driver builds: MAKEOBJDIRPREFIX's cross-build place."""
    return objdir / f"{target}.{target}" / str(tree).lstrip("/") / "sys" / kernconf


def step_log(out):
    """build.log without the driver's own step lines: what the tools printed."""
    return [l for l in (out / "build.log").read_text().splitlines() if not l.startswith(driver.STEP_MARK)]


def test_fixture_build_runs_the_buildkernel_steps_and_says_fixture(tree, tmp_path, monkeypatch, capsys):
    status, result = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out")
    assert status == 0 and result["verdict"] == "PASS"
    b = result["build"]
    assert b["steps"] == ["host-tools", "config", "depend", "all"]
    assert b["source"]["fixture"] is True and b["source"]["commit"] is None
    assert b["experimental"] is True and b["toolchain"]["clang"].startswith("Debian clang")
    assert "FIXTURE build (a test tree, not FreeBSD)" in capsys.readouterr().out
    built = compile_dir(tmp_path / "obj", tree)
    assert b["target"] == "amd64" and b["built"]["path"] == str(built / "kernel")
    assert (tmp_path / "out" / "kernel").read_bytes() == (built / "kernel").read_bytes()
    assert result["kernel"]["sha256"] == b["built"]["sha256"]
    assert (result["kernel"]["elf_class"], result["kernel"]["machine"]) == (64, "EM_X86_64")
    # config honoured the kernel config: `optional xen` built, `optional never_set` not.
    assert (built / "xen_only.o").exists() and not (built / "not_configured.o").exists()
    assert "machdep.o: " in (built / ".depend").read_text()
    notes = result["kernel"]["notes"]
    assert notes["GUEST_OS"] == "FIXTURE" and notes["XEN_VERSION"] == "xen-3.0" and notes["LOADER"] == "generic"


def test_second_run_with_no_change_does_no_work(tree, tmp_path, monkeypatch):
    kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out1")
    built = compile_dir(tmp_path / "obj", tree) / "kernel"
    before = built.stat().st_mtime_ns
    status, result = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out2")
    assert status == 0 and result["build"]["steps"] == ["host-tools", "all"]
    assert step_log(tmp_path / "out2") == []
    assert built.stat().st_mtime_ns == before


def age(tree, seconds=60):
    """Moves every file's time back: make compares whole seconds, and a build
    this small ends in the second the test then changes a source in."""
    for top, _dirs, files in os.walk(tree):
        for name in files:
            path = os.path.join(top, name)
            then = os.stat(path).st_mtime - seconds
            os.utime(path, (then, then))


def test_changes_rebuild_only_what_they_touch(tree, tmp_path, monkeypatch):
    # The compat shims too must be older than the objects made from them
    # once those are aged: in a fresh clone they are seconds old.
    compat = tmp_path / "compat"
    shutil.copytree(freebsd10.COMPAT, compat)
    age(compat, 3600)
    monkeypatch.setattr(freebsd10, "COMPAT", compat)
    first = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out1")[1]
    machdep = tree / "sys" / "amd64" / "amd64" / "machdep.c"
    age(tmp_path / "obj")
    machdep.write_text(machdep.read_text() + "int changed = 1;\n")
    status, second = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out2")
    assert status == 0 and second["build"]["steps"] == ["host-tools", "all"]
    compiled = [l for l in step_log(tmp_path / "out2") if l.split()[0].endswith("/freebsd-clang")]
    assert len(compiled) == 1 and "machdep.c" in compiled[0]
    assert second["kernel"]["sha256"] != first["kernel"]["sha256"]
    conf = tree / "sys" / "amd64" / "conf" / "XEN"
    age(tmp_path / "obj")
    conf.write_text(conf.read_text() + "options\t\tNEW_OPTION\n")
    status, third = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out3")
    assert third["build"]["steps"] == ["host-tools", "config", "depend", "all"]


def test_clean_rebuild_of_the_same_tree_is_byte_identical(tree, tmp_path, monkeypatch):
    first = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out1")[1]
    shutil.rmtree(tmp_path / "obj")
    second = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out2")[1]
    assert second["kernel"]["sha256"] == first["kernel"]["sha256"]
    banner = (tmp_path / "out2" / "kernel").read_bytes()
    assert b"freebsd-xen-ci@freebsd-xen-ci.invalid" in banner
    assert b"Thu Jan  1 00:00:00 UTC 1970" in banner


def test_a_git_checkout_records_its_commit_and_stamps_its_date(tree, tmp_path, monkeypatch):
    subprocess.run(["git", "-C", str(tree), "init", "-q"], check=True)
    subprocess.run(["git", "-C", str(tree), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "-m", "fixture"], check=True,
                   env=dict(os.environ, GIT_COMMITTER_DATE="1377000000 +0000", GIT_AUTHOR_DATE="1377000000 +0000"))
    result = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out")[1]
    assert result["build"]["source"]["commit"] == source.git(tree, "rev-parse", "HEAD").stdout.strip()
    assert result["build"]["identity"]["source_date_epoch"] == "1377000000"
    assert b"Tue Aug 20 12:00:00 UTC 2013" in (tmp_path / "out" / "kernel").read_bytes()


def test_compiler_error_is_build_failed_with_the_error_quoted(tree, tmp_path, monkeypatch, capsys):
    machdep = tree / "sys" / "amd64" / "amd64" / "machdep.c"
    machdep.write_text(machdep.read_text() + "int broken = ;\n")
    status, result = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out")
    assert status == 4 and result["verdict"] == "BUILD_FAILED"
    error = result["build"]["error"]
    assert "machdep.c:" in error and "error: expected expression" in error
    assert result["build"]["step"] == "all" and error in result["message"]
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and err.startswith("xenboot: BUILD_FAILED:")
    assert (tmp_path / "out" / "build.log").exists() and (tmp_path / "out" / "junit.xml").exists()


def test_i386_builds_a_32_bit_pae_kernel_beside_the_amd64_one(tree, tmp_path, monkeypatch):
    """Both targets in one object folder: the config folder, compiler target,
    MACHINE and object path follow --target."""
    status, result = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out32", "--target", "i386")
    assert status == 0 and result["build"]["target"] == "i386"
    assert result["build"]["steps"] == ["host-tools", "config", "depend", "all"]
    i386_dir = compile_dir(tmp_path / "obj", tree, "i386")
    assert result["build"]["built"]["path"] == str(i386_dir / "kernel")
    # i386/i386/machdep.c stops the build unless the config's `options PAE` got through.
    assert (i386_dir / "machdep.o").exists() and (i386_dir / "xen_only.o").exists()
    elf = elf_summary(tmp_path / "out32" / "kernel")
    assert (elf["class"], elf["machine"], elf["osabi"]) == (32, "EM_386", "ELFOSABI_FREEBSD")
    assert elf["xen"]["PAE_MODE"] == b"yes\0" and elf["xen"]["GUEST_OS"] == b"FIXTURE\0"
    assert int.from_bytes(elf["xen"]["VIRT_BASE"], "little") == 0xc0000000
    status, result = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out64")
    assert status == 0 and elf_summary(tmp_path / "out64" / "kernel")["class"] == 64
    assert (i386_dir / "kernel").read_bytes() == (tmp_path / "out32" / "kernel").read_bytes()


def test_the_source_tree_is_only_read(tree, tmp_path, monkeypatch):
    """Without write permission (which stops a non-root build), and with the
    tree's state compared (which shows a root build's writes too)."""
    before = driver.tree_state(tree)
    subprocess.run(["chmod", "-R", "a-w", str(tree)], check=True)
    try:
        for target in ("amd64", "i386"):
            status, _ = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / f"out-{target}",
                                   "--target", target)
            assert status == 0
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(tree)], check=True)
    after = driver.tree_state(tree)
    assert after.keys() == before.keys()
    assert all(after[p][1:] == before[p][1:] for p in before)


def test_a_failed_depend_is_redone_on_the_next_run(tree, tmp_path, monkeypatch):
    """config's Makefile is there after a failed depend; the next run must
    not take that for a configured folder."""
    genassym = tree / "sys" / "amd64" / "amd64" / "genassym.c"
    good = genassym.read_text()
    genassym.write_text(good + "ASSYM(BROKEN, ;\n")
    status, result = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out1")
    assert status == 4 and result["build"]["step"] == "depend"
    assert (compile_dir(tmp_path / "obj", tree) / "Makefile").exists()
    genassym.write_text(good)
    status, result = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out2")
    assert status == 0 and result["build"]["steps"] == ["host-tools", "config", "depend", "all"]


@pytest.mark.parametrize("argv, complaint", [
    (["--kernconf", "NOPE"], "KERNCONF=NOPE has no config for TARGET=amd64"),
    (["--kernconf", "../XEN"], "letters, digits"),
    (["--target", "sparc64"], "TARGET='sparc64' is not a target this build knows; use one of amd64, i386"),
])
def test_bad_target_or_kernconf_is_bad_input(tree, tmp_path, monkeypatch, argv, complaint, capsys):
    status, result = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out", *argv)
    err = capsys.readouterr().err.strip()
    assert status == 2 and result["verdict"] == "BAD_INPUT" and complaint in err and "\n" not in err


def test_kernconf_of_the_other_target_is_bad_input(tree, tmp_path, monkeypatch, capsys):
    (tree / "sys" / "amd64" / "conf" / "AMD64ONLY").write_text("machine amd64\nident AMD64ONLY\n")
    status, _ = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out", "--target", "i386",
                           "--kernconf", "AMD64ONLY")
    err = capsys.readouterr().err.strip()
    assert status == 2 and "KERNCONF=AMD64ONLY has no config for TARGET=i386" in err
    assert err.endswith("pick one of: XEN")


@pytest.mark.parametrize("param_h, complaint", [
    ("#define __FreeBSD_version 1100122\n", "is FreeBSD 11 (__FreeBSD_version 1100122)"),
    ("#define __FreeBSD_version 902001\n", "is FreeBSD 9 (__FreeBSD_version 902001)"),
    ("#define __FreeBSD_version 1201000\n", "is FreeBSD 12 (__FreeBSD_version 1201000)"),
    ("#define __FreeBSD_version 1500001\n", "is FreeBSD 15 (__FreeBSD_version 1500001)"),
    ("/* no version here */\n", "is of no known era"),
])
def test_a_tree_of_another_era_is_bad_input(tree, tmp_path, monkeypatch, param_h, complaint, capsys):
    (tree / "sys" / "sys" / "param.h").write_text(param_h)
    status, _ = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out")
    err = capsys.readouterr().err.strip()
    assert status == 2 and complaint in err and "\n" not in err
    assert ("this build drives FreeBSD 10 trees (the 2013 amd64_xen_pv branch, the 10.x releases) and "
            "FreeBSD 12.2-14.x trees (with their own tools/build/make.py) on Linux") in err
    assert not (tmp_path / "obj" / "host-tools").exists()


def modern(tree, version=1302001, revision="13.2"):
    """The fixture made to say it is a later FreeBSD, as sys/sys/param.h and newvers.sh do."""
    (tree / "sys" / "sys" / "param.h").write_text(
        f"#define __FreeBSD_version {version}\t/* Master, propagated to newvers */\n")
    (tree / "sys" / "conf" / "newvers.sh").write_text(f'TYPE="FreeBSD"\nREVISION="{revision}"\nBRANCH="RELEASE"\n')
    return tree


@pytest.mark.parametrize("version, system, driver_class", [
    (1000510, "Linux", freebsd10.LinuxBuild),
    (1004000, "FreeBSD", freebsd10.FreeBsdBuild),
    (1202000, "Linux", makepy.MakePyBuild),
    (1302001, "Linux", makepy.MakePyBuild),
    (1401000, "Linux", makepy.MakePyBuild),
])
def test_the_era_and_the_host_pick_the_driver(tree, version, system, driver_class):
    (tree / "tools" / "build").mkdir(parents=True)
    (tree / "tools" / "build" / "make.py").write_text("# FIXTURE\n")
    assert build.check_era(modern(tree, version), "FREEBSD_SRC", system) is driver_class


def test_a_modern_tree_on_a_freebsd_host_is_bad_input_naming_what_it_builds_there(tree):
    with pytest.raises(build.BadInput, match=r"is FreeBSD 13.2 \(__FreeBSD_version 1302001\) by sys/sys/param.h; "
                                             r"this build drives FreeBSD 10 trees \(.*\) on FreeBSD: point"):
        build.check_era(modern(tree), "FREEBSD_SRC", "FreeBSD")


def test_a_modern_tree_without_make_py_is_bad_input(tree, tmp_path, monkeypatch, capsys):
    status, _ = kernel_run(monkeypatch, modern(tree), tmp_path / "obj", tmp_path / "out")
    err = capsys.readouterr().err.strip()
    assert status == 2 and "is FreeBSD 13.2 (__FreeBSD_version 1302001)" in err
    assert "has no tools/build/make.py" in err and "\n" not in err


FAKE_MAKE_PY = """# FAKE tools/build/make.py standing in for a FreeBSD 13 tree's: records how it
# was called and leaves what make.py would, at MAKEOBJDIRPREFIX's places.
import os, pathlib, shutil, sys
obj, src = os.environ["MAKEOBJDIRPREFIX"], pathlib.Path(__file__).resolve().parents[2]
with open(os.environ["FAKE_MAKE_PY_LOG"], "a") as log:
    print(" ".join(sys.argv[1:]), "|", {k: os.environ.get(k) for k in ("TESTS", "SOURCE_DATE_EPOCH")}, file=log)
bmake = pathlib.Path(obj, "bmake-install", "bin", "bmake")
bmake.parent.mkdir(parents=True, exist_ok=True)
bmake.touch()
if os.environ.get("FAKE_WRITES_TREE"):
    (src / "contrib-bmake-unit-test.out").write_text("FAKE")
objtop = pathlib.Path(f"{obj}{src}", "amd64.amd64")
if "kernel-toolchain" in sys.argv:
    (objtop / "tmp").mkdir(parents=True, exist_ok=True)
if "buildkernel" in sys.argv:
    if os.environ.get("FAKE_ERROR"):
        sys.exit(print(os.environ["FAKE_ERROR"], "*** [kernel] Error code 1", sep="\\n") or 2)
    kernconf = next(a for a in sys.argv if a.startswith("KERNCONF=")).split("=")[1]
    kernel = objtop / "sys" / kernconf / "kernel"
    kernel.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sys.executable, kernel)
"""


@pytest.fixture
def fake_make_py(tree, tmp_path, monkeypatch):
    (tree / "tools" / "build").mkdir(parents=True)
    (tree / "tools" / "build" / "make.py").write_text(FAKE_MAKE_PY)
    monkeypatch.setenv("FAKE_MAKE_PY_LOG", str(tmp_path / "make.py.log"))
    return modern(tree), tmp_path / "make.py.log"


def test_make_py_driver_bootstraps_bmake_and_the_toolchain_once_then_buildkernel(fake_make_py, tmp_path,
                                                                                 monkeypatch):
    tree, log = fake_make_py
    status, first = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out1", "--kernconf", "XEN")
    assert status == 0 and first["build"]["steps"] == ["bmake", "kernel-toolchain", "buildkernel"]
    assert first["build"]["source"]["freebsd_version"] == 1302001
    assert set(first["build"]["step_seconds"]) == {"bmake", "kernel-toolchain", "buildkernel"}
    assert first["build"]["built"]["path"] == f"{tmp_path / 'obj'}{tree}/amd64.amd64/sys/XEN/kernel"
    status, second = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out2", "--kernconf", "XEN")
    assert status == 0 and second["build"]["steps"] == ["buildkernel"]
    calls = log.read_text().splitlines()
    common = "--cross-bindir=/usr/lib/llvm-14/bin --cross-compiler-type=clang --no-clean TARGET=amd64 TARGET_ARCH=amd64"
    assert [c.split(" | ")[0] for c in calls] == [
        f"{common} {driver.JOBS} -V MAKE_VERSION",
        f"{common} {driver.JOBS} kernel-toolchain -DWITHOUT_CLANG -DWITHOUT_LLD -DWITHOUT_LLDB -DWITHOUT_LLVM_BINUTILS",
        f"{common} {driver.JOBS} buildkernel KERNCONF=XEN NO_MODULES=yes",
        f"{common} {driver.JOBS} buildkernel KERNCONF=XEN NO_MODULES=yes"]
    # bmake's unit tests (which run in the tree) only for the bootstrap, and none of them.
    assert [c.split(" | ")[1] for c in calls] == ["{'TESTS': '', 'SOURCE_DATE_EPOCH': None}"] + \
        ["{'TESTS': None, 'SOURCE_DATE_EPOCH': None}"] * 3


def test_make_py_failure_is_build_failed_with_the_compiler_error(fake_make_py, tmp_path, monkeypatch, capsys):
    tree, _ = fake_make_py
    monkeypatch.setenv("FAKE_ERROR", f"{tree}/sys/kern/kern_fake.c:12:5: error: use of undeclared identifier 'x'")
    status, result = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out", "--kernconf", "XEN")
    assert status == 4 and result["build"]["step"] == "buildkernel"
    assert result["build"]["error"] == f"{tree}/sys/kern/kern_fake.c:12:5: error: use of undeclared identifier 'x'"
    assert capsys.readouterr().err.strip().startswith("xenboot: BUILD_FAILED: kernel build failed in step buildkernel")


def test_a_build_that_writes_into_the_tree_is_build_failed_naming_the_file(fake_make_py, tmp_path, monkeypatch):
    tree, _ = fake_make_py
    monkeypatch.setenv("FAKE_WRITES_TREE", "1")
    status, result = kernel_run(monkeypatch, tree, tmp_path / "obj", tmp_path / "out", "--kernconf", "XEN")
    assert status == 4 and result["build"]["step"] == "tree-check"
    assert result["build"]["source"]["written"] == [".", "contrib-bmake-unit-test.out"]
    assert "the build wrote into the source tree" in result["message"] and "it must only read it" in result["message"]



def other_filesystem(path):
    """A folder on another filesystem than path's (/dev/shm is a tmpfs), or None."""
    shm = pathlib.Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != path.stat().st_dev:
        return pathlib.Path(tempfile.mkdtemp(dir=shm))
    return None


@pytest.mark.parametrize("scratch_on", ["the tree's filesystem", "another filesystem"])
def test_source_watch_names_each_kind_of_change_made_after_it_started(tmp_path, scratch_on):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / ".git").mkdir()
    for name in ("a", "d", "sub/b", "sub/c", ".git/index"):
        (src / name).write_text(name)
    scratch = tmp_path / "obj" if scratch_on == "the tree's filesystem" else other_filesystem(tmp_path)
    if scratch is None:
        pytest.skip("no writable folder on another filesystem than the test's (/dev/shm)")
    scratch.mkdir(exist_ok=True)
    try:
        (src / "a").write_text("changed the moment before")
        watch = driver.SourceWatch(src, scratch)
        assert (watch.clock is None) == (scratch_on == "another filesystem")
        assert watch.written() == []
        with open(src / "a", "a") as f:
            f.write("+")
        (src / "d").chmod(0o600)
        (src / "sub" / "c").unlink()
        (src / "new").mkdir()
        (src / ".git" / "index").write_text("git's own")
        removed = ["sub/c"] if watch.clock is None else []     # the ctime walk names its folder
        assert watch.written() == sorted([".", "a", "d", "new", "sub"] + removed)
        assert list(scratch.iterdir()) == []
    finally:
        if scratch_on == "another filesystem":
            shutil.rmtree(scratch)



def test_a_filesystem_whose_ctime_does_not_move_gets_the_two_walks(tmp_path, monkeypatch):
    src, scratch = tmp_path / "src", tmp_path / "obj"
    src.mkdir()
    scratch.mkdir()
    # MOCK: a filesystem that never moves a ctime cannot be made here; utime
    # that does nothing stands in for it.
    monkeypatch.setattr(driver.os, "utime", lambda *args, **kwargs: None)
    monkeypatch.setattr(driver, "CTIME_TICK_WAIT", 0.05)
    watch = driver.SourceWatch(src, scratch)
    assert watch.clock is None and list(scratch.iterdir()) == []
    (src / "new").write_text("x")
    assert watch.written() == [".", "new"]

def test_a_tools_version_is_asked_once_until_its_program_changes(tmp_path, monkeypatch):
    bin_dir, objdir, asked = tmp_path / "bin", tmp_path / "obj", tmp_path / "asked"
    bin_dir.mkdir()
    objdir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    program = bin_dir / "sometool"

    def install(version):
        program.write_text(f"#!/bin/sh\necho x >> {asked}\necho 'sometool {version}'\n")
        program.chmod(0o755)

    install("1.0")
    tools = {"sometool": ["sometool", "--version"], "sh": ["sh", "-c", "echo dash"]}
    assert driver.tool_versions(tools, "Linux", objdir) == {"sometool": "sometool 1.0", "sh": "dash"}
    assert driver.tool_versions(tools, "Linux", objdir)["sometool"] == "sometool 1.0"
    assert asked.read_text().count("x") == 1
    install("1.10")
    assert driver.tool_versions(tools, "Linux", objdir)["sometool"] == "sometool 1.10"
    assert asked.read_text().count("x") == 2
    (objdir / driver.TOOLCHAIN_CACHE).write_text("{not json")
    assert driver.tool_versions(tools, "Linux", objdir)["sometool"] == "sometool 1.10"
    assert asked.read_text().count("x") == 3


# ------------------------------------------- the FreeBSD host path, faked

FAKE_MAKE = """#!/bin/sh
# FAKE make(1) standing in for a FreeBSD host's: records how it was called
# and leaves what buildkernel would, at MAKEOBJDIRPREFIX's place.
echo "$* | MAKEOBJDIRPREFIX=$MAKEOBJDIRPREFIX __MAKE_CONF=$__MAKE_CONF SRCCONF=$SRCCONF" >> "$FAKE_MAKE_LOG"
obj=$MAKEOBJDIRPREFIX$FAKE_SRC
case " $* " in *" TARGET=i386 "*) obj=$MAKEOBJDIRPREFIX/i386.i386$FAKE_SRC ;; esac
case " $* " in
*" -V MAKE_VERSION "*) echo 20130520 ;;
*" kernel-toolchain "*) mkdir -p "$obj/tmp/usr/bin" && touch "$obj/tmp/usr/bin/cc" ;;
*" buildkernel "*) [ -n "$FAKE_NO_KERNEL" ] || { mkdir -p "$obj/sys/XEN" &&
    printf 'FAKE kernel' > "$obj/sys/XEN/kernel" && touch "$obj/sys/XEN/Makefile"; } ;;
esac
"""


@pytest.fixture
def fake_freebsd(tree, tmp_path, monkeypatch):
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    (bin_dir / "make").write_text(FAKE_MAKE)
    (bin_dir / "make").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_MAKE_LOG", str(tmp_path / "make.log"))
    monkeypatch.setenv("FAKE_SRC", str(tree))
    monkeypatch.setattr(freebsd10.platform, "machine", lambda: "amd64")
    return tmp_path / "make.log"


def freebsd_build(tree, tmp_path, out):
    return build.build_kernel(tmp_path / out, {}, src=str(tree), objdir=tmp_path / "obj", system="FreeBSD")


def test_freebsd_host_builds_toolchain_once_then_buildkernel_fast(tree, tmp_path, fake_freebsd):
    for out in ("out1", "out2"):
        (tmp_path / out).mkdir()
        kernel = freebsd_build(tree, tmp_path, out)
        assert kernel.read_bytes() == b"FAKE kernel"
    calls = [l for l in fake_freebsd.read_text().splitlines() if "MAKE_VERSION" not in l]
    assert len(calls) == 3
    assert "kernel-toolchain" in calls[0] and "buildkernel" in calls[1] and "buildkernel" in calls[2]
    for call in calls:
        assert f"-C {tree} " in call and "TARGET=amd64 TARGET_ARCH=amd64" in call
        assert f"MAKEOBJDIRPREFIX={tmp_path / 'obj'} __MAKE_CONF=/dev/null SRCCONF=/dev/null" in call
    assert "KERNCONF=XEN" in calls[1] and "-DNO_KERNELCLEAN" not in calls[1]
    assert "-DNO_KERNELCLEAN -DNO_KERNELCONFIG -DNO_KERNELDEPEND" in calls[2]


def test_freebsd_host_finds_no_kernel_and_says_where_it_looked(tree, tmp_path, fake_freebsd, monkeypatch):
    monkeypatch.setenv("FAKE_NO_KERNEL", "1")
    (tmp_path / "out").mkdir()
    with pytest.raises(build.BuildFailed, match=f"left no kernel at {tmp_path / 'obj'}{tree}/sys/XEN/kernel"):
        freebsd_build(tree, tmp_path, "out")


def test_freebsd_host_cross_builds_i386_one_level_deeper(tree, tmp_path, fake_freebsd):
    """On an amd64 FreeBSD host an i386 kernel is a cross build: Makefile.inc1
    puts it under <prefix>/i386.i386."""
    info = {}
    (tmp_path / "out").mkdir()
    build.build_kernel(tmp_path / "out", info, src=str(tree), objdir=tmp_path / "obj", system="FreeBSD",
                       target="i386")
    assert info["built"]["path"] == f"{tmp_path / 'obj'}/i386.i386{tree}/sys/XEN/kernel"
    assert "TARGET=i386 TARGET_ARCH=i386" in fake_freebsd.read_text()


# ------------------------------------- a real FreeBSD tree ($XENBOOT_REAL_TREE)

class RealBuilds:
    """Builds of a real tree, each done once for the module: (target, KERNCONF,
    object folder, run). With a seed, a finished object folder of the tree,
    each object folder starts as a copy of it instead of empty (seed_objdir)."""

    def __init__(self, tree, tmp, seed=None):
        self.tree, self.tmp, self.seed, self.done = tree, tmp, seed, {}
        self.state_before = driver.tree_state(tree)

    def get(self, target, kernconf, objdir="obj", run="1"):
        key = (target, kernconf, objdir, run)
        if key not in self.done:
            if self.seed and not (self.tmp / objdir).exists():
                seed_objdir(self.seed, self.tmp / objdir, kernel_dir=None if objdir == "obj" else
                            driver.objtop_kernel_dir(self.tmp / objdir, self.tree, kernconf, driver.TARGETS[target]))
            out = self.tmp / f"out-{target}-{kernconf}-{objdir}-{run}"
            status = cli.main(["kernel", "--src", str(self.tree), "--objdir", str(self.tmp / objdir),
                               "--out", str(out), "--target", target, "--kernconf", kernconf])
            self.done[key] = status, json.loads((out / "result.json").read_text()), out
        return self.done[key]


def seed_objdir(seed, objdir, kernel_dir=None):
    """objdir as a copy of the finished object folder seed (times kept, so
    make finds it up to date), without what make.py's bmake bootstrap made:
    bmake has the seed's folder compiled in (its default system makefile
    path), so the copy bootstraps its own. With kernel_dir, that kernel's
    build folder is left out too: buildkernel compiles all of it again, with
    the seed's toolchain."""
    subprocess.run(["cp", "-a", str(seed), str(objdir)], check=True)
    for name in ("bmake-build", "bmake-install"):
        shutil.rmtree(objdir / name, ignore_errors=True)
    if kernel_dir:
        shutil.rmtree(kernel_dir)


@pytest.fixture(scope="module")
def real_builds(real_tree, tmp_path_factory):
    return RealBuilds(real_tree, tmp_path_factory.mktemp("real"))


def symbol_bytes(path, name):
    """(file offset, bytes) of a data symbol in the kernel."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        (sym,) = elf.get_section_by_name(".symtab").get_symbol_by_name(name)
        section = elf.get_section(sym["st_shndx"])
        offset = section["sh_offset"] + sym["st_value"] - section["sh_addr"]
        f.seek(offset)
        return offset, f.read(sym["st_size"])


def assert_a_freebsd_kernel(real_builds, target, kernconf, elf_class, machine):
    """The FreeBSD ABI of a 10.x kernel is its ELF header's OS/ABI (the
    ldscript's elf*-freebsd format): its sources make no ABI-tag note, which
    only userland's crt objects carry."""
    status, result, out = real_builds.get(target, kernconf)
    assert status == 0, result["message"]
    assert result["build"]["source"]["fixture"] is False and result["build"]["target"] == target
    elf = elf_summary(out / "kernel")
    assert (elf["class"], elf["machine"], elf["osabi"]) == (elf_class, machine, "ELFOSABI_FREEBSD")
    banner = symbol_bytes(out / "kernel", "version")[1]
    assert banner.startswith(b"FreeBSD 10.") and b"freebsd-xen-ci@freebsd-xen-ci.invalid:" in banner
    assert symbol_bytes(out / "kernel", "osreldate")[1] == build.tree_version(real_builds.tree).to_bytes(4, "little")
    return elf


@pytest.mark.real_tree
def test_real_tree_i386_xen_is_a_32_bit_pae_pv_kernel(real_builds):
    elf = assert_a_freebsd_kernel(real_builds, "i386", "XEN", 32, "EM_386")
    assert elf["xen"]["GUEST_OS"] == b"FreeBSD\0" and elf["xen"]["PAE_MODE"] == b"yes\0"
    assert int.from_bytes(elf["xen"]["VIRT_BASE"], "little") == 0xc0000000


@pytest.mark.real_tree
def test_real_tree_amd64_generic_is_a_64_bit_kernel_without_pv_notes(real_builds):
    elf = assert_a_freebsd_kernel(real_builds, "amd64", "GENERIC", 64, "EM_X86_64")
    assert elf["xen"] == {}


JOB_HEADER = re.compile(r"--- (\S+) ---$")


def job_lines(out):
    """step_log() with make -j's output put back together, one job's lines
    after another's: make prints a job's output in chunks (bmake's of 1024
    bytes), each after a `--- target ---` line when another job printed in
    between, so a long command line may be cut in two, the header right
    after its first part."""
    jobs, job = {}, None
    for line in step_log(out):
        header = JOB_HEADER.search(line)
        if header:
            # The start of a line the job's next chunk goes on with.
            jobs[job] = jobs.get(job, "") + line[:header.start()]
            job = header.group(1)
        else:
            jobs[job] = jobs.get(job, "") + line + "\n"
    return "".join(jobs.values()).splitlines()


def freebsd_clang_compiles(out):
    """The sources the 10.x driver's cross compiler compiled, as build.log shows its command lines."""
    return [l.split()[-1] for l in job_lines(out) if l.split() and l.split()[0].endswith("/freebsd-clang")]


def assert_no_change_rebuild(builds, target, kernconf, steps, compiles):
    """A second run of the module's build, nothing changed: only `steps`,
    nothing compiled, the same kernel. Returns the first run."""
    first = builds.get(target, kernconf)
    status, result, out = builds.get(target, kernconf, run="2")
    assert status == 0 and result["build"]["steps"] == steps
    assert compiles(out) == []
    assert result["kernel"]["sha256"] == first[1]["kernel"]["sha256"]
    return first


def one_object_gone_compiles(builds, target, kernconf, steps, compiles):
    """As a touched source would, without writing the tree: machdep.o
    removed, the next run (only `steps`) compiles what it returns."""
    result = builds.get(target, kernconf)[1]
    (pathlib.Path(result["build"]["built"]["path"]).parent / "machdep.o").unlink()
    status, result, out = builds.get(target, kernconf, run="one-object")
    assert status == 0 and result["build"]["steps"] == steps
    return compiles(out)


@pytest.mark.real_tree
def test_real_tree_rebuild_with_no_change_does_no_work(real_builds):
    assert_no_change_rebuild(real_builds, "i386", "XEN", ["host-tools", "all"], freebsd_clang_compiles)


@pytest.mark.real_tree
def test_real_tree_one_object_gone_rebuilds_it_and_relinks(real_builds):
    compiled = one_object_gone_compiles(real_builds, "i386", "XEN", ["host-tools", "all"], freebsd_clang_compiles)
    assert compiled == [f"{real_builds.tree}/sys/i386/i386/machdep.c", "vers.c"]


@pytest.mark.real_tree
def test_real_tree_is_only_read(real_builds):
    real_builds.get("i386", "XEN")
    real_builds.get("amd64", "GENERIC")
    assert driver.tree_state(real_builds.tree) == real_builds.state_before


def differing_bytes(first, second):
    """The offsets at which two files of the same size differ."""
    a, b = first.read_bytes(), second.read_bytes()
    assert len(a) == len(b)
    block = 4096
    return [i for start in range(0, len(a), block) if a[start:start + block] != b[start:start + block]
            for i in range(start, min(start + block, len(a))) if a[i] != b[i]]


def section_tail(path, name, size):
    """The file offsets of the last `size` bytes of a section."""
    with open(path, "rb") as f:
        section = ELFFile(f).get_section_by_name(name)
        end = section["sh_offset"] + section["sh_size"]
        return range(end - size, end)


@pytest.mark.real_tree
def test_real_tree_clean_builds_in_two_object_folders_differ_only_in_the_version_string(real_builds):
    """newvers.sh writes the object folder into the kernel's `version`
    (`user@host:folder`); every other byte is the same."""
    first = real_builds.get("i386", "XEN")[2] / "kernel"
    second = real_builds.get("i386", "XEN", objdir="obj-other")[2] / "kernel"
    differ = differing_bytes(first, second)
    offset, version = symbol_bytes(first, "version")
    assert differ and all(offset <= i < offset + len(version) for i in differ)
    assert b"obj-other" in second.read_bytes()[offset:offset + len(version)]


# ------------------------ a FreeBSD 12.2-14.x tree ($XENBOOT_MODERN_TREE)

@pytest.fixture(scope="module")
def modern_builds(modern_tree, modern_objdir, tmp_path_factory):
    """Builds of the modern tree by its make.py, each done once for the module:
    from nothing, or from a copy of the object folder $XENBOOT_MODERN_OBJDIR."""
    if modern_objdir:
        kernel = driver.objtop_kernel_dir(modern_objdir, modern_tree, "GENERIC", driver.TARGETS["amd64"]) / "kernel"
        if not kernel.is_file():
            pytest.fail(f"XENBOOT_MODERN_OBJDIR={modern_objdir} holds no GENERIC kernel of {modern_tree} "
                        f"(no {kernel}): name the object folder (MAKEOBJDIRPREFIX) of a finished "
                        "`xenboot kernel --kernconf GENERIC` of that tree", pytrace=False)
    return RealBuilds(modern_tree, tmp_path_factory.mktemp("modern"), seed=modern_objdir)


def cross_compiles(out):
    """The sources the cross compiler compiled, as build.log shows its command lines."""
    return [l.split()[-1] for l in job_lines(out) if l.startswith(makepy.CROSS_BINDIR) and " -c " in l]


@pytest.mark.modern_tree
@pytest.mark.fresh_objdir
def test_modern_tree_generic_is_a_freebsd_kernel_with_the_pvh_entry(modern_builds):
    status, result, out = modern_builds.get("amd64", "GENERIC")
    assert status == 0, result["message"]
    b = result["build"]
    assert b["steps"] == ["bmake", "kernel-toolchain", "buildkernel"] and b["source"]["fixture"] is False
    assert len(cross_compiles(out)) > 1000
    elf = elf_summary(out / "kernel")
    assert (elf["class"], elf["machine"], elf["osabi"]) == (64, "EM_X86_64", "ELFOSABI_FREEBSD")
    assert elf["xen"]["GUEST_OS"] == b"FreeBSD\0" and "PHYS32_ENTRY" in elf["xen"]
    assert result["kernel"]["sha256"] == b["built"]["sha256"]
    # The tree's REPRODUCIBLE_BUILD: the release and config, no user@host:folder.
    version = symbol_bytes(out / "kernel", "version")[1]
    assert version.startswith(f"FreeBSD {build.tree_release(modern_builds.tree, 0)}".encode()) and b"@" not in version
    assert symbol_bytes(out / "kernel", "osreldate")[1] == build.tree_version(modern_builds.tree).to_bytes(4, "little")


@pytest.mark.modern_tree
def test_modern_tree_rebuild_with_no_change_compiles_nothing(modern_builds):
    first = assert_no_change_rebuild(modern_builds, "amd64", "GENERIC", ["buildkernel"], cross_compiles)
    if modern_builds.seed:
        # The copy's first build, in another folder than the seed's objects
        # were made in, is a no-change one too (bmake bootstrapped again).
        assert first[1]["build"]["steps"] == ["bmake", "buildkernel"] and cross_compiles(first[2]) == []
        seed_kernel = driver.objtop_kernel_dir(modern_builds.seed, modern_builds.tree, "GENERIC",
                                               driver.TARGETS["amd64"]) / "kernel"
        assert first[1]["kernel"]["sha256"] == hashlib.sha256(seed_kernel.read_bytes()).hexdigest()


@pytest.mark.modern_tree
def test_modern_tree_one_object_gone_rebuilds_it_and_relinks(modern_builds):
    compiled = one_object_gone_compiles(modern_builds, "amd64", "GENERIC", ["buildkernel"], cross_compiles)
    # newvers.sh leaves vers.c alone when its text is the same (REPRODUCIBLE_BUILD: no date), so vers.o stays.
    assert compiled == [f"{modern_builds.tree}/sys/amd64/amd64/machdep.c"]


@pytest.mark.modern_tree
def test_modern_tree_is_only_read(modern_builds):
    modern_builds.get("amd64", "GENERIC")
    assert driver.tree_state(modern_builds.tree) == modern_builds.state_before


@pytest.mark.modern_tree
@pytest.mark.slow
def test_modern_tree_builds_in_two_object_folders_differ_only_in_the_build_id_and_debuglink(modern_builds):
    """REPRODUCIBLE_BUILD keeps the folder out of `version`, but the object
    folder is every object's DWARF DW_AT_comp_dir, so the two hashes over
    the debug data differ: lld's build-id (.note.gnu.build-id's 20 bytes,
    over all of kernel.full) and .gnu_debuglink's CRC32 of kernel.debug;
    every other byte is the same (measured on 13.2). With a seed, the second
    folder is the seed without its kernel's folder: all of the kernel is
    compiled again, with the seed's toolchain."""
    first = modern_builds.get("amd64", "GENERIC")[2] / "kernel"
    status, result, out = modern_builds.get("amd64", "GENERIC", objdir="obj-other")
    assert status == 0 and len(cross_compiles(out)) > 1000
    differ = differing_bytes(first, out / "kernel")
    build_id, crc = section_tail(first, ".note.gnu.build-id", 20), section_tail(first, ".gnu_debuglink", 4)
    assert all(i in build_id or i in crc for i in differ)
    assert any(i in build_id for i in differ) and any(i in crc for i in differ)
