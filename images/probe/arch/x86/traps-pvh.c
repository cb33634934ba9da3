#include <probe/detail.h>
#include <probe/events.h>
#include <probe/report.h>

#include <arch/traps.h>

/*
 * The PVH probe takes its traps through its own IDT (arch/x86/pvh.c):
 * the upcall's vector, and anything else is unexpected.
 */
void probe_trap(struct trap_frame *f)
{
    static struct detail why;

    if ( f->vector == TRAP_UPCALL )
    {
        probe_upcall();
        return;
    }
    detail_clear(&why);
    detail_add(&why,
               "unexpected trap: vector %lu error code %#lx at %#lx (cs %#lx,"
               " flags %#lx)",
               f->vector, f->error_code, f->ip, f->cs, f->flags);
    report_fatal(why.text);
}
