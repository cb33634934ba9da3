/*
 * What a boot check is: it adds its findings to the detail and says ok,
 * fail or skip (common/report.c prints the line). The common checks are
 * declared here, the architecture's in arch/checks.h.
 */
#ifndef PROBE_CHECK_H
#define PROBE_CHECK_H

#include <probe/detail.h>

enum check_status { CHECK_OK, CHECK_FAIL, CHECK_SKIP };

typedef enum check_status (*check_fn)(struct detail *d);

/* common/check-xen.c: what Xen is. */
enum check_status check_xen_version(struct detail *d);
enum check_status check_features(struct detail *d);
/* common/check-start-info.c */
enum check_status check_start_info(struct detail *d);
/* common/check-console.c */
enum check_status check_console_ring(struct detail *d);
enum check_status check_console_io(struct detail *d);
/* common/check-symtab.c */
enum check_status check_bsd_symtab(struct detail *d);
/* common/check-events.c */
enum check_status check_evtchn_upcall(struct detail *d);
enum check_status check_timer(struct detail *d);

#endif
