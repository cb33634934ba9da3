#include <probe/setup.h>
#include <probe/string.h>
#include <xen/sched.h>

#include <arch/hypercall.h>

const start_info_t *xen_start_info;
shared_info_t *xen_shared_info;
uint64_t probe_started_ns, probe_result_ns;

void domain_crash(void)
{
    struct sched_shutdown crash = { .reason = SHUTDOWN_crash };

    for ( ;; )
        hypervisor_sched_op(SCHEDOP_shutdown, &crash);
}

void boot_fatal(const char *why)
{
    static const char prefix[] = FATAL_PREFIX;

    hypervisor_console_io(CONSOLEIO_write, sizeof(prefix) - 1, prefix);
    hypervisor_console_io(CONSOLEIO_write, strlen(why), why);
    hypervisor_console_io(CONSOLEIO_write, 1, "\n");
    domain_crash();
}
