/* Reading Xen system time (arch/x86/time.c); the units are in probe/time.h. */
#ifndef ARCH_TIME_H
#define ARCH_TIME_H

#include <stdint.h>

/* Needs xen_shared_info mapped. */
uint64_t time_now_ns(void);

#endif
