/*
 * Xen ELF notes, read by the domain builder (Xen's libelf). Apart from
 * GUEST_OS and GUEST_VERSION they are the ones FreeBSD's amd64_xen_pv
 * kernel declares (sys/amd64/xen/locore.S), with the same values, so the
 * probe is loaded the way that kernel is. The pv32pae build says PAE_MODE
 * "yes" like FreeBSD's i386 XEN kernel (options PAE): Xen then loads it as
 * xen-3.0-x86_32p, the only 32-bit PV type Xen 4.x runs. Addresses are
 * notes of the guest's word size. The pvh32 build has its own few.
 */
#include <probe/xen.h>
#include <probe/version.h>
#include <xen/elfnote.h>
#include <arch/page.h>

#define XEN_NOTE(type, desc)                                                \
        .balign 4;                                                          \
        .long   2f - 1f;                                                    \
        .long   4f - 3f;                                                    \
        .long   type;                                                       \
1:      .asciz  "Xen";                                                      \
2:      .balign 4;                                                          \
3:      desc;                                                               \
4:      .balign 4

#ifdef __x86_64__
#define ADDR .quad
#define PAE_MODE "no"
#else
#define ADDR .long
#define PAE_MODE "yes"
#endif

        .section .note.Xen, "a", @note
        XEN_NOTE(XEN_ELFNOTE_GUEST_OS,       .asciz "freebsd-xen-ci-probe")
        XEN_NOTE(XEN_ELFNOTE_GUEST_VERSION,  .asciz PROBE_VERSION)
        XEN_NOTE(XEN_ELFNOTE_XEN_VERSION,    .asciz "xen-3.0")
        XEN_NOTE(XEN_ELFNOTE_LOADER,         .asciz "generic")
#ifdef GUEST_PVH
/*
 * PVH: the physical entry point is what makes Xen start it as PVH (as
 * XTF's hvm tests and FreeBSD's GENERIC); without the PV notes' addresses
 * it loads the image at its physical addresses, and no FEATURES note means
 * none of PV's writable_page_tables (the harness's PVH test).
 */
        XEN_NOTE(XEN_ELFNOTE_PHYS32_ENTRY,   .long _start)
#else
        XEN_NOTE(XEN_ELFNOTE_VIRT_BASE,      ADDR probe_virt_base)
        XEN_NOTE(XEN_ELFNOTE_PADDR_OFFSET,   ADDR probe_virt_base)
        XEN_NOTE(XEN_ELFNOTE_ENTRY,          ADDR _start)
        XEN_NOTE(XEN_ELFNOTE_HYPERCALL_PAGE, ADDR hypercall_page)
        XEN_NOTE(XEN_ELFNOTE_HV_START_LOW,   ADDR HYPERVISOR_VIRT_START)
        XEN_NOTE(XEN_ELFNOTE_FEATURES,
                 .asciz "writable_page_tables|writable_descriptor_tables")
        XEN_NOTE(XEN_ELFNOTE_PAE_MODE,       .asciz PAE_MODE)
        XEN_NOTE(XEN_ELFNOTE_L1_MFN_VALID,   .quad PTE_PRESENT; .quad PTE_PRESENT)
        XEN_NOTE(XEN_ELFNOTE_SUSPEND_CANCEL, .long 0)
        XEN_NOTE(XEN_ELFNOTE_BSD_SYMTAB,     .asciz "yes")
#endif
