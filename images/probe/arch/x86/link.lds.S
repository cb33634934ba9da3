/*
 * One image at FreeBSD's KERNBASE: the VIRT_BASE and PADDR_OFFSET notes both
 * name probe_virt_base, so Xen maps each segment at its link address.
 * Run through the C preprocessor once per guest type.
 */
#if defined(GUEST_PVH)
/* PVH: paging off, so the link address is physical: 1 MiB, as XTF's. */
OUTPUT_FORMAT("elf32-i386")
OUTPUT_ARCH(i386)
#define KERNBASE 0x100000
#elif defined(__x86_64__)
OUTPUT_FORMAT("elf64-x86-64")
OUTPUT_ARCH(i386:x86-64)
#define KERNBASE 0xffffffff80000000
#else
OUTPUT_FORMAT("elf32-i386")
OUTPUT_ARCH(i386)
#define KERNBASE 0xc0000000
#endif
ENTRY(_start)

/*
 * One loadable segment: Xen maps a PV kernel's whole initial region
 * read-write whatever the segment flags say, and crash-at-entry has no data
 * that would fill a second one (an empty segment at 0 breaks the loader's
 * bounds check).
 */
PHDRS
{
    image PT_LOAD FLAGS(7);
    note PT_NOTE;
}

SECTIONS
{
    /* Absolute, so nm never offers it instead of _start for a RIP. */
    probe_virt_base = KERNBASE;
    . = probe_virt_base;

    .text : {
        *(.text.entry)
        *(.text.hypercall_page)
        /* Mapped for user mode too (pv32 needs the PTE's user bit). */
        . = ALIGN(0x1000);
        probe_user_text = .;
        *(.text.user)
        . = ALIGN(0x1000);
        probe_user_text_end = .;
        *(.text .text.*)
    } :image
    .rodata : {
        /* The boot checks, sorted by their order (probe/check.h). */
        . = ALIGN(8);
        probe_checks = .;
        KEEP(*(SORT(.rodata.probe_checks.*)))
        probe_checks_end = .;
        *(.rodata .rodata.*)
    } :image
    .note.Xen : { *(.note.Xen) } :image :note

    .data : { *(.data .data.*) } :image
    /* _end is where the image ends for the loader (BSD_SYMTAB goes after). */
    .bss : {
        *(.bss .bss.*)
        *(COMMON)
        _end = .;
    } :image

    /DISCARD/ : { *(.eh_frame) *(.note.GNU-stack) *(.note.gnu.property) }
}
