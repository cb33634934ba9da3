/*
 * What the domain builder handed over in start_info.
 *
 * Guest types: pv64 pv32pae
 */
#include <probe/check.h>
#include <probe/cmdline.h>
#include <probe/setup.h>
#include <probe/string.h>

#include <arch/guest.h>
#include <arch/page.h>

static enum check_status check_start_info(struct detail *d)
{
    const start_info_t *si = xen_start_info;
    enum check_status status = CHECK_OK;

    detail_add(d, "magic \"");
    detail_add_escaped(d, si->magic, sizeof(si->magic));
    detail_add(d,
               "\" nr_pages %lu (%lu MiB) flags 0x%x%s%s shared_info 0x%lx"
               " pt_base 0x%lx nr_pt_frames %lu mfn_list 0x%lx"
               " store mfn 0x%lx evtchn %u cmdline \"",
               si->nr_pages, si->nr_pages >> (20 - PAGE_SHIFT), si->flags,
               si->flags & SIF_PRIVILEGED ? " privileged" : "",
               si->flags & SIF_INITDOMAIN ? " initdomain" : "", si->shared_info,
               si->pt_base, si->nr_pt_frames, si->mfn_list,
               (unsigned long)si->store_mfn, si->store_evtchn);
    detail_add_escaped(d, cmdline(), MAX_GUEST_CMDLINE);
    detail_add(d, "\"");

    if ( strncmp(si->magic, GUEST_TYPE, sizeof(GUEST_TYPE) - 1) )
    {
        detail_add(d, ": magic is not " GUEST_TYPE);
        status = CHECK_FAIL;
    }
    if ( !si->nr_pages || !si->pt_base || !si->mfn_list )
    {
        detail_add(d, ": nr_pages, pt_base and mfn_list must be set");
        status = CHECK_FAIL;
    }
    return status;
}
PROBE_CHECK(030, "start-info", check_start_info);
