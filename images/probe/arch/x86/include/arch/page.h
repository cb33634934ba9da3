/* x86-64 paging as a PV guest sees it: 4-level tables, 4 KiB pages. */
#ifndef ARCH_PAGE_H
#define ARCH_PAGE_H

#define PAGE_SHIFT 12
#define PAGE_SIZE  (1 << PAGE_SHIFT)

/* Page-table entry bits (Intel SDM vol. 3, 4.5). */
#define PTE_PRESENT  0x001
#define PTE_WRITE    0x002
#define PTE_ACCESSED 0x020
#define PTE_DIRTY    0x040
#define PTE_MFN_MASK 0x000ffffffffff000

#define PT_ENTRIES    512
#define L4_SHIFT      39
#define L3_SHIFT      30
#define L2_SHIFT      21
#define VA_BITS       48

/*
 * The probe links in the top 2 GiB (like FreeBSD's KERNBASE), so Xen maps
 * nothing in the lower half: reading here is a sure page fault. The address
 * is distinctive so Xen's "Pagetable walk from ..." line names it.
 */
#define PROBE_UNMAPPED_VA 0xdeadb000

#ifndef __ASSEMBLY__

#include <probe/xen.h>

/* Start of the initial mapping, defined in link.lds. */
extern char probe_virt_base[];

/* Machine frame behind an address of the initial mapping (via the P2M list). */
xen_pfn_t virt_to_mfn(const void *va);

/* Replace the page at va (page aligned, ours) by the machine frame mfn. */
long map_machine_frame(void *va, xen_pfn_t mfn);

#endif /* !__ASSEMBLY__ */
#endif
