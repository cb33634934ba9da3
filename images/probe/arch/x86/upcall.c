#include <arch/hypercall.h>
#include <arch/traps.h>
#include <arch/upcall.h>

long upcall_register(void)
{
    /* The syscall callback comes with the trap checks (traps_enable). */
    return hypervisor_set_callbacks((unsigned long)probe_upcall_entry,
                                    (unsigned long)probe_failsafe_entry, 0);
}
