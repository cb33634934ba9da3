/*
 * FreeBSD's pmaps read their page tables through a self-referencing
 * (linear, recursive) entry: amd64_xen_pv in an L4 slot, the i386 PAE pmap
 * in its page directories (L2). Xen lets a PV guest install one only
 * read-only, and only with pv-linear-pt enabled (the default). Install one
 * in the table that maps the probe with MMU_UPDATE, read the tables back
 * through it, remove it.
 *
 * Guest types: pv64 pv32pae
 */
#include <probe/check.h>
#include <probe/errno.h>
#include <probe/main.h>

#include <arch/hypercall.h>
#include <arch/page.h>

#ifdef __x86_64__
/*
 * FreeBSD's native slot (256) is Xen's own area in a PV guest; 510 is a
 * guest-kernel slot the probe (which lives in 511) leaves empty.
 */
#define LINEAR_SHIFT L4_SHIFT
#define LINEAR_SLOT  510UL
#define LEVEL_NAME   "L4"
#else
/* The last 2 MiB below Xen's area (HV_START_LOW), in the probe's L2. */
#define LINEAR_SHIFT L2_SHIFT
#define LINEAR_SLOT \
    (((HYPERVISOR_VIRT_START >> L2_SHIFT) & (PT_ENTRIES - 1)) - 1)
#define LEVEL_NAME "L2"
#endif
/*
 * Offsets within what one table at that level maps: 2^48 bytes (pv64) or
 * 1 GiB (pv32).
 */
#define SPAN_MASK ((1UL << (LINEAR_SHIFT + 9)) - 1)

static unsigned long canonical(unsigned long va)
{
#ifdef __x86_64__
    return (unsigned long)((long)(va << (64 - VA_BITS)) >> (64 - VA_BITS));
#else
    return va;
#endif
}

static unsigned long index_of(unsigned long va)
{
    return (va >> LINEAR_SHIFT) & (PT_ENTRIES - 1);
}

static long set_entry(xen_pfn_t table_mfn, unsigned long slot, uint64_t val)
{
    mmu_update_t req = {
        .ptr = (((uint64_t)table_mfn << PAGE_SHIFT) + slot * sizeof(uint64_t)) |
               MMU_NORMAL_PT_UPDATE,
        .val = val,
    };
    unsigned int done = 0;

    return hypervisor_mmu_update(&req, 1, &done, DOMID_SELF);
}

static enum check_status check_linear_pt(struct detail *d)
{
    unsigned long text = (unsigned long)probe_main;
    const uint64_t *table = page_table((const void *)text, LINEAR_SHIFT);
    xen_pfn_t mfn = virt_to_mfn(table),
              text_mfn = virt_to_mfn((const void *)text);
    /*
     * The slot makes the table serve as every level below it: all PTEs
     * appear here...
     */
    unsigned long base = (text & ~SPAN_MASK) | LINEAR_SLOT << LINEAR_SHIFT;
    const volatile uint64_t *ptes = (const volatile uint64_t *)canonical(base);
    /* ...and the table itself where the slot is taken at every level below. */
    unsigned long self_view = base;
    const volatile uint64_t *view;
    uint64_t self, kernel, pte;
    unsigned int shift;
    long rc;

    for ( shift = LINEAR_SHIFT - 9; shift >= PAGE_SHIFT; shift -= 9 )
        self_view |= LINEAR_SLOT << shift;
    view = (const volatile uint64_t *)canonical(self_view);

    if ( table[LINEAR_SLOT] )
    {
        detail_add(d, LEVEL_NAME "[%lu] is already in use (0x%llx)",
                   (unsigned long)LINEAR_SLOT,
                   (unsigned long long)table[LINEAR_SLOT]);
        return CHECK_FAIL;
    }
    rc = set_entry(mfn, LINEAR_SLOT,
                   ((uint64_t)mfn << PAGE_SHIFT) | PTE_PRESENT | PTE_ACCESSED);
    if ( rc )
    {
        detail_add(d,
                   "MMU_UPDATE " LEVEL_NAME "[%lu] -> " LEVEL_NAME
                   " (mfn 0x%lx) read-only"
                   " refused (" RC_FMT "): pv-linear-pt is off in Xen",
                   (unsigned long)LINEAR_SLOT, (unsigned long)mfn, RC_ARGS(rc));
        return CHECK_FAIL;
    }

    self = view[LINEAR_SLOT];
    kernel = view[index_of(text)];
    pte = ptes[(text & SPAN_MASK) >> PAGE_SHIFT];
    rc = set_entry(mfn, LINEAR_SLOT, 0);

    detail_add(d, LEVEL_NAME "[%lu] -> " LEVEL_NAME " mfn 0x%lx read-only: ",
               (unsigned long)LINEAR_SLOT, (unsigned long)mfn);
    if ( (self & PTE_MFN_MASK) >> PAGE_SHIFT != mfn )
    {
        detail_add(d, "reads back 0x%llx for itself", (unsigned long long)self);
        return CHECK_FAIL;
    }
    if ( kernel != table[index_of(text)] )
    {
        detail_add(d, LEVEL_NAME "[%lu] reads 0x%llx, the table holds 0x%llx",
                   index_of(text), (unsigned long long)kernel,
                   (unsigned long long)table[index_of(text)]);
        return CHECK_FAIL;
    }
    if ( (pte & PTE_MFN_MASK) >> PAGE_SHIFT != text_mfn )
    {
        detail_add(d, "PTE of probe_main reads 0x%llx, P2M says mfn 0x%lx",
                   (unsigned long long)pte, (unsigned long)text_mfn);
        return CHECK_FAIL;
    }
    detail_add(d,
               "self entry, " LEVEL_NAME
               "[%lu] and the PTE of probe_main (mfn 0x%lx) read back",
               index_of(text), (unsigned long)text_mfn);
    if ( rc )
    {
        detail_add(d, "; removing it refused (" RC_FMT ")", RC_ARGS(rc));
        return CHECK_FAIL;
    }
    return CHECK_OK;
}
PROBE_CHECK(070, "linear-pt", check_linear_pt);
