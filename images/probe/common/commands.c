#include <probe/cmdline.h>
#include <probe/commands.h>
#include <probe/console.h>
#include <probe/errno.h>
#include <probe/events.h>
#include <probe/setup.h>
#include <probe/string.h>
#include <probe/time.h>
#include <probe/version.h>
#include <xen/sched.h>
#include <xen/version.h>

#include <arch/commands.h>
#include <arch/cpu.h>
#include <arch/hypercall.h>
#include <arch/page.h>
#include <arch/time.h>

#define PROMPT   "probe> "
#define LINE_LEN 256
/* How long output may take to reach the backend before the domain goes away. */
#define FLUSH_NS SECONDS(2)

struct command {
    const char *name;
    const char *help;
    void (*run)(const char *arg);
};

static void cmd_help(const char *arg);

static void cmd_info(const char *arg)
{
    static xen_extraversion_t extra;
    long version = hypervisor_xen_version(XENVER_version, NULL);

    (void)arg;
    hypervisor_xen_version(XENVER_extraversion, extra);
    extra[sizeof(extra) - 1] = '\0';
    console_printf("info probe %s\n", PROBE_VERSION);
    console_printf("info xen %ld.%ld%s\n", version >> 16, version & 0xffff,
                   extra);
    console_printf("info domain %s\n", is_initial_domain() ? "dom0" : "domU");
    console_printf("info console %s\n", console_kind());
    console_printf("info nr_pages %lu\n", xen_start_info->nr_pages);
    console_printf("info cmdline %s\n", cmdline());
    console_printf("info start_to_result_us %lu\n",
                   AS_US(probe_result_ns - probe_started_ns));
    console_printf("info since_start_us %lu\n",
                   AS_US(time_now_ns() - probe_started_ns));
}

static void cmd_echo(const char *arg)
{
    console_printf("%s\n", arg);
}

/* A debug Xen prints a domU's console_io lines as "(dN) TEXT"; a release Xen refuses. */
static void cmd_xenprint(const char *arg)
{
    static char line[LINE_LEN + 1];
    size_t n = strlen(arg);
    long rc;

    memcpy(line, arg, n);
    line[n++] = '\n';
    rc = hypervisor_console_io(CONSOLEIO_write, n, line);
    if ( rc < 0 )
        console_printf("xenprint: console_io denied (" RC_FMT
                       "): this Xen keeps a domU's"
                       " text out of its console\n",
                       RC_ARGS(rc));
    else
        console_printf("xenprint: %zu bytes written to Xen's console\n", n);
}

/* Like a kernel panic without a debugger: say why, then stop for good. */
static void __attribute__((noreturn, noinline)) probe_panic(const char *arg)
{
    console_printf("panic: %s\n", arg);
    for ( ;; )
        hypervisor_sched_op(SCHEDOP_block, NULL);
}

/* A page fault with no trap table registered: Xen crashes the domain. */
static void __attribute__((noinline)) probe_fault(const char *arg)
{
    (void)arg;
    console_printf(
        "fault: reading unmapped address %#lx with no page-fault handler\n",
        (unsigned long)PROBE_UNMAPPED_VA);
    console_flush(FLUSH_NS);
    (void)*(volatile const uint8_t *)PROBE_UNMAPPED_VA;
    console_printf("fault: the read came back, Xen did not crash the domain\n");
}

/* Silent and unresponsive, with a name a RIP dump can show. */
static void __attribute__((noreturn, noinline)) probe_hang_loop(const char *arg)
{
    (void)arg;
    events_mask();
    for ( ;; )
        cpu_relax();
}

static void __attribute__((noreturn)) cmd_flood(const char *arg)
{
    unsigned long n;

    (void)arg;
    for ( n = 0;; n++ )
        console_printf(
            "flood %010lu ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
            "0123456789\n",
            n);
}

static void shutdown(unsigned int reason, const char *name)
{
    struct sched_shutdown op = { .reason = reason };
    long rc;

    console_flush(FLUSH_NS);
    rc = hypervisor_sched_op(SCHEDOP_shutdown, &op);
    if ( rc )
    {
        console_printf("%s: SCHEDOP_shutdown refused (" RC_FMT ")\n", name,
                       RC_ARGS(rc));
        return;
    }
    /* The vCPU is descheduled for good once Xen acts on it. */
    for ( ;; )
        hypervisor_sched_op(SCHEDOP_block, NULL);
}

static void cmd_poweroff(const char *arg)
{
    (void)arg;
    shutdown(SHUTDOWN_poweroff, "poweroff");
}

static void cmd_reboot(const char *arg)
{
    (void)arg;
    shutdown(SHUTDOWN_reboot, "reboot");
}

static const struct command commands[] = {
    { "help", "list the commands", cmd_help },
    { "info", "probe, Xen and domain facts, one 'info <key> <value>' a line",
      cmd_info },
    { "echo", "echo TEXT: print TEXT on a line of its own", cmd_echo },
    { "xenprint",
      "xenprint TEXT: TEXT to Xen's console (console_io), or why not",
      cmd_xenprint },
    { "badpte",
      "MMU_UPDATE with a bad L1 entry: Xen's return code (a debug Xen logs why)",
      cmd_badpte },
    { "panic", "panic TEXT: print 'panic: TEXT' and stop for good",
      probe_panic },
    { "fault", "page fault with no handler: Xen crashes the domain",
      probe_fault },
    { "hang", "busy loop in probe_hang_loop, silent, events masked",
      probe_hang_loop },
    { "flood", "print numbered lines forever", cmd_flood },
    { "poweroff", "SCHEDOP_shutdown poweroff", cmd_poweroff },
    { "reboot", "SCHEDOP_shutdown reboot", cmd_reboot },
    { NULL, NULL, NULL },
};

static void cmd_help(const char *arg)
{
    const struct command *c;

    (void)arg;
    for ( c = commands; c->name; c++ )
        console_printf("help %s %s\n", c->name, c->help);
}

/* Run one command line: a name, then optionally a space and its argument. */
static void run_line(const char *line)
{
    const struct command *c;
    size_t n = 0;

    while ( line[n] && line[n] != ' ' )
        n++;
    if ( !n )
        return;
    for ( c = commands; c->name; c++ )
        if ( strlen(c->name) == n && !strncmp(c->name, line, n) )
        {
            c->run(line[n] ? line + n + 1 : "");
            return;
        }
    console_printf("unknown command: %s (try help)\n", line);
}

void commands_run_list(const char *list)
{
    static char line[LINE_LEN];

    while ( list && *list )
    {
        size_t n = 0;

        while ( list[n] && list[n] != ',' )
            n++;
        if ( n >= sizeof(line) )
            n = sizeof(line) - 1;
        memcpy(line, list, n);
        line[n] = '\0';
        console_printf(PROMPT "%s\n", line);
        run_line(line);
        list += n;
        while ( *list && *list != ',' )
            list++;
        if ( *list == ',' )
            list++;
    }
}

void commands_loop(void)
{
    static char line[LINE_LEN];
    size_t len = 0;
    char previous = 0;

    console_puts(PROMPT);
    for ( ;; )
    {
        char c = console_getc();

        if ( c == '\n' && previous == '\r' )
        {
            /* The second half of a CR LF already ended the line. */
            previous = 0;
            continue;
        }
        previous = c;

        if ( c == '\r' || c == '\n' )
        {
            console_puts("\n");
            line[len] = '\0';
            run_line(line);
            len = 0;
            console_puts(PROMPT);
        }
        else if ( c == '\b' || c == 0x7f )
        {
            if ( len )
            {
                len--;
                console_puts("\b \b");
            }
        }
        else if ( c >= ' ' && c <= '~' && len + 1 < sizeof(line) )
        {
            line[len++] = c;
            console_write(&c, 1);
        }
    }
}
