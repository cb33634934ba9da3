/*
 * The PVH boot (arch/x86/pvh.c): what a PV guest finds ready at entry
 * (hypercall page, shared info, start_info, a trap table) the PVH probe
 * sets up itself before probe_main.
 */
#ifndef ARCH_PVH_H
#define ARCH_PVH_H

/* The selectors of entry_pvh32.S's flat GDT. */
#define PVH_KERNEL_CS 0x08
#define PVH_KERNEL_DS 0x10

#ifndef __ASSEMBLY__

#include <probe/xen.h>
#include <xen/arch-x86/hvm/start_info.h>

/* What Xen handed over in %ebx. */
extern const struct hvm_start_info *pvh_start_info;

/*
 * From _start: the hypercall page, the IDT, the shared info page, then a
 * start_info made from hvm_start_info and the HVM parameters (console ring
 * and channel, command line, flags), for probe_main.
 */
void __attribute__((noreturn)) pvh_start(const struct hvm_start_info *hsi);

#endif /* !__ASSEMBLY__ */
#endif
