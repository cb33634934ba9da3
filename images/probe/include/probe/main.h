/* The probe's C entry point (common/main.c). */
#ifndef PROBE_MAIN_H
#define PROBE_MAIN_H

#include <probe/xen.h>

/*
 * Entered from _start with the start_info Xen passed in rsi (esi on pv32),
 * or on PVH the one arch/x86/pvh.c made from hvm_start_info. The checks
 * also take its address as a known place in the image.
 */
void __attribute__((noreturn)) probe_main(const start_info_t *si);

#endif
