/*
 * The trap paths a FreeBSD PV kernel lives on: user mode and back through
 * its system call, a user-mode `int $N` through a DPL 3 gate, and ddb's
 * tools in kernel mode: int3 breakpoints, single-stepping with TF, and
 * watchpoints in the debug registers (HYPERVISOR_set_debugreg).
 *
 * Guest types: pv64 pv32pae
 */
#include <probe/check.h>
#include <probe/errno.h>

#include <arch/hypercall.h>
#include <arch/traps.h>

#define DR6_DEFAULT 0xffff0ff0UL
#define DR6_B0      0x1UL
#define DR6_BS      0x4000UL
/* DR7: L0 on, R/W0 = write, LEN0 = 4 bytes. */
#define DR7_WRITE_WATCH_DR0 (0x1UL | 0x1UL << 16 | 0x3UL << 18)

#define MAX_TRAPS 8

#ifdef __x86_64__
#define SYSCALL_NAME   "syscall"
#define SYSCALL_VECTOR TRAP_SYSCALL
#else
#define SYSCALL_NAME   "int $0x80"
#define SYSCALL_VECTOR TRAP_INT80
#endif

/* What the kernel-mode hook saw: #DB and #BP, in order. */
static struct {
    unsigned int count;
    unsigned long vector[MAX_TRAPS], ip[MAX_TRAPS];
    unsigned long dr6;
} seen;

static bool kernel_trap(struct trap_frame *f)
{
    if ( f->vector != 1 && f->vector != 3 )
        return false;
    if ( seen.count < MAX_TRAPS )
    {
        seen.vector[seen.count] = f->vector;
        seen.ip[seen.count] = f->ip;
    }
    /* Stop stepping at the end of the sequence, or if it runs away. */
    if ( ++seen.count >= MAX_TRAPS || f->ip == (unsigned long)probe_ss_3 )
        f->flags &= ~X86_EFLAGS_TF;
    if ( f->vector == 1 )
    {
        /* Xen keeps the guest's DR6 for it: read it, then reset it. */
        seen.dr6 |= hypervisor_get_debugreg(6);
        hypervisor_set_debugreg(6, DR6_DEFAULT);
    }
    return true;
}

/* Trap table on, nothing seen yet; false (detail given) if Xen refused. */
static bool start(struct detail *d)
{
    long rc;

    seen.count = 0;
    seen.dr6 = 0;
    rc = traps_enable(kernel_trap);
    if ( rc )
        detail_add(
            d, "trap table, kernel stack or user mappings refused (" RC_FMT ")",
            RC_ARGS(rc));
    return !rc;
}

static enum check_status finish(enum check_status status)
{
    traps_disable();
    return status;
}

static const char *vector_name(unsigned long vector)
{
    switch ( vector )
    {
    case 1:
        return "#DB";
    case 3:
        return "#BP";
    case 6:
        return "#UD";
    case 13:
        return "#GP";
    case 14:
        return "#PF";
    case TRAP_SYSCALL:
        return "syscall";
    default:
        return "int";
    }
}

static void add_trap(struct detail *d, unsigned long vector, unsigned long ip)
{
    detail_add(d, "%s (vector %#lx) at %#lx", vector_name(vector), vector, ip);
}

/*
 * User code until it enters the kernel, which must be through vector at
 * after.
 */
static enum check_status user_round_trip(struct detail *d, void (*code)(void),
                                         unsigned long vector,
                                         const char *after,
                                         struct trap_record *t)
{
    if ( !start(d) )
        return finish(CHECK_FAIL);
    user_run(code, t);
    detail_add(d, "user mode at %#lx, back in the kernel through ",
               (unsigned long)code);
    add_trap(d, t->vector, t->ip);
    detail_add(d, " from cs %#lx", t->cs);
    if ( t->vector == 13 || t->vector == 14 )
        detail_add(d, " error code %#lx", t->error_code);
    if ( t->vector == vector && t->ip == (unsigned long)after &&
         trap_from_user(t->cs) )
        return finish(CHECK_OK);
    detail_add(d, "; expected vector %#lx from user mode at %#lx", vector,
               (unsigned long)after);
    return finish(CHECK_FAIL);
}

static enum check_status check_trap_syscall(struct detail *d)
{
    struct trap_record t = { 0, 0, 0, 0 };

    detail_add(d, SYSCALL_NAME ": ");
    return user_round_trip(d, probe_user_syscall, SYSCALL_VECTOR,
                           probe_user_syscall_after, &t);
}
PROBE_CHECK(100, "trap-syscall", check_trap_syscall);

static enum check_status check_trap_user_int(struct detail *d)
{
    struct trap_record t = { 0, 0, 0, 0 };
    enum check_status status;

    detail_add(d, "int $%#x to a DPL 3 gate: ", TRAP_SOFT_INT);
    status = user_round_trip(d, probe_user_int, TRAP_SOFT_INT,
                             probe_user_int_after, &t);
    /*
     * Xen emulates the gate: the CPU's #GP error code for `int $N` through
     * Xen's own DPL 0 gate is N * 8 + 2, and Xen takes the vector from it.
     */
    if ( t.vector == 13 && (t.error_code & 7) == 2 )
    {
        detail_add(d, "; the #GP error code names vector %#lx",
                   t.error_code >> 3);
        if ( t.error_code == TRAP_SOFT_INT * 16 + 2 )
            detail_add(
                d,
                ": the CPU encoded it as N*16+2, not N*8+2 (%#x), so Xen found no"
                " gate there (as QEMU 7.2's TCG does)",
                TRAP_SOFT_INT * 8 + 2);
    }
    return status;
}
PROBE_CHECK(110, "trap-user-int", check_trap_user_int);

static enum check_status check_trap_int3(struct detail *d)
{
    if ( !start(d) )
        return finish(CHECK_FAIL);
    probe_int3();
    detail_add(d, "int3 at %#lx: %u trap(s)", (unsigned long)probe_int3,
               seen.count);
    if ( seen.count )
    {
        detail_add(d, ", ");
        add_trap(d, seen.vector[0], seen.ip[0]);
    }
    if ( seen.count == 1 && seen.vector[0] == 3 &&
         seen.ip[0] == (unsigned long)probe_int3_after )
        return finish(CHECK_OK);
    detail_add(d, "; expected one #BP at %#lx",
               (unsigned long)probe_int3_after);
    return finish(CHECK_FAIL);
}
PROBE_CHECK(120, "trap-int3", check_trap_int3);

static enum check_status check_trap_single_step(struct detail *d)
{
    unsigned int i;

    if ( !start(d) )
        return finish(CHECK_FAIL);
    probe_single_step();
    detail_add(d, "TF set by popf at %#lx: %u trap(s) at",
               (unsigned long)probe_single_step, seen.count);
    for ( i = 0; i < seen.count && i < MAX_TRAPS; i++ )
        detail_add(d, " %s@%#lx", vector_name(seen.vector[i]), seen.ip[i]);
    detail_add(d, ", DR6 %#lx", seen.dr6);
    if ( seen.count == 2 && seen.vector[0] == 1 && seen.vector[1] == 1 &&
         seen.ip[0] == (unsigned long)probe_ss_2 &&
         seen.ip[1] == (unsigned long)probe_ss_3 && (seen.dr6 & DR6_BS) )
        return finish(CHECK_OK);
    detail_add(d, "; expected #DB at %#lx and %#lx with DR6.BS",
               (unsigned long)probe_ss_2, (unsigned long)probe_ss_3);
    return finish(CHECK_FAIL);
}
PROBE_CHECK(130, "trap-single-step", check_trap_single_step);

static enum check_status check_trap_watchpoint(struct detail *d)
{
    static volatile unsigned int watched __attribute__((aligned(8)));
    long rc;

    if ( !start(d) )
        return finish(CHECK_FAIL);
    watched = 0;
    rc = hypervisor_set_debugreg(0, (unsigned long)&watched);
    if ( !rc )
        rc = hypervisor_set_debugreg(6, DR6_DEFAULT);
    if ( !rc )
        rc = hypervisor_set_debugreg(7, DR7_WRITE_WATCH_DR0);
    detail_add(d, "DR0 %#lx write watch (DR7 %#lx): ", (unsigned long)&watched,
               DR7_WRITE_WATCH_DR0);
    if ( rc )
    {
        hypervisor_set_debugreg(7, 0);
        detail_add(d, "HYPERVISOR_set_debugreg refused (" RC_FMT ")",
                   RC_ARGS(rc));
        return finish(CHECK_FAIL);
    }
    probe_watch_write(&watched);
    hypervisor_set_debugreg(7, 0);
    detail_add(d, "%u trap(s)", seen.count);
    if ( seen.count )
    {
        detail_add(d, ", ");
        add_trap(d, seen.vector[0], seen.ip[0]);
    }
    detail_add(d, ", DR6 %#lx", seen.dr6);
    if ( seen.count == 1 && seen.vector[0] == 1 &&
         seen.ip[0] == (unsigned long)probe_watch_after &&
         (seen.dr6 & DR6_B0) && watched == 1 )
        return finish(CHECK_OK);
    detail_add(d, "; expected one #DB at %#lx with DR6.B0",
               (unsigned long)probe_watch_after);
    return finish(CHECK_FAIL);
}
PROBE_CHECK(140, "trap-watchpoint", check_trap_watchpoint);
