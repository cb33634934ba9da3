/*
 * What Xen's PVH builder handed over in %ebx: struct hvm_start_info (PV's
 * start_info is the start-info check's), and the HVM parameters that name
 * the console ring and its channel.
 *
 * Guest types: pvh32
 */
#include <probe/check.h>
#include <probe/cmdline.h>
#include <probe/setup.h>

#include <arch/pvh.h>

/* The E820 type of usable memory. */
#define MEMMAP_RAM 1

static enum check_status check_hvm_start_info(struct detail *d)
{
    const struct hvm_start_info *hsi = pvh_start_info;
    const struct hvm_memmap_table_entry *map =
        (const void *)(unsigned long)hsi->memmap_paddr;
    uint64_t ram = 0;
    unsigned int i;

    detail_add(d,
               "magic %#x version %u flags %#x nr_modules %u rsdp %#llx"
               " memmap %u entries",
               hsi->magic, hsi->version, hsi->flags, hsi->nr_modules,
               (unsigned long long)hsi->rsdp_paddr,
               hsi->version >= 1 ? hsi->memmap_entries : 0);
    for ( i = 0; hsi->version >= 1 && map && i < hsi->memmap_entries; i++ )
        if ( map[i].type == MEMMAP_RAM )
            ram += map[i].size;
    detail_add(d, " (%lu MiB RAM) nr_pages %lu console pfn %#lx evtchn %u",
               (unsigned long)(ram >> 20), xen_start_info->nr_pages,
               (unsigned long)xen_start_info->console.domU.mfn,
               xen_start_info->console.domU.evtchn);
    detail_add(d, " cmdline \"");
    detail_add_escaped(d, cmdline(), MAX_GUEST_CMDLINE);
    detail_add(d, "\"");
    if ( hsi->magic != XEN_HVM_START_MAGIC_VALUE )
    {
        detail_add(d, ": magic is not %#x", XEN_HVM_START_MAGIC_VALUE);
        return CHECK_FAIL;
    }
    if ( !xen_start_info->console.domU.mfn )
    {
        detail_add(d, ": no console ring in the HVM parameters");
        return CHECK_FAIL;
    }
    return CHECK_OK;
}
PROBE_CHECK(035, "hvm-start-info", check_hvm_start_info);
