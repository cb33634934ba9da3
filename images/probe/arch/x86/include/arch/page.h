/*
 * Paging as a PV guest sees it, 4 KiB pages: pv64 has 4-level tables, pv32pae
 * 3-level PAE tables (64-bit entries, a 4-entry L3). Both read Xen's M2P
 * table, mapped read-only into every PV guest.
 */
#ifndef ARCH_PAGE_H
#define ARCH_PAGE_H

#define PAGE_SHIFT 12
#define PAGE_SIZE  (1 << PAGE_SHIFT)

/* Page-table entry bits (Intel SDM vol. 3, 4.5). */
#define PTE_PRESENT  0x001
#define PTE_WRITE    0x002
#define PTE_USER     0x004
#define PTE_ACCESSED 0x020
#define PTE_DIRTY    0x040
#define PTE_MFN_MASK 0x000ffffffffff000

#define PT_ENTRIES 512
#define L4_SHIFT   39
#define L3_SHIFT   30
#define L2_SHIFT   21
#ifdef __x86_64__
#define PT_LEVELS 4
#define VA_BITS   48
#else
#define PT_LEVELS 3
#define VA_BITS   32
#endif

/*
 * The probe links at FreeBSD's KERNBASE (the top 2 GiB on pv64, 3 GiB on
 * pv32), and Xen maps only the few MiB of the initial region from there:
 * reading here is a sure page fault. The address is distinctive so Xen's
 * "Pagetable walk from ..." line names it.
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

/*
 * Where the probe reads a frame Xen named (a PV guest's machine frame, a
 * PVH guest's own frame): PV maps it over spare (page aligned, ours); PVH,
 * running with paging off, finds it at its physical address. NULL if it
 * cannot be mapped.
 */
void *frame_map(void *spare, xen_pfn_t frame);

/* Let user mode read, write and run the page at va (ours, initial mapping). */
long map_user_page(const void *va);

/*
 * The page table on the way to va (in the initial mapping) whose entries
 * map 1 << shift bytes each (L4_SHIFT ... PAGE_SHIFT), found by walking
 * from start_info's pt_base; NULL if a level above is not present.
 */
const uint64_t *page_table(const void *va, unsigned int shift);

/* Machine address of the L1 entry that maps va; 0 if there is none. */
uint64_t l1_entry_maddr(const void *va);

#endif /* !__ASSEMBLY__ */
#endif
