/*
 * The amd64_xen_pv pmap reads its page tables through a self-referencing
 * (linear, recursive) L4 slot. Xen lets a PV guest install one only
 * read-only, and only with pv-linear-pt enabled (the default). Install one
 * with MMU_UPDATE, read the tables back through it, remove it.
 */
#include <probe/boot.h>
#include <probe/checks.h>
#include <probe/errno.h>

#include <arch/hypercall.h>
#include <arch/page.h>

#ifdef __x86_64__

/*
 * FreeBSD's native slot (256) is Xen's own area in a PV guest; 510 is a
 * guest-kernel slot the probe (which lives in 511) leaves empty.
 */
#define LINEAR_SLOT 510UL

static unsigned long canonical(unsigned long va)
{
    return (unsigned long)((long)(va << (64 - VA_BITS)) >> (64 - VA_BITS));
}

static unsigned long l4_index(unsigned long va)
{
    return (va >> L4_SHIFT) & (PT_ENTRIES - 1);
}

static long set_l4_entry(xen_pfn_t l4_mfn, unsigned long slot, uint64_t val)
{
    mmu_update_t req = {
        .ptr = (((uint64_t)l4_mfn << PAGE_SHIFT) + slot * sizeof(uint64_t)) |
               MMU_NORMAL_PT_UPDATE,
        .val = val,
    };
    unsigned int done = 0;

    return hypervisor_mmu_update(&req, 1, &done, DOMID_SELF);
}

enum check_status check_linear_pt(struct detail *d)
{
    const uint64_t *l4 = (const uint64_t *)xen_start_info->pt_base;
    xen_pfn_t l4_mfn = virt_to_mfn(l4);
    unsigned long text = (unsigned long)probe_main;
    /* The slot makes the L4 serve as every level: all PTEs appear here... */
    const volatile uint64_t *ptes =
        (const volatile uint64_t *)canonical(LINEAR_SLOT << L4_SHIFT);
    /* ...and the L4 itself where the slot is taken at all four levels. */
    const volatile uint64_t *l4_view = (const volatile uint64_t *)canonical(
        LINEAR_SLOT << L4_SHIFT | LINEAR_SLOT << L3_SHIFT |
        LINEAR_SLOT << L2_SHIFT | LINEAR_SLOT << PAGE_SHIFT);
    uint64_t self, kernel, pte;
    long rc;

    if ( l4[LINEAR_SLOT] )
    {
        detail_add(d, "L4[%lu] is already in use (0x%lx)", LINEAR_SLOT, l4[LINEAR_SLOT]);
        return CHECK_FAIL;
    }
    rc = set_l4_entry(l4_mfn, LINEAR_SLOT,
                      ((uint64_t)l4_mfn << PAGE_SHIFT) | PTE_PRESENT | PTE_ACCESSED);
    if ( rc )
    {
        detail_add(d, "MMU_UPDATE L4[%lu] -> L4 (mfn 0x%lx) read-only refused (" RC_FMT
                   "): pv-linear-pt is off in Xen", LINEAR_SLOT, (unsigned long)l4_mfn,
                   RC_ARGS(rc));
        return CHECK_FAIL;
    }

    self = l4_view[LINEAR_SLOT];
    kernel = l4_view[l4_index(text)];
    pte = ptes[(text & ((1UL << VA_BITS) - 1)) >> PAGE_SHIFT];
    rc = set_l4_entry(l4_mfn, LINEAR_SLOT, 0);

    detail_add(d, "L4[%lu] -> L4 mfn 0x%lx read-only: ", LINEAR_SLOT,
               (unsigned long)l4_mfn);
    if ( (self & PTE_MFN_MASK) >> PAGE_SHIFT != l4_mfn )
    {
        detail_add(d, "reads back 0x%lx for itself", self);
        return CHECK_FAIL;
    }
    if ( kernel != l4[l4_index(text)] )
    {
        detail_add(d, "L4[%lu] reads 0x%lx, the L4 page holds 0x%lx",
                   l4_index(text), kernel, l4[l4_index(text)]);
        return CHECK_FAIL;
    }
    if ( (pte & PTE_MFN_MASK) >> PAGE_SHIFT != virt_to_mfn((const void *)text) )
    {
        detail_add(d, "PTE of probe_main reads 0x%lx, P2M says mfn 0x%lx", pte,
                   (unsigned long)virt_to_mfn((const void *)text));
        return CHECK_FAIL;
    }
    detail_add(d, "self entry, L4[%lu] and the PTE of probe_main (mfn 0x%lx) read back",
               l4_index(text), (unsigned long)virt_to_mfn((const void *)text));
    if ( rc )
    {
        detail_add(d, "; removing it refused (" RC_FMT ")", RC_ARGS(rc));
        return CHECK_FAIL;
    }
    return CHECK_OK;
}

#else

/*
 * FreeBSD's i386 PAE pmap maps its page directories into themselves in L2
 * slots instead; the probe does not check that yet.
 */
enum check_status check_linear_pt(struct detail *d)
{
    detail_add(d, "pv64's L4 self-map only; the i386 PAE pmap's recursive page"
               " directory is not checked");
    return CHECK_SKIP;
}

#endif
