#include <probe/console.h>
#include <probe/errno.h>

#include <arch/commands.h>
#include <arch/hypercall.h>
#include <arch/page.h>

/*
 * Cache-disable: Xen lets a PV domain choose cache attributes only when it
 * has I/O memory or devices (mm.c, l1_disallow_mask), which a probe domU
 * has not.
 */
#define PTE_PCD 0x010

/*
 * Make Xen refuse a page-table update: MMU_UPDATE of the L1 entry mapping
 * a page of our own, with a flag Xen disallows. A debug Xen says why in its
 * log ("Bad L1 flags", naming d<N>v<M>); a release Xen only returns -EINVAL.
 */
void cmd_badpte(const char *arg)
{
    static uint8_t page[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
    uint64_t maddr = l1_entry_maddr(page);
    mmu_update_t req = {
        .ptr = maddr | MMU_NORMAL_PT_UPDATE,
        .val = ((uint64_t)virt_to_mfn(page) << PAGE_SHIFT) | PTE_PRESENT |
               PTE_WRITE | PTE_ACCESSED | PTE_DIRTY | PTE_PCD,
    };
    unsigned int done = 0;
    long rc;

    (void)arg;
    if ( !maddr )
    {
        console_printf("badpte: no L1 entry maps %p\n", (void *)page);
        return;
    }
    rc = hypervisor_mmu_update(&req, 1, &done, DOMID_SELF);
    console_printf(
        "badpte: MMU_UPDATE of the L1 entry at machine address %#llx (for %p)"
        " to %#llx: ",
        (unsigned long long)maddr, (void *)page, (unsigned long long)req.val);
    if ( rc )
        console_printf("refused (" RC_FMT ")\n", RC_ARGS(rc));
    else
    {
        console_printf("accepted: this Xen lets the domain set PCD\n");
        map_machine_frame(page, virt_to_mfn(page));
    }
}
