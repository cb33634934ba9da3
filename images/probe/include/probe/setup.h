/*
 * What Xen handed the probe at entry, and how it dies before its console
 * is up. common/setup.c needs no other part of the probe, so every part
 * may include this without a circle.
 */
#ifndef PROBE_SETUP_H
#define PROBE_SETUP_H

#include <stdbool.h>
#include <probe/xen.h>

extern const start_info_t *xen_start_info;
extern shared_info_t *xen_shared_info;

/*
 * Xen system time (ns) when probe_main started and when it printed the
 * result.
 */
extern uint64_t probe_started_ns, probe_result_ns;

static inline bool is_initial_domain(void)
{
    return xen_start_info->flags & SIF_INITDOMAIN;
}

/* How every fatal line starts: here on console_io, in report.c on the ring. */
#define FATAL_PREFIX "PROBE fatal: "

/*
 * "PROBE fatal: <why>" through console_io, which Xen shows only where it
 * allows it (dom0, a debug Xen), then domain_crash(): for failures before
 * the console ring is mapped. Later ones go through report_fatal().
 */
void __attribute__((noreturn)) boot_fatal(const char *why);

/* SCHEDOP_shutdown with SHUTDOWN_crash, for good. */
void __attribute__((noreturn)) domain_crash(void);

#endif
