/*
 * The boot checks. Each prints one line:
 *   PROBE check <name> ok|fail|skip <detail>
 * and the run is a FAILURE iff some check says fail.
 */
#ifndef PROBE_CHECKS_H
#define PROBE_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

#include <probe/format.h>

enum check_status { CHECK_OK, CHECK_FAIL, CHECK_SKIP };

struct detail {
    char text[2048];
    size_t len;
};

/* Append to a check's detail text. */
void detail_add(struct detail *d, const char *fmt, ...) PRINTF(2, 3);
/* Append s with anything unprintable shown as \xNN, so a line stays a line. */
void detail_add_escaped(struct detail *d, const char *s, size_t max);

typedef enum check_status (*check_fn)(struct detail *d);

/* Runs every check in order; true when none failed. The names of the failed
 * ones are added to failed, each after a space. */
bool checks_run(struct detail *failed);

/* The checks that live outside common/checks.c. */
enum check_status check_linear_pt(struct detail *d);
enum check_status check_evtchn_upcall(struct detail *d);
enum check_status check_timer(struct detail *d);
enum check_status check_bsd_symtab(struct detail *d);
enum check_status check_trap_syscall(struct detail *d);
enum check_status check_trap_user_int(struct detail *d);
enum check_status check_trap_int3(struct detail *d);
enum check_status check_trap_single_step(struct detail *d);
enum check_status check_trap_watchpoint(struct detail *d);

#endif
