#include <probe/boot.h>
#include <probe/checks.h>
#include <probe/cmdline.h>
#include <probe/commands.h>
#include <probe/console.h>
#include <probe/events.h>
#include <probe/string.h>
#include <probe/time.h>
#include <probe/version.h>
#include <xen/sched.h>

#include <arch/hypercall.h>
#include <arch/page.h>

const start_info_t *xen_start_info;
shared_info_t *xen_shared_info;
uint64_t probe_started_ns, probe_result_ns;

static uint8_t shared_info_page[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));

static bool console_up;

void boot_fatal(const char *why)
{
    static const char prefix[] = "PROBE fatal: ";
    struct sched_shutdown crash = { .reason = SHUTDOWN_crash };

    if ( console_up )
    {
        console_printf("%s%s\n", prefix, why);
        console_flush(SECONDS(2));
    }
    else
    {
        /* Seen in Xen's log only where console_io is allowed (dom0, debug Xen). */
        hypervisor_console_io(CONSOLEIO_write, sizeof(prefix) - 1, prefix);
        hypervisor_console_io(CONSOLEIO_write, strlen(why), why);
        hypervisor_console_io(CONSOLEIO_write, 1, "\n");
    }
    for ( ;; )
        hypervisor_sched_op(SCHEDOP_shutdown, &crash);
}

void probe_main(const start_info_t *si)
{
    static struct detail failed;
    bool ok;

    xen_start_info = si;
    if ( map_machine_frame(shared_info_page, si->shared_info >> PAGE_SHIFT) )
        boot_fatal("cannot map the shared info page");
    xen_shared_info = (shared_info_t *)shared_info_page;
    probe_started_ns = time_now_ns();
    /* The probe's resting state (probe/events.h), whatever the builder left. */
    events_mask();
    if ( console_init() )
        boot_fatal("cannot map the console ring");
    console_up = true;
    cmdline_init();
    events_init();

    console_printf("PROBE begin freebsd-xen-ci probe %s\n", PROBE_VERSION);
    ok = checks_run(&failed);
    probe_result_ns = time_now_ns();
    console_printf("PROBE result %s%s\n", ok ? "SUCCESS" : "FAILURE", failed.text);

    commands_run_list(cmdline_value("probe.run"));
    commands_loop();
}
