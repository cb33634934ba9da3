#include <probe/events.h>
#include <probe/setup.h>
#include <xen/sched.h>
#include <xen/version.h>

#include <arch/cpu.h>
#include <arch/hypercall.h>
#include <arch/upcall.h>

#define BITS_PER_WORD (sizeof(xen_ulong_t) * 8)

static volatile uint32_t delivered[EVTCHN_2L_NR_CHANNELS];
static long callbacks_rc = 1;

static volatile vcpu_info_t *vcpu0(void)
{
    return &xen_shared_info->vcpu_info[0];
}

long events_init(void)
{
    callbacks_rc = upcall_register();
    return callbacks_rc;
}

long events_callbacks_rc(void)
{
    return callbacks_rc;
}

uint8_t events_mask(void)
{
    uint8_t previous = vcpu0()->evtchn_upcall_mask;

    upcall_gate(false);
    vcpu0()->evtchn_upcall_mask = 1;
    barrier();
    return previous;
}

void events_unmask(void)
{
    barrier();
    vcpu0()->evtchn_upcall_mask = 0;
    upcall_gate(true);
    barrier();
    /*
     * Xen only delivers the upcall on its way back to the guest, so an event
     * that arrived while masked waits for the next hypercall: make one.
     */
    if ( vcpu0()->evtchn_upcall_pending )
        hypervisor_xen_version(XENVER_version, NULL);
}

void events_restore(uint8_t previous)
{
    if ( !previous )
        events_unmask();
}

uint32_t events_delivered(evtchn_port_t port)
{
    return port < EVTCHN_2L_NR_CHANNELS ? delivered[port] : 0;
}

static bool clear_pending(evtchn_port_t port)
{
    xen_ulong_t bit = (xen_ulong_t)1 << (port % BITS_PER_WORD);

    return __atomic_fetch_and(
               &xen_shared_info->evtchn_pending[port / BITS_PER_WORD], ~bit,
               __ATOMIC_SEQ_CST) &
           bit;
}

void evtchn_clear(evtchn_port_t port)
{
    clear_pending(port);
}

void probe_upcall(void)
{
    xen_ulong_t words;

    /* Cleared before scanning, so an event raised meanwhile upcalls again. */
    vcpu0()->evtchn_upcall_pending = 0;
    words = __atomic_exchange_n(
        &xen_shared_info->vcpu_info[0].evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
    while ( words )
    {
        unsigned int word = __builtin_ctzl(words);
        xen_ulong_t bits = xen_shared_info->evtchn_pending[word] &
                           ~xen_shared_info->evtchn_mask[word];

        words &= words - 1;
        while ( bits )
        {
            evtchn_port_t port = word * BITS_PER_WORD + __builtin_ctzl(bits);

            bits &= bits - 1;
            if ( clear_pending(port) )
                delivered[port]++;
        }
    }
}

long evtchn_bind_virq(uint32_t virq, evtchn_port_t *port)
{
    struct evtchn_bind_virq op = { .virq = virq, .vcpu = 0 };
    long rc = hypervisor_event_channel_op(EVTCHNOP_bind_virq, &op);

    *port = op.port;
    return rc;
}

long evtchn_bind_loopback(evtchn_port_t *sender, evtchn_port_t *receiver)
{
    struct evtchn_alloc_unbound unbound = { .dom = DOMID_SELF,
                                            .remote_dom = DOMID_SELF };
    struct evtchn_bind_interdomain bind = { .remote_dom = DOMID_SELF };
    long rc = hypervisor_event_channel_op(EVTCHNOP_alloc_unbound, &unbound);

    if ( rc )
        return rc;
    bind.remote_port = *receiver = unbound.port;
    rc = hypervisor_event_channel_op(EVTCHNOP_bind_interdomain, &bind);
    if ( rc )
        evtchn_close(unbound.port);
    *sender = bind.local_port;
    return rc;
}

long evtchn_send(evtchn_port_t port)
{
    struct evtchn_send op = { .port = port };

    return hypervisor_event_channel_op(EVTCHNOP_send, &op);
}

long evtchn_unmask(evtchn_port_t port)
{
    struct evtchn_unmask op = { .port = port };

    return hypervisor_event_channel_op(EVTCHNOP_unmask, &op);
}

long evtchn_close(evtchn_port_t port)
{
    struct evtchn_close op = { .port = port };

    return hypervisor_event_channel_op(EVTCHNOP_close, &op);
}

long evtchn_poll(evtchn_port_t port, uint64_t deadline_ns)
{
    struct sched_poll poll = { .nr_ports = 1, .timeout = deadline_ns };

    set_xen_guest_handle(poll.ports, &port);
    return hypervisor_sched_op(SCHEDOP_poll, &poll);
}
