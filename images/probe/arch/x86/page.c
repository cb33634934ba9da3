#include <probe/setup.h>

#include <arch/hypercall.h>
#include <arch/page.h>

#define PAGE_RW_FLAGS (PTE_PRESENT | PTE_WRITE | PTE_ACCESSED | PTE_DIRTY)

xen_pfn_t virt_to_mfn(const void *va)
{
    const xen_pfn_t *p2m = (const xen_pfn_t *)xen_start_info->mfn_list;

    /* Both domain builders lay out the initial mapping as PFN 0 onwards. */
    return p2m[((unsigned long)va - (unsigned long)probe_virt_base) >>
               PAGE_SHIFT];
}

/* The initial mapping's address of a machine frame in it (through the M2P). */
static const void *mfn_to_virt(xen_pfn_t mfn)
{
    const unsigned long *m2p = (const unsigned long *)MACH2PHYS_VIRT_START;

    return probe_virt_base + ((unsigned long)m2p[mfn] << PAGE_SHIFT);
}

static long map_page(const void *va, xen_pfn_t mfn, uint64_t flags)
{
    return hypervisor_update_va_mapping(
        (unsigned long)va, ((uint64_t)mfn << PAGE_SHIFT) | flags, UVMF_INVLPG);
}

long map_machine_frame(void *va, xen_pfn_t mfn)
{
    return map_page(va, mfn, PAGE_RW_FLAGS);
}

void *frame_map(void *spare, xen_pfn_t frame)
{
    return map_machine_frame(spare, frame) ? NULL : spare;
}

long map_user_page(const void *va)
{
    return map_page(va, virt_to_mfn(va), PAGE_RW_FLAGS | PTE_USER);
}

const uint64_t *page_table(const void *va, unsigned int shift)
{
    static const unsigned int shifts[] = { L4_SHIFT, L3_SHIFT, L2_SHIFT,
                                           PAGE_SHIFT };
    const uint64_t *table = (const uint64_t *)xen_start_info->pt_base;
    unsigned int level;

    for ( level = 4 - PT_LEVELS; shifts[level] != shift; level++ )
    {
        uint64_t entry =
            table[((unsigned long)va >> shifts[level]) & (PT_ENTRIES - 1)];

        if ( !(entry & PTE_PRESENT) )
            return NULL;
        table = mfn_to_virt((entry & PTE_MFN_MASK) >> PAGE_SHIFT);
    }
    return table;
}

uint64_t l1_entry_maddr(const void *va)
{
    const uint64_t *l1 = page_table(va, PAGE_SHIFT);

    if ( !l1 )
        return 0;
    return ((uint64_t)virt_to_mfn(l1) << PAGE_SHIFT) +
           (((unsigned long)va >> PAGE_SHIFT) & (PT_ENTRIES - 1)) *
               sizeof(uint64_t);
}
