/*
 * crash-at-entry: a kernel whose very first instruction faults. With no
 * trap table registered Xen has nowhere to bounce the page fault, so it
 * crashes the domain at once: the harness's "guest crashes immediately".
 */
#include <arch/page.h>

        .section .text.entry, "ax", @progbits
        .globl  _start
        .type   _start, @function
_start:
        movabs  PROBE_UNMAPPED_VA, %al
        ud2
        .size   _start, . - _start
