/* What Xen handed the probe at entry, available to every part of it. */
#ifndef PROBE_BOOT_H
#define PROBE_BOOT_H

#include <stdbool.h>
#include <probe/xen.h>

extern const start_info_t *xen_start_info;
extern shared_info_t *xen_shared_info;

/* Xen system time (ns) when probe_main started and when it printed the result. */
extern uint64_t probe_started_ns, probe_result_ns;

static inline bool is_initial_domain(void)
{
    return xen_start_info->flags & SIF_INITDOMAIN;
}

/* Entered from _start with the start_info Xen passed in rsi. */
void __attribute__((noreturn)) probe_main(const start_info_t *si);

/* "PROBE fatal: <why>" on the console (or console_io before it is up), then SHUTDOWN_crash. */
void __attribute__((noreturn)) boot_fatal(const char *why);

#endif
