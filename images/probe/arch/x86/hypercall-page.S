/*
 * The page Xen fills with hypercall stubs: at load time (HYPERCALL_PAGE
 * note, PV) or when the guest asks for it (PVH). Until then it is int3 throughout, so a call through an unfilled
 * page traps at once. The stubs the probe uses get their own symbols so a
 * RIP inside the page resolves (nm) to the hypercall it is in.
 */
#include <probe/xen.h>
#include <arch/hypercall.h>
#include <arch/page.h>

#define STUB(name)                                                          \
        .org    hypercall_page + __HYPERVISOR_##name * HYPERCALL_STUB_SIZE, 0xcc; \
        .globl  hypercall_##name;                                           \
        .type   hypercall_##name, @function;                                \
        .size   hypercall_##name, HYPERCALL_STUB_SIZE;                      \
hypercall_##name:

        .section .text.hypercall_page, "ax", @progbits
        .balign PAGE_SIZE
        .globl  hypercall_page
        .type   hypercall_page, @object
        .size   hypercall_page, PAGE_SIZE
hypercall_page:
        STUB(mmu_update)
        STUB(set_callbacks)
        STUB(memory_op)
        STUB(update_va_mapping)
        STUB(xen_version)
        STUB(console_io)
        STUB(iret)
        STUB(vcpu_op)
        STUB(sched_op)
        STUB(event_channel_op)
        STUB(hvm_op)
        .org    hypercall_page + PAGE_SIZE, 0xcc
