"""Loaded into gdb (`source`), not imported by the harness: an unwinder
through FreeBSD amd64 trap frames, as FreeBSD's kgdb has one. gdb's DWARF
unwinder stops at a trap stub (Xbp, Xpage, calltrap...: assembly without
call frame information), so on a kernel stopped in ddb its backtrace ended
at trap() and never reached the frames ddb's `bt` shows, those of the code
that trapped. A stub calls trap(frame) with %rsp at its struct trapframe;
the frame before the stub is the one the trap frame saved."""
import re

import gdb
from gdb.unwinder import Unwinder, register_unwinder

# FreeBSD's names for the amd64 code that builds a trap frame and calls
# trap() (kgdb's amd64fbsd_trapframe_sniffer takes the same).
TRAP_STUB = re.compile(r"X\w+|calltrap|nmi_calltrap|mchk_calltrap|dbg_calltrap|fork_trampoline")
# Registers the trap frame saved, and its fields for them.
SAVED = ("rdi", "rsi", "rdx", "rcx", "r8", "r9", "rax", "rbx", "rbp", "r10", "r11", "r12", "r13", "r14",
         "r15", "rip", "rsp")
_SYMBOL = re.compile(r"<([^+>]+)")


class _FrameId:
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class FreeBSDTrapFrame(Unwinder):
    def __init__(self):
        super().__init__("freebsd-amd64-trapframe")
        self._fields = None

    def _offsets(self):
        """{register: offset in struct trapframe}, from the kernel's DWARF;
        None for a kernel without it (no trap frame is known then)."""
        if self._fields is None:
            try:
                fields = {f.name: f.bitpos // 8 for f in gdb.lookup_type("struct trapframe").fields()}
            except gdb.error:
                fields = {}
            self._fields = {reg: fields["tf_" + reg] for reg in SAVED if "tf_" + reg in fields}
        return self._fields if len(self._fields) == len(SAVED) else None

    def __call__(self, pending_frame):
        # The innermost frame may be inside a stub before its frame is built.
        if pending_frame.level() == 0 or pending_frame.architecture().name() != "i386:x86-64":
            return None
        pc = int(pending_frame.read_register("rip"))
        name = _SYMBOL.search(gdb.format_address(pc))
        offsets = self._offsets()
        if not (name and TRAP_STUB.fullmatch(name.group(1)) and offsets):
            return None
        sp = int(pending_frame.read_register("rsp"))
        memory = gdb.selected_inferior()
        word = gdb.lookup_type("unsigned long")
        unwind = pending_frame.create_unwind_info(_FrameId(pending_frame.read_register("rsp"),
                                                           pending_frame.read_register("rip")))
        for reg, offset in offsets.items():
            value = int.from_bytes(memory.read_memory(sp + offset, 8), "little")
            unwind.add_saved_register(reg, gdb.Value(value).cast(word))
        return unwind


register_unwinder(None, FreeBSDTrapFrame(), replace=True)
