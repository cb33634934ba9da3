/* Xen system time: nanoseconds since the host booted, as the vCPU sees it. */
#ifndef PROBE_TIME_H
#define PROBE_TIME_H

#include <stdint.h>

#define MICROSECONDS(us) ((uint64_t)(us) * 1000)
#define MILLISECONDS(ms) ((uint64_t)(ms) * 1000000)
#define SECONDS(s)       ((uint64_t)(s) * 1000000000)

/* Needs xen_shared_info mapped. */
uint64_t time_now_ns(void);

#endif
