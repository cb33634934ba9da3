/*
 * Xen's public headers use the <stdint.h> types without including
 * <stdint.h>; every file reaches them through this header.
 */
#ifndef PROBE_XEN_H
#define PROBE_XEN_H

#ifndef __ASSEMBLY__
#include <stddef.h>
#include <stdint.h>
#endif
#include <xen/xen.h>

#endif
