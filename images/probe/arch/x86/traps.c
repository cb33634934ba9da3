#include <probe/detail.h>
#include <probe/events.h>
#include <probe/report.h>
#include <probe/setup.h>
#include <probe/string.h>

#include <arch/hypercall.h>
#include <arch/page.h>
#include <arch/traps.h>

#define TRAP_STACK_SIZE 8192

/* Event delivery masked on entry (an interrupt gate), restored by the iret. */
#define GATE(dpl) ((dpl) | 4)

extern char probe_trap_db[], probe_trap_bp[], probe_trap_ud[], probe_trap_gp[],
    probe_trap_pf[], probe_trap_soft[], probe_trap_int80[];

/* Xen switches to this stack when user mode enters the kernel. */
static uint8_t trap_stack[TRAP_STACK_SIZE] __attribute__((aligned(16)));
/* User mode's own stack; pv32 needs it mapped with the user bit. */
static uint8_t user_stack[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
extern char probe_user_text[], probe_user_text_end[];

static trap_hook_fn kernel_hook;
static struct trap_record user_trap;

long traps_enable(trap_hook_fn hook)
{
    /* int3, the soft int and int $0x80 are DPL 3, as user mode may use them. */
    static const trap_info_t table[] = {
        { 1, GATE(0), FLAT_KERNEL_CS, (unsigned long)probe_trap_db },
        { 3, GATE(3), FLAT_KERNEL_CS, (unsigned long)probe_trap_bp },
        { 6, GATE(0), FLAT_KERNEL_CS, (unsigned long)probe_trap_ud },
        { 13, GATE(0), FLAT_KERNEL_CS, (unsigned long)probe_trap_gp },
        { 14, GATE(0), FLAT_KERNEL_CS, (unsigned long)probe_trap_pf },
        { TRAP_SOFT_INT, GATE(3), FLAT_KERNEL_CS,
          (unsigned long)probe_trap_soft },
        { TRAP_INT80, GATE(3), FLAT_KERNEL_CS,
          (unsigned long)probe_trap_int80 },
        { 0, 0, 0, 0 },
    };
    long rc;

    kernel_hook = hook;
    rc = hypervisor_set_trap_table(table);
    if ( !rc )
        rc = hypervisor_stack_switch(
            FLAT_KERNEL_SS, (unsigned long)(trap_stack + sizeof(trap_stack)));
#ifdef __x86_64__
    /*
     * User mode gets page tables of its own on pv64: give it the kernel's
     * (Xen marks every pv64 mapping user-accessible, the guest kernel
     * running in ring 3 too), and the syscall entry.
     */
    if ( !rc )
    {
        extern char probe_syscall_entry[];
        struct mmuext_op op = {
            .cmd = MMUEXT_NEW_USER_BASEPTR,
            .arg1.mfn = virt_to_mfn((const void *)xen_start_info->pt_base),
        };

        rc = hypervisor_mmuext_op(&op, 1, NULL, DOMID_SELF);
        if ( !rc )
            rc = hypervisor_set_callbacks((unsigned long)probe_upcall_entry,
                                          (unsigned long)probe_failsafe_entry,
                                          (unsigned long)probe_syscall_entry);
    }
#else
    /* Ring 3 reaches only pages whose entries carry the user bit. */
    {
        const char *page;

        for ( page = probe_user_text; !rc && page < probe_user_text_end;
              page += PAGE_SIZE )
            rc = map_user_page(page);
        if ( !rc )
            rc = map_user_page(user_stack);
    }
#endif
    return rc;
}

void traps_disable(void)
{
    kernel_hook = NULL;
    hypervisor_set_trap_table(NULL);
}

void user_run(void (*ip)(void), struct trap_record *how)
{
    memset(&user_trap, 0, sizeof(user_trap));
    probe_user_enter((unsigned long)ip,
                     (unsigned long)(user_stack + sizeof(user_stack)));
    *how = user_trap;
}

void probe_trap(struct trap_frame *f)
{
    static struct detail why;

    if ( f->vector == TRAP_UPCALL )
    {
        probe_upcall();
        return;
    }
    if ( trap_from_user(f->cs) )
    {
        user_trap = (struct trap_record){ f->vector, f->error_code, f->ip,
                                          f->cs & 0xffff };
        probe_user_return(f->vector);
    }
    if ( kernel_hook && kernel_hook(f) )
        return;
    detail_clear(&why);
    detail_add(
        &why,
        "unexpected trap in kernel mode: vector %lu error code %#lx at %#lx"
        " (cs %#lx, flags %#lx)",
        f->vector, f->error_code, f->ip, f->cs & 0xffff, f->flags);
    report_fatal(why.text);
}

void probe_failsafe(void)
{
    report_fatal("failsafe callback: Xen could not restore segment registers");
}
