/*
 * The two ways a PV kernel prints: the console ring and console_io.
 *
 * Guest types: pv64 pv32pae pvh32
 */
#include <probe/check.h>
#include <probe/errno.h>
#include <probe/setup.h>

#include <arch/hypercall.h>

static enum check_status check_console_ring(struct detail *d)
{
    if ( is_initial_domain() )
    {
        detail_add(d,
                   "dom0 has no console ring; output goes through console_io");
        return CHECK_SKIP;
    }
    detail_add(d, "mfn 0x%lx evtchn %u: this output came through it",
               (unsigned long)xen_start_info->console.domU.mfn,
               xen_start_info->console.domU.evtchn);
    return CHECK_OK;
}
PROBE_CHECK(040, "console-ring", check_console_ring);

static enum check_status check_console_io(struct detail *d)
{
    /* A zero-length write: XSM decides before anything is printed. */
    long rc = hypervisor_console_io(CONSOLEIO_write, 0, "");

    if ( rc )
        detail_add(d,
                   "denied (" RC_FMT "): earliest printk output of a FreeBSD"
                   " kernel will not appear",
                   RC_ARGS(rc));
    else if ( is_initial_domain() )
        detail_add(d, "permitted (0): dom0, the probe's own output uses it");
    else
        detail_add(d,
                   "permitted (0): earliest printk output of a FreeBSD kernel"
                   " will appear on Xen's console");
    return CHECK_OK;
}
PROBE_CHECK(050, "console-io", check_console_io);
