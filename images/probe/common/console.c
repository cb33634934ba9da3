#include <probe/console.h>
#include <probe/events.h>
#include <probe/setup.h>
#include <probe/string.h>
#include <probe/time.h>
#include <xen/io/console.h>

#include <arch/cpu.h>
#include <arch/hypercall.h>
#include <arch/page.h>
#include <arch/time.h>

/*
 * Waits re-check their condition at least this often, so a backend that
 * forgets to notify slows the probe down instead of stopping it.
 */
#define RECHECK_NS MILLISECONDS(100)

static uint8_t ring_page[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static struct xencons_interface *ring;
/* The ring's event channel, or dom0's VIRQ_CONSOLE (0 if unbound). */
static evtchn_port_t port;

/* dom0 input: CONSOLEIO_read hands over bytes in batches. */
static char input[64];
static unsigned int input_len, input_pos;

long console_init(void)
{
    if ( is_initial_domain() )
    {
        /* Without the VIRQ, input is still polled every RECHECK_NS. */
        if ( evtchn_bind_virq(VIRQ_CONSOLE, &port) )
            port = 0;
        return 0;
    }

    ring = frame_map(ring_page, xen_start_info->console.domU.mfn);
    if ( !ring )
        return -1;
    port = xen_start_info->console.domU.evtchn;
    return 0;
}

const char *console_kind(void)
{
    return ring ? "ring" : "console_io";
}

/* Block until ready() holds or deadline_ns passes (0: no deadline). */
static bool wait_for(bool (*ready)(void), uint64_t deadline_ns)
{
    uint8_t mask = events_mask();
    bool ok;

    for ( ;; )
    {
        uint64_t now, until;

        if ( port )
            evtchn_clear(port);
        if ( (ok = ready()) )
            break;
        now = time_now_ns();
        if ( deadline_ns && now >= deadline_ns )
            break;
        until = now + RECHECK_NS;
        if ( deadline_ns && deadline_ns < until )
            until = deadline_ns;
        evtchn_poll(port, until);
    }
    events_restore(mask);
    return ok;
}

static void notify(void)
{
    evtchn_send(port);
}

static bool ring_has_space(void)
{
    return ring->out_prod - ring->out_cons < sizeof(ring->out);
}

static bool ring_drained(void)
{
    return ring->out_cons == ring->out_prod;
}

static void ring_write(const char *s, size_t len)
{
    while ( len )
    {
        XENCONS_RING_IDX cons = ring->out_cons, prod = ring->out_prod;

        mb();
        if ( prod - cons >= sizeof(ring->out) )
        {
            notify();
            wait_for(ring_has_space, 0);
            continue;
        }
        for ( ; len && prod - cons < sizeof(ring->out); len-- )
            ring->out[MASK_XENCONS_IDX(prod++, ring->out)] = *s++;
        wmb();
        ring->out_prod = prod;
        notify();
    }
}

void console_write(const char *s, size_t len)
{
    if ( !ring )
    {
        hypervisor_console_io(CONSOLEIO_write, len, s);
        return;
    }
    while ( len )
    {
        size_t n = 0;

        while ( n < len && s[n] != '\n' )
            n++;
        ring_write(s, n);
        if ( n < len )
        {
            ring_write("\r\n", 2);
            n++;
        }
        s += n;
        len -= n;
    }
}

void console_puts(const char *s)
{
    console_write(s, strlen(s));
}

void console_printf(const char *fmt, ...)
{
    /* Big enough for a check line quoting a whole guest command line. */
    static char buf[3072];
    va_list ap;
    size_t len;

    va_start(ap, fmt);
    len = vformat(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    console_write(buf, len);
}

static bool input_ready(void)
{
    if ( ring )
        return ring->in_cons != ring->in_prod;
    if ( input_pos == input_len )
    {
        long n = hypervisor_console_io(CONSOLEIO_read, sizeof(input), input);

        input_pos = 0;
        input_len = n > 0 ? n : 0;
    }
    return input_pos < input_len;
}

char console_getc(void)
{
    XENCONS_RING_IDX cons;
    char c;

    wait_for(input_ready, 0);
    if ( !ring )
        return input[input_pos++];

    cons = ring->in_cons;
    rmb();
    c = ring->in[MASK_XENCONS_IDX(cons, ring->in)];
    mb();
    ring->in_cons = cons + 1;
    notify();
    return c;
}

bool console_flush(uint64_t timeout_ns)
{
    return !ring || wait_for(ring_drained, time_now_ns() + timeout_ns);
}
