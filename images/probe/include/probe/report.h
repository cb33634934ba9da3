/*
 * The lines the harness judges (configs/milestones/probe.toml), printed
 * here only:
 *   PROBE begin freebsd-xen-ci probe <version>
 *   PROBE check <name> ok|fail|skip <detail>
 *   PROBE result SUCCESS|FAILURE <failed checks>  FAILURE iff some check failed
 *   PROBE fatal: <why>
 */
#ifndef PROBE_REPORT_H
#define PROBE_REPORT_H

#include <probe/check.h>

void report_begin(void);
/* The check's line; a fail is remembered for the result. */
void report_check(const char *name, enum check_status status,
                  const struct detail *d);
void report_result(void);

/* The fatal line on the console, flushed, then domain_crash(). */
void __attribute__((noreturn)) report_fatal(const char *why);

#endif
