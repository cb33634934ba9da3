"""images/probe: the probe kernel (pv64, pv32pae and pvh32) and
crash-at-entry, as built files.

What a boot shows (the PROBE lines, the commands) is for the Xen host to
check; these tests check what Xen's loader (libelf) and the harness read from
the files: the Xen notes, one loadable image at the notes' addresses, the
symbol table, and that two builds give the same bytes.
"""
import re
import shutil
import struct
import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from xenboot.core import paths

PROBE_DIR = paths.IMAGES / "probe"
PV_KERNELS = ("probe", "probe-pv32pae", "crash-at-entry")
KERNELS = PV_KERNELS + ("probe-pvh32",)
PV_PROBES = ("probe", "probe-pv32pae")
PROBES = PV_PROBES + ("probe-pvh32",)
# The guest type each probe is built as (its folder under obj/).
GUEST_TYPE = {"probe": "pv64", "probe-pv32pae": "pv32pae", "probe-pvh32": "pvh32"}
PAGE = 4096

# xen/elfnote.h
GUEST_OS, GUEST_VERSION, XEN_VERSION, LOADER = 6, 7, 5, 8
ENTRY, HYPERCALL_PAGE, VIRT_BASE, PADDR_OFFSET = 1, 2, 3, 4
PAE_MODE, FEATURES, BSD_SYMTAB, HV_START_LOW = 9, 10, 11, 12
PHYS32_ENTRY = 18
# Per kernel: ELF class, machine, PAE_MODE, where it links (FreeBSD's KERNBASE
# on amd64 and i386), and the start of Xen's area (HYPERVISOR_VIRT_START).
GUEST = {"probe": (64, "EM_X86_64", "no", 0xffffffff80000000, 0xffff800000000000),
         "probe-pv32pae": (32, "EM_386", "yes", 0xc0000000, 0xf5800000),
         "crash-at-entry": (64, "EM_X86_64", "no", 0xffffffff80000000, 0xffff800000000000)}
# What FreeBSD's amd64_xen_pv declares (sys/amd64/xen/locore.S) and the probe
# mirrors, apart from its own GUEST_OS and GUEST_VERSION.
BRANCH_NOTES = {XEN_VERSION: "xen-3.0", LOADER: "generic",
                FEATURES: "writable_page_tables|writable_descriptor_tables",
                BSD_SYMTAB: "yes"}


def make_probe(out_dir, cc=None):
    argv = ["make", "-C", str(PROBE_DIR), f"O={out_dir}"] + ([f"CC={cc}"] if cc else [])
    return subprocess.run(argv, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Two builds into different folders, with what make printed."""
    outs = [tmp_path_factory.mktemp(name) for name in ("first", "second")]
    return [(out, make_probe(out)) for out in outs]


@pytest.fixture(scope="module")
def out(builds):
    return builds[0][0]


def xen_notes(path):
    """{type: desc bytes} from the PT_NOTE segment, owner "Xen" only."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        data = b"".join(seg.data() for seg in elf.iter_segments()
                        if seg["p_type"] == "PT_NOTE")
    notes, at = {}, 0
    while at + 12 <= len(data):
        namesz, descsz, kind = struct.unpack_from("<III", data, at)
        at += 12
        name = data[at:at + namesz].rstrip(b"\0")
        at += (namesz + 3) & ~3
        if name == b"Xen":
            notes[kind] = data[at:at + descsz]
        at += (descsz + 3) & ~3
    return notes


def text(desc):
    return desc.rstrip(b"\0").decode()


def number(desc):
    return int.from_bytes(desc, "little")


def symbols(path):
    out = subprocess.run(["nm", str(path)], check=True, capture_output=True, text=True).stdout
    return {fields[2]: int(fields[0], 16)
            for fields in (line.split() for line in out.splitlines()) if len(fields) == 3}


def test_two_builds_are_the_same_bytes(builds):
    (first, _), (second, _) = builds
    for kernel in KERNELS:
        assert (first / kernel).read_bytes() == (second / kernel).read_bytes(), kernel


def test_build_is_warning_free_under_werror(builds):
    for _, made in builds:
        assert "-Werror" in made.stdout
        assert "warning" not in made.stderr.lower(), made.stderr


@pytest.mark.skipif(not shutil.which("clang"), reason="clang is not installed")
def test_clang_build_is_warning_free(tmp_path):
    made = make_probe(tmp_path, cc="clang")
    assert "warning" not in made.stderr.lower(), made.stderr
    for kernel in PROBES:
        assert xen_notes(tmp_path / kernel)[LOADER] == b"generic\0"


def test_no_build_paths_in_the_image(out):
    for kernel in KERNELS:
        image = (out / kernel).read_bytes()
        for path in (str(out), str(PROBE_DIR), str(paths.REPO)):
            assert path.encode() not in image, (kernel, path)


@pytest.mark.parametrize("kernel", PV_KERNELS)
def test_readelf_shows_the_xen_notes(out, kernel):
    listing = subprocess.run(["readelf", "-nW", str(out / kernel)], check=True,
                             capture_output=True, text=True).stdout
    assert len(re.findall(r"^\s+Xen\s+0x[0-9a-f]+", listing, re.M)) == len(xen_notes(out / kernel))
    notes = xen_notes(out / kernel)
    for kind, value in BRANCH_NOTES.items():
        assert text(notes[kind]) == value, kind
    assert text(notes[GUEST_OS]) == "freebsd-xen-ci-probe"
    assert text(notes[GUEST_VERSION])


@pytest.mark.parametrize("kernel", PV_KERNELS)
def test_guest_type_is_in_the_elf_class_and_notes(out, kernel):
    bits, machine, pae, base, xen_start = GUEST[kernel]
    with open(out / kernel, "rb") as f:
        elf = ELFFile(f)
        assert (elf.elfclass, elf["e_machine"]) == (bits, machine)
    notes = xen_notes(out / kernel)
    assert text(notes[PAE_MODE]) == pae
    # Address notes are of the guest's word size.
    assert len(notes[VIRT_BASE]) == bits // 8
    assert number(notes[VIRT_BASE]) == base
    assert number(notes[HV_START_LOW]) == xen_start


@pytest.mark.parametrize("kernel", PV_KERNELS)
def test_notes_place_one_image_the_way_libelf_checks_it(out, kernel):
    notes = xen_notes(out / kernel)
    with open(out / kernel, "rb") as f:
        elf = ELFFile(f)
        entry = elf["e_entry"]
        loads = [seg for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD"]
    assert len(loads) == 1
    start = loads[0]["p_paddr"]
    end = start + loads[0]["p_memsz"]
    assert loads[0]["p_vaddr"] == start
    virt_base = number(notes[VIRT_BASE])
    assert number(notes[PADDR_OFFSET]) == virt_base == start
    assert number(notes[ENTRY]) == entry
    assert start <= entry < end
    hypercall_page = number(notes[HYPERCALL_PAGE])
    assert hypercall_page % PAGE == 0 and start <= hypercall_page < end


@pytest.mark.parametrize("kernel", PROBES)
def test_symbol_table_names_what_the_harness_looks_for(out, kernel):
    names = symbols(out / kernel)
    for name in ("_start", "probe_main", "probe_hang_loop", "probe_fault", "probe_panic",
                 "probe_upcall", "probe_trap", "hypercall_page", "hypercall_sched_op"):
        assert name in names, name
    notes = xen_notes(out / kernel)
    assert names["_start"] == number(notes[PHYS32_ENTRY if kernel == "probe-pvh32" else ENTRY])


@pytest.mark.parametrize("kernel", PV_PROBES)
def test_user_mode_code_has_pages_of_its_own(out, kernel):
    # pv32 maps these pages for ring 3; nothing else may share them.
    names = symbols(out / kernel)
    start, end = names["probe_user_text"], names["probe_user_text_end"]
    assert start % PAGE == 0 and end % PAGE == 0 and end > start
    inside = {n for n, a in names.items() if start <= a < end}
    assert inside >= {"probe_user_syscall", "probe_user_int"}
    assert inside <= {"probe_user_text", "probe_user_syscall", "probe_user_syscall_after",
                      "probe_user_int", "probe_user_int_after"}, inside


@pytest.mark.parametrize("kernel", PROBES)
@pytest.mark.parametrize("function, source", [("probe_main", "common/main.c"),
                                              ("probe_hang_loop", "common/commands.c"),
                                              ("probe_trap", None),
                                              ("_start", None)])
def test_dwarf_names_the_file_and_line_of_a_probe_address(out, kernel, function, source):
    # What a crash's RIP or a xenctx frame is decoded with: binutils' addr2line.
    address = symbols(out / kernel)[function]
    named = subprocess.run(["addr2line", "-f", "-e", str(out / kernel), hex(address)],
                           check=True, capture_output=True, text=True).stdout.split()
    assert named[0] == function, named
    path, line = named[1].rsplit(":", 1)
    # Relative to images/probe: the prefix map keeps the build folder out.
    assert path.startswith("./"), path
    own = {"probe": ("arch/x86/traps.c", "arch/x86/entry_64.S"),
           "probe-pv32pae": ("arch/x86/traps.c", "arch/x86/entry_32.S"),
           "probe-pvh32": ("arch/x86/traps-pvh.c", "arch/x86/entry_pvh32.S")}[kernel]
    source = source or own[function == "_start"]
    assert path[2:] == source
    lines = (PROBE_DIR / source).read_text().splitlines()
    # Its first instruction is a line of its body (not always the brace: GCC
    # may schedule the prologue with the first statement).
    starts = [n for n, text in enumerate(lines, 1)
              if re.match(rf"(\w.*\b{function}\(.*[^;]$|{function}:)", text)]
    assert len(starts) == 1, starts
    assert starts[0] <= int(line) < starts[0] + 30, (named, starts)


@pytest.mark.parametrize("kernel", KERNELS)
def test_dwarf_is_in_no_loaded_segment(out, kernel):
    # Xen's loader copies PT_LOAD segments and, for BSD_SYMTAB, the symbol
    # and string tables: the DWARF must stay in the file only.
    with open(out / kernel, "rb") as f:
        elf = ELFFile(f)
        debug = [s for s in elf.iter_sections() if s.name.startswith(".debug_")]
        assert {".debug_info", ".debug_line"} <= {s.name for s in debug}
        loads = [seg for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD"]
        for section in debug:
            assert not section["sh_flags"] & 2, section.name  # SHF_ALLOC
            assert not any(seg.section_in_segment(section) for seg in loads), section.name


def c_objects(out, guest):
    """{source path: its object} for the C files of one guest type's build."""
    objects = {}
    for obj in sorted((out / "obj" / guest).rglob("*.o")):
        source = obj.relative_to(out / "obj" / guest).with_suffix(".c")
        if (PROBE_DIR / source).exists():
            objects[str(source)] = obj
    return objects


def defined_and_used(obj):
    listing = subprocess.run(["nm", str(obj)], check=True, capture_output=True, text=True).stdout
    defined, used = set(), set()
    for fields in (line.split() for line in listing.splitlines()):
        if len(fields) == 3 and fields[1] in "TDBRC":
            defined.add(fields[2])
        elif fields[:1] == ["U"]:
            used.add(fields[1])
    return defined, used


def first_circle(graph):
    """One circle of the graph as a list of nodes (first node repeated last), or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for after in sorted(graph[node]):
            if state.get(after) == "open":
                return path[path.index(after):] + [after]
            if after not in state:
                circle = visit(after, path + [after])
                if circle:
                    return circle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            circle = visit(node, [node])
            if circle:
                return circle
    return None


@pytest.mark.parametrize("guest", ("pv64", "pv32pae", "pvh32"))
def test_c_files_use_each_other_without_a_circle(out, guest):
    # File A uses file B when A's object needs a symbol B's defines (nm).
    # The assembly entry points are left out: Xen enters the C through them
    # and the C registers them, which is a circle by nature. probe_main is
    # the entry point the checks take the address of as a known place in the
    # image, not something they call.
    objects = c_objects(out, guest)
    tables = {source: defined_and_used(obj) for source, obj in objects.items()}
    owner = {name: source for source, (defined, _) in tables.items() for name in defined}
    graph = {source: {owner[name] for name in used - {"probe_main"}
                      if name in owner and owner[name] != source}
             for source, (_, used) in tables.items()}
    assert "common/setup.c" in graph and not graph["common/setup.c"] - {"common/string.c"}
    assert first_circle(graph) is None, " -> ".join(first_circle(graph))


def test_common_headers_declare_no_arch_function(out):
    arch_functions = set()
    for source, obj in [*c_objects(out, "pv64").items(), *c_objects(out, "pvh32").items()]:
        if source.startswith("arch/"):
            arch_functions |= defined_and_used(obj)[0]
    for header in sorted((PROBE_DIR / "include").rglob("*.h")):
        declared = set(re.findall(r"\b(\w+)\s*\(", header.read_text()))
        assert not declared & arch_functions, (header.name, declared & arch_functions)


def test_crash_at_entry_faults_on_its_first_instruction(out):
    entry = number(xen_notes(out / "crash-at-entry")[ENTRY])
    listing = subprocess.run(
        ["objdump", "-d", f"--start-address={entry}", f"--stop-address={entry + 16}",
         str(out / "crash-at-entry")], check=True, capture_output=True, text=True).stdout
    first = next(line for line in listing.splitlines() if re.match(r"\s*[0-9a-f]+:\t", line))
    # A load from the lower half, which a kernel linked at KERNBASE never maps.
    assert re.search(r"movabs 0x[0-9a-f]{1,8},%al", first), first


def test_pvh_build_has_the_pvh_entry_note_and_none_of_pvs(out):
    # What makes Xen (and the harness's kernel check) start it as PVH: the
    # physical entry point, and no writable_page_tables (no FEATURES at all).
    from xenboot.guest import kernelcheck
    notes = xen_notes(out / "probe-pvh32")
    with open(out / "probe-pvh32", "rb") as f:
        elf = ELFFile(f)
        assert (elf.elfclass, elf["e_machine"]) == (32, "EM_386")
        entry = elf["e_entry"]
        loads = [seg for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD"]
    assert number(notes[PHYS32_ENTRY]) == entry
    assert not {FEATURES, ENTRY, VIRT_BASE, PADDR_OFFSET, HYPERCALL_PAGE, BSD_SYMTAB} & set(notes)
    assert text(notes[GUEST_OS]) == "freebsd-xen-ci-probe"
    # Paging is off at entry: it links where it is loaded, at 1 MiB.
    assert len(loads) == 1 and loads[0]["p_vaddr"] == loads[0]["p_paddr"] == 0x100000
    assert loads[0]["p_paddr"] <= entry < loads[0]["p_paddr"] + loads[0]["p_memsz"]
    assert kernelcheck.boots_as_pvh({"PHYS32_ENTRY": entry})


def guest_types_of(source):
    found = re.findall(r"^ \* Guest types: (.+)$", source.read_text(), re.M)
    assert len(found) == 1, (source, found)
    return set(found[0].split())


def test_each_check_file_names_its_guest_types_and_the_images_hold_exactly_those(out):
    sources = sorted((PROBE_DIR / "common").glob("check-*.c")) + \
              sorted((PROBE_DIR / "arch/x86").glob("check-*.c"))
    registered = {}
    for source in sources:
        names = re.findall(r"^PROBE_CHECK\(\d{3}, \"([a-z0-9-]+)\", (\w+)\);$",
                           source.read_text(), re.M)
        assert names, source
        registered[source] = (guest_types_of(source), {fn for _, fn in names})
        assert guest_types_of(source) <= set(GUEST_TYPE.values()), source
    for kernel, guest in GUEST_TYPE.items():
        in_image = {name[len("check_entry_"):] for name in symbols(out / kernel)
                    if name.startswith("check_entry_")}
        wanted = set().union(*(fns for guests, fns in registered.values() if guest in guests))
        assert in_image == wanted, kernel
    # PV's own machinery stays out of the PVH image.
    pvh = set(registered[PROBE_DIR / "arch/x86/check-hvm-start-info.c"][1])
    assert pvh == {"check_hvm_start_info"}
    for leftout in ("check_linear_pt", "check_start_info", "check_bsd_symtab", "check_trap_syscall"):
        assert "check_entry_" + leftout not in symbols(out / "probe-pvh32")
