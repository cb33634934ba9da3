#include <probe/checks.h>
#include <probe/cmdline.h>
#include <probe/commands.h>
#include <probe/console.h>
#include <probe/events.h>
#include <probe/main.h>
#include <probe/report.h>
#include <probe/setup.h>

#include <arch/page.h>
#include <arch/time.h>

static uint8_t shared_info_page[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));

void probe_main(const start_info_t *si)
{
    xen_start_info = si;
    xen_shared_info =
        frame_map(shared_info_page, si->shared_info >> PAGE_SHIFT);
    if ( !xen_shared_info )
        boot_fatal("cannot map the shared info page");
    probe_started_ns = time_now_ns();
    /* The probe's resting state (probe/events.h), whatever the builder left. */
    events_mask();
    if ( console_init() )
        boot_fatal("cannot map the console ring");
    cmdline_init();
    events_init();

    report_begin();
    checks_run();
    probe_result_ns = time_now_ns();
    report_result();

    commands_run_list(cmdline_value("probe.run"));
    commands_loop();
}
