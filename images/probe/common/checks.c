#include <probe/check.h>
#include <probe/checks.h>
#include <probe/report.h>

#include <arch/checks.h>

void checks_run(void)
{
    static const struct {
        const char *name;
        check_fn run;
    } checks[] = {
        { "xen-version", check_xen_version },
        { "features", check_features },
        { "start-info", check_start_info },
        { "console-ring", check_console_ring },
        { "console-io", check_console_io },
        { "bsd-symtab", check_bsd_symtab },
        { "linear-pt", check_linear_pt },
        { "evtchn-upcall", check_evtchn_upcall },
        { "timer", check_timer },
        { "trap-syscall", check_trap_syscall },
        { "trap-user-int", check_trap_user_int },
        { "trap-int3", check_trap_int3 },
        { "trap-single-step", check_trap_single_step },
        { "trap-watchpoint", check_trap_watchpoint },
    };
    static struct detail d;
    unsigned int i;

    for ( i = 0; i < sizeof(checks) / sizeof(checks[0]); i++ )
    {
        enum check_status status;

        detail_clear(&d);
        status = checks[i].run(&d);
        report_check(checks[i].name, status, &d);
    }
}
