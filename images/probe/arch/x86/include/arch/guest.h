/*
 * Which PV guest type this build is: what Xen's capabilities and
 * start_info name.
 */
#ifndef ARCH_GUEST_H
#define ARCH_GUEST_H

#ifdef __x86_64__
#define GUEST_TYPE      "xen-3.0-x86_64"
#define GUEST_TYPE_NAME "64-bit PV"
#else
#define GUEST_TYPE      "xen-3.0-x86_32p"
#define GUEST_TYPE_NAME "32-bit PAE PV"
#endif

#endif
