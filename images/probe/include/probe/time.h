/*
 * Xen system time: nanoseconds since the host booted, as the vCPU sees it
 * (read with arch/time.h).
 */
#ifndef PROBE_TIME_H
#define PROBE_TIME_H

#include <stdint.h>

#define MICROSECONDS(us) ((uint64_t)(us)*1000)
#define MILLISECONDS(ms) ((uint64_t)(ms)*1000000)
#define SECONDS(s)       ((uint64_t)(s)*1000000000)

/*
 * A duration for %lu: long enough on pv32 too for anything the probe
 * measures.
 */
#define AS_US(ns) ((unsigned long)((ns) / MICROSECONDS(1)))
#define AS_MS(ns) ((unsigned long)((ns) / MILLISECONDS(1)))

#endif
