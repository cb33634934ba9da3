/*
 * Which guest type this build is: what Xen's capabilities and start_info
 * name. GUEST_PVH (from the Makefile) is the PVH build: an HVM container
 * entered in 32-bit protected mode with paging off.
 */
#ifndef ARCH_GUEST_H
#define ARCH_GUEST_H

#if defined(GUEST_PVH)
#define GUEST_TYPE      "hvm-3.0-x86_32"
#define GUEST_TYPE_NAME "32-bit PVH"
/* Xen translates a PVH guest's frames: it never sees machine frames. */
#define GUEST_DIRECT_PAGING 0
#elif defined(__x86_64__)
#define GUEST_TYPE          "xen-3.0-x86_64"
#define GUEST_TYPE_NAME     "64-bit PV"
#define GUEST_DIRECT_PAGING 1
#else
#define GUEST_TYPE          "xen-3.0-x86_32p"
#define GUEST_TYPE_NAME     "32-bit PAE PV"
#define GUEST_DIRECT_PAGING 1
#endif

#endif
