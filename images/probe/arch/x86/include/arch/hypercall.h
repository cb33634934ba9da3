/*
 * Hypercalls through the page Xen fills in: a PV guest's at load time
 * (HYPERCALL_PAGE note), a PVH guest's when it writes the page's address
 * to Xen's MSR (arch/x86/pvh.c). Arguments go in rdi, rsi, rdx, r10, r8
 * (pv64) or ebx, ecx, edx, esi, edi (pv32, pvh32) and may come back
 * clobbered (debug builds of Xen poison them), so every argument is an
 * in/out operand.
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
#include <xen/hvm/hvm_op.h>

extern char hypercall_page[];

#define HYPERCALL_CALL       "call hypercall_page + %c[offset]"
#define HYPERCALL_OFFSET(nr) [offset] "i"((nr)*HYPERCALL_STUB_SIZE)

#ifdef __x86_64__
#define HYPERCALL_CLOBBERS "rcx", "r11", "memory"
#define A1                 "+D"
#define A2                 "+S"
#define A3                 "+d"
/* No constraint letter names r10 or r8. */
#define A45_DECL(a4, a5)                             \
    register unsigned long r4 __asm__("r10") = (a4); \
    register unsigned long r5 __asm__("r8") = (a5)
#else
#define HYPERCALL_CLOBBERS "memory"
#define A1                 "+b"
#define A2                 "+c"
#define A3                 "+d"
#define A45_DECL(a4, a5)                             \
    register unsigned long r4 __asm__("esi") = (a4); \
    register unsigned long r5 __asm__("edi") = (a5)
#endif

static inline long hypercall5(unsigned int nr, unsigned long a1,
                              unsigned long a2, unsigned long a3,
                              unsigned long a4, unsigned long a5)
{
    A45_DECL(a4, a5);
    long ret;

    __asm__ volatile(HYPERCALL_CALL
                     : "=a"(ret), A1(a1), A2(a2), A3(a3), "+r"(r4), "+r"(r5)
                     : HYPERCALL_OFFSET(nr)
                     : HYPERCALL_CLOBBERS);
    return ret;
}

/*
 * Unused arguments are passed as 0: Xen ignores the registers it does not
 * read.
 */
#define hypercall1(nr, a1)             hypercall5(nr, a1, 0, 0, 0, 0)
#define hypercall2(nr, a1, a2)         hypercall5(nr, a1, a2, 0, 0, 0)
#define hypercall3(nr, a1, a2, a3)     hypercall5(nr, a1, a2, a3, 0, 0)
#define hypercall4(nr, a1, a2, a3, a4) hypercall5(nr, a1, a2, a3, a4, 0)

static inline long hypervisor_mmu_update(mmu_update_t *req, unsigned int count,
                                         unsigned int *done, domid_t domain)
{
    return hypercall4(__HYPERVISOR_mmu_update, (unsigned long)req, count,
                      (unsigned long)done, domain);
}

static inline long hypervisor_mmuext_op(struct mmuext_op *op,
                                        unsigned int count, unsigned int *done,
                                        domid_t domain)
{
    return hypercall4(__HYPERVISOR_mmuext_op, (unsigned long)op, count,
                      (unsigned long)done, domain);
}

/*
 * pv64 takes plain addresses and a syscall entry; pv32 takes a code
 * selector with each address and has no syscall callback.
 */
static inline long hypervisor_set_callbacks(unsigned long event,
                                            unsigned long failsafe,
                                            unsigned long syscall)
{
#ifdef __x86_64__
    return hypercall3(__HYPERVISOR_set_callbacks, event, failsafe, syscall);
#else
    (void)syscall;
    return hypercall4(__HYPERVISOR_set_callbacks, FLAT_KERNEL_CS, event,
                      FLAT_KERNEL_CS, failsafe);
#endif
}

/* pv32 passes the 64-bit PAE entry as two words. */
static inline long hypervisor_update_va_mapping(unsigned long va, uint64_t pte,
                                                unsigned long flags)
{
#ifdef __x86_64__
    return hypercall3(__HYPERVISOR_update_va_mapping, va, pte, flags);
#else
    return hypercall4(__HYPERVISOR_update_va_mapping, va, (uint32_t)pte,
                      (uint32_t)(pte >> 32), flags);
#endif
}

static inline long hypervisor_set_trap_table(const trap_info_t *table)
{
    return hypercall1(__HYPERVISOR_set_trap_table, (unsigned long)table);
}

/* The kernel stack Xen switches to on a trap or syscall from user mode. */
static inline long hypervisor_stack_switch(unsigned long ss, unsigned long sp)
{
    return hypercall2(__HYPERVISOR_stack_switch, ss, sp);
}

static inline long hypervisor_set_debugreg(int reg, unsigned long value)
{
    return hypercall2(__HYPERVISOR_set_debugreg, reg, value);
}

static inline unsigned long hypervisor_get_debugreg(int reg)
{
    return hypercall1(__HYPERVISOR_get_debugreg, reg);
}

static inline long hypervisor_xen_version(int cmd, void *arg)
{
    return hypercall2(__HYPERVISOR_xen_version, cmd, (unsigned long)arg);
}

static inline long hypervisor_console_io(int cmd, unsigned int count,
                                         const char *buf)
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

static inline long hypervisor_memory_op(int cmd, void *arg)
{
    return hypercall2(__HYPERVISOR_memory_op, cmd, (unsigned long)arg);
}

static inline long hypervisor_hvm_op(int cmd, void *arg)
{
    return hypercall2(__HYPERVISOR_hvm_op, cmd, (unsigned long)arg);
}

/* An HVM parameter of the probe's own domain (PVH). */
static inline long hvm_param_set(uint32_t index, uint64_t value)
{
    struct xen_hvm_param param = { .domid = DOMID_SELF,
                                   .index = index,
                                   .value = value };

    return hypervisor_hvm_op(HVMOP_set_param, &param);
}

static inline long hvm_param_get(uint32_t index, uint64_t *value)
{
    struct xen_hvm_param param = { .domid = DOMID_SELF, .index = index };
    long rc = hypervisor_hvm_op(HVMOP_get_param, &param);

    *value = param.value;
    return rc;
}

#endif /* !__ASSEMBLY__ */
#endif
