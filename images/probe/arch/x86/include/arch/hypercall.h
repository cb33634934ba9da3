/*
 * Hypercalls through the page Xen fills in at load time (HYPERCALL_PAGE
 * note). Arguments go in rdi, rsi, rdx, r10, r8 and may come back clobbered
 * (debug builds of Xen poison them), so every argument is an in/out operand.
 */
#ifndef ARCH_HYPERCALL_H
#define ARCH_HYPERCALL_H

/*
 * Xen's public headers give the stub size only in prose
 * (arch-x86/xen-x86_64.h: "call hypercall_page + hypercall-number * 32").
 */
#define HYPERCALL_STUB_SIZE 32

#ifndef __ASSEMBLY__

#include <probe/xen.h>

extern char hypercall_page[];

#define HYPERCALL_CALL "call hypercall_page + %c[offset]"
#define HYPERCALL_OFFSET(nr) [offset] "i" ((nr) * HYPERCALL_STUB_SIZE)

static inline long hypercall2(unsigned int nr, unsigned long a1, unsigned long a2)
{
    long ret;

    __asm__ volatile (HYPERCALL_CALL
                      : "=a" (ret), "+D" (a1), "+S" (a2)
                      : HYPERCALL_OFFSET(nr)
                      : "rcx", "r11", "memory");
    return ret;
}

static inline long hypercall3(unsigned int nr, unsigned long a1,
                              unsigned long a2, unsigned long a3)
{
    long ret;

    __asm__ volatile (HYPERCALL_CALL
                      : "=a" (ret), "+D" (a1), "+S" (a2), "+d" (a3)
                      : HYPERCALL_OFFSET(nr)
                      : "rcx", "r11", "memory");
    return ret;
}

static inline long hypercall4(unsigned int nr, unsigned long a1, unsigned long a2,
                              unsigned long a3, unsigned long a4)
{
    register unsigned long r10 __asm__ ("r10") = a4;
    long ret;

    __asm__ volatile (HYPERCALL_CALL
                      : "=a" (ret), "+D" (a1), "+S" (a2), "+d" (a3), "+r" (r10)
                      : HYPERCALL_OFFSET(nr)
                      : "rcx", "r11", "memory");
    return ret;
}

static inline long hypervisor_mmu_update(mmu_update_t *req, unsigned int count,
                                         unsigned int *done, domid_t domain)
{
    return hypercall4(__HYPERVISOR_mmu_update, (unsigned long)req, count,
                      (unsigned long)done, domain);
}

static inline long hypervisor_set_callbacks(unsigned long event,
                                            unsigned long failsafe,
                                            unsigned long syscall)
{
    return hypercall3(__HYPERVISOR_set_callbacks, event, failsafe, syscall);
}

static inline long hypervisor_update_va_mapping(unsigned long va, uint64_t pte,
                                                unsigned long flags)
{
    return hypercall3(__HYPERVISOR_update_va_mapping, va, pte, flags);
}

static inline long hypervisor_xen_version(int cmd, void *arg)
{
    return hypercall2(__HYPERVISOR_xen_version, cmd, (unsigned long)arg);
}

static inline long hypervisor_console_io(int cmd, unsigned int count, const char *buf)
{
    return hypercall3(__HYPERVISOR_console_io, cmd, count, (unsigned long)buf);
}

static inline long hypervisor_vcpu_op(int cmd, unsigned int vcpu, void *arg)
{
    return hypercall3(__HYPERVISOR_vcpu_op, cmd, vcpu, (unsigned long)arg);
}

static inline long hypervisor_sched_op(int cmd, void *arg)
{
    return hypercall2(__HYPERVISOR_sched_op, cmd, (unsigned long)arg);
}

static inline long hypervisor_event_channel_op(int cmd, void *arg)
{
    return hypercall2(__HYPERVISOR_event_channel_op, cmd, (unsigned long)arg);
}

#endif /* !__ASSEMBLY__ */
#endif
