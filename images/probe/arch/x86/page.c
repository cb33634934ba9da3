#include <probe/boot.h>

#include <arch/hypercall.h>
#include <arch/page.h>

xen_pfn_t virt_to_mfn(const void *va)
{
    const xen_pfn_t *p2m = (const xen_pfn_t *)xen_start_info->mfn_list;

    /* Both domain builders lay out the initial mapping as PFN 0 onwards. */
    return p2m[((unsigned long)va - (unsigned long)probe_virt_base) >> PAGE_SHIFT];
}

long map_machine_frame(void *va, xen_pfn_t mfn)
{
    uint64_t pte = ((uint64_t)mfn << PAGE_SHIFT) | PTE_PRESENT | PTE_WRITE |
                   PTE_ACCESSED | PTE_DIRTY;

    return hypervisor_update_va_mapping((unsigned long)va, pte, UVMF_INVLPG);
}
