/*
 * Event delivery: a loopback channel through the upcall, and VIRQ_TIMER.
 *
 * Guest types: pv64 pv32pae pvh32
 */
#include <probe/check.h>
#include <probe/errno.h>
#include <probe/events.h>
#include <probe/time.h>
#include <xen/vcpu.h>

#include <arch/cpu.h>
#include <arch/hypercall.h>
#include <arch/time.h>
#include <arch/upcall.h>

/* Short enough to stay within the probe's 3 s budget even when they fail. */
#define UPCALL_WAIT MILLISECONDS(100)
#define TIMER_DELAY MILLISECONDS(2)
#define TIMER_WAIT  MILLISECONDS(500)

/*
 * With the upcall unmasked, spin until port has been delivered again or
 * deadline_ns passes. Returns the time of arrival, 0 if none.
 */
static uint64_t await_upcall(evtchn_port_t port, uint32_t before,
                             uint64_t deadline_ns)
{
    for ( ;; )
    {
        uint64_t now = time_now_ns();

        if ( events_delivered(port) != before )
            return now;
        if ( now >= deadline_ns )
            return 0;
        cpu_relax();
    }
}

static enum check_status check_evtchn_upcall(struct detail *d)
{
    evtchn_port_t sender, receiver;
    long rc = events_callbacks_rc();
    uint64_t start, arrived = 0;
    uint32_t before;

    if ( rc )
    {
        detail_add(d, UPCALL_HOW " refused (" RC_FMT ")", RC_ARGS(rc));
        return CHECK_FAIL;
    }
    rc = evtchn_bind_loopback(&sender, &receiver);
    if ( rc )
    {
        detail_add(d, "loopback channel refused (" RC_FMT ")", RC_ARGS(rc));
        return CHECK_FAIL;
    }

    evtchn_unmask(receiver);
    before = events_delivered(receiver);
    events_unmask();
    start = time_now_ns();
    rc = evtchn_send(sender);
    if ( !rc )
        arrived = await_upcall(receiver, before, start + UPCALL_WAIT);
    events_mask();
    evtchn_close(sender);
    evtchn_close(receiver);

    detail_add(d, "loopback port %u -> %u: ", sender, receiver);
    if ( rc )
    {
        detail_add(d, "EVTCHNOP_send refused (" RC_FMT ")", RC_ARGS(rc));
        return CHECK_FAIL;
    }
    if ( !arrived )
    {
        detail_add(d, "no upcall within %lu ms", AS_MS(UPCALL_WAIT));
        return CHECK_FAIL;
    }
    detail_add(d, "upcall after %lu us", AS_US(arrived - start));
    return CHECK_OK;
}
PROBE_CHECK(080, "evtchn-upcall", check_evtchn_upcall);

static enum check_status check_timer(struct detail *d)
{
    struct vcpu_set_singleshot_timer timer = { .flags = 0 };
    evtchn_port_t port;
    uint64_t start, arrived = 0;
    uint32_t before;
    long rc = evtchn_bind_virq(VIRQ_TIMER, &port);

    if ( rc )
    {
        detail_add(d, "binding VIRQ_TIMER refused (" RC_FMT ")", RC_ARGS(rc));
        return CHECK_FAIL;
    }
    /*
     * Xen starts PV vCPUs with a 100 Hz periodic timer on the same VIRQ;
     * stop it so only the one-shot can raise the event.
     */
    rc = hypervisor_vcpu_op(VCPUOP_stop_periodic_timer, 0, NULL);
    if ( rc )
        detail_add(d, "(stopping the periodic timer: " RC_FMT ") ",
                   RC_ARGS(rc));
    evtchn_clear(port);
    evtchn_unmask(port);
    before = events_delivered(port);
    events_unmask();
    start = time_now_ns();
    timer.timeout_abs_ns = start + TIMER_DELAY;
    rc = hypervisor_vcpu_op(VCPUOP_set_singleshot_timer, 0, &timer);
    if ( !rc )
        arrived = await_upcall(port, before, start + TIMER_WAIT);
    events_mask();
    evtchn_close(port);

    if ( rc )
    {
        detail_add(d, "VCPUOP_set_singleshot_timer refused (" RC_FMT ")",
                   RC_ARGS(rc));
        return CHECK_FAIL;
    }
    if ( !arrived )
    {
        detail_add(d, "one-shot for %lu ms: no VIRQ_TIMER within %lu ms",
                   AS_MS(TIMER_DELAY), AS_MS(TIMER_WAIT));
        return CHECK_FAIL;
    }
    detail_add(d, "one-shot for %lu us: VIRQ_TIMER on port %u after %lu us",
               AS_US(TIMER_DELAY), port, AS_US(arrived - start));
    if ( arrived < timer.timeout_abs_ns )
        detail_add(d, " (early by %lu us)",
                   AS_US(timer.timeout_abs_ns - arrived));
    return CHECK_OK;
}
PROBE_CHECK(090, "timer", check_timer);
