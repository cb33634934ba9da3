#include <probe/xen.h>
#include <xen/hvm/params.h>

#include <arch/hypercall.h>
#include <arch/upcall.h>

long upcall_register(void)
{
    /* The vector's gate is in the IDT from boot (arch/x86/pvh.c). */
    return hvm_param_set(HVM_PARAM_CALLBACK_IRQ,
                         (uint64_t)HVM_PARAM_CALLBACK_TYPE_VECTOR << 56 |
                             UPCALL_VECTOR);
}
