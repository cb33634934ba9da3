/*
 * How the event upcall reaches this guest type: a PV guest registers a
 * callback (HYPERVISOR_set_callbacks, arch/x86/upcall.c); a PVH guest has
 * Xen inject an interrupt vector (HVM_PARAM_CALLBACK_IRQ,
 * arch/x86/upcall-pvh.c), which EFLAGS.IF gates as well: Xen delivers it
 * whatever the vcpu_info mask says.
 */
#ifndef ARCH_UPCALL_H
#define ARCH_UPCALL_H

/* The PVH upcall's vector: any free one above the exceptions. */
#define UPCALL_VECTOR 0xf3

#ifndef __ASSEMBLY__

#include <stdbool.h>

#ifdef GUEST_PVH
#define UPCALL_HOW "HVM_PARAM_CALLBACK_IRQ"
#else
#define UPCALL_HOW "HYPERVISOR_set_callbacks"
#endif

/* Tell Xen where the upcall goes; returns the hypercall's result. */
long upcall_register(void);

/* PVH: let the upcall's interrupt in (sti) or keep it out (cli). */
static inline void upcall_gate(bool open)
{
#ifdef GUEST_PVH
    if ( open )
        __asm__ volatile("sti" ::: "memory");
    else
        __asm__ volatile("cli" ::: "memory");
#else
    (void)open;
#endif
}

#endif /* !__ASSEMBLY__ */
#endif
