/*
 * Event channels (2-level ABI) and the upcall.
 *
 * The probe runs with the upcall masked, waiting on one port at a time with
 * SCHEDOP_poll; only the evtchn-upcall and timer checks (and a panicked probe
 * blocking forever) unmask it. The upcall handler just clears pending bits
 * and counts deliveries per port.
 */
#ifndef PROBE_EVENTS_H
#define PROBE_EVENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <probe/xen.h>
#include <xen/event_channel.h>

/* Registers the upcall and failsafe callbacks; returns the hypercall's rc. */
long events_init(void);
long events_callbacks_rc(void);

/* Mask the upcall; returns the previous mask for events_restore(). */
uint8_t events_mask(void);
void events_restore(uint8_t previous);
/* Unmask the upcall and let anything already pending come in at once. */
void events_unmask(void);

/* How many times the upcall has found port pending. */
uint32_t events_delivered(evtchn_port_t port);

long evtchn_bind_virq(uint32_t virq, evtchn_port_t *port);
/* A loopback channel: sending on *sender raises *receiver, both ours. */
long evtchn_bind_loopback(evtchn_port_t *sender, evtchn_port_t *receiver);
long evtchn_send(evtchn_port_t port);
long evtchn_unmask(evtchn_port_t port);
long evtchn_close(evtchn_port_t port);
void evtchn_clear(evtchn_port_t port);

/*
 * Block until port is pending or Xen system time reaches deadline_ns (0: no
 * deadline). The caller masks the upcall first. Returns the poll's result.
 */
long evtchn_poll(evtchn_port_t port, uint64_t deadline_ns);

/* Called from probe_trap for the upcall entry, the upcall masked by Xen. */
void probe_upcall(void);

#endif
