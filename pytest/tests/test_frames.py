"""The hang diagnosis's stack frames: xenctx's trace named from the kernel's
own symbols."""
from xenboot.pipeline import boot

# The shape of a real xenctx trace of a FreeBSD 10.4 i386 XEN guest waiting
# in ddb (issue 13), cut to five words: xenctx names the zero word as the
# symbol 4 GiB below it.
XENCTX = """Stack Trace:
          * [<c0122622>] cngetc+0x22 <--
c06bbdf4:     c06bbe08
c06bbdf8:   [<c006194d>] db_readline+0x8d
c06bbdfc:   [<00000000>] hypercall_page+0x3ffa5000
c06bbe0c:   [<c006204f>] db_read_line+0xf
"""
SYMS = """c005b000 T hypercall_page
c00618c0 T db_readline
c0062040 T db_read_line
c0122600 T cngetc
c0130000 T cnputc
00000000c005a000 T _stext
00000000c03b07c8 T _etext
"""


def test_frames_are_named_from_the_address_not_from_xenctx(tmp_path):
    syms = tmp_path / "kernel.syms"
    syms.write_text(SYMS)
    assert boot._frames(XENCTX, str(syms)) == ["cngetc+0x22", "db_readline+0x8d", "db_read_line+0xf"]
