/*
 * What a boot check is: it adds its findings to the detail and says ok,
 * fail or skip (common/report.c prints the line). Each check registers
 * itself with PROBE_CHECK in the file that runs it, and each check-*.c
 * file names the guest types its checks run on in a "Guest types:" line:
 * the Makefile builds a file only for those, so a guest type's image holds
 * exactly its checks (common/checks.c runs them in their order).
 */
#ifndef PROBE_CHECK_H
#define PROBE_CHECK_H

#include <probe/detail.h>

enum check_status { CHECK_OK, CHECK_FAIL, CHECK_SKIP };

typedef enum check_status (*check_fn)(struct detail *d);

struct check {
    const char *name;
    check_fn run;
};

/*
 * A check in the boot's table: the linker sorts the table by order, a
 * three-digit number (link.lds.S), which is the order the lines come in.
 */
#define PROBE_CHECK(order, name, fn)                           \
    static const struct check check_entry_##fn __attribute__(( \
        used, section(".rodata.probe_checks." #order))) = { name, fn }

/* The table, from link.lds.S. */
extern const struct check probe_checks[], probe_checks_end[];

#endif
