#include <probe/console.h>
#include <probe/report.h>
#include <probe/setup.h>
#include <probe/time.h>
#include <probe/version.h>

/* How long the fatal line may take to reach the backend before the crash. */
#define FATAL_FLUSH_NS SECONDS(2)

/* " <name>" for each failed check, in order. */
static struct detail failed;

void report_begin(void)
{
    console_printf("PROBE begin freebsd-xen-ci probe %s\n", PROBE_VERSION);
}

void report_check(const char *name, enum check_status status,
                  const struct detail *d)
{
    static const char *const status_names[] = {
        [CHECK_OK] = "ok",
        [CHECK_FAIL] = "fail",
        [CHECK_SKIP] = "skip",
    };

    console_printf("PROBE check %s %s %s\n", name, status_names[status],
                   d->len ? d->text : "-");
    if ( status == CHECK_FAIL )
        detail_add(&failed, " %s", name);
}

void report_result(void)
{
    console_printf("PROBE result %s%s\n", failed.len ? "FAILURE" : "SUCCESS",
                   failed.text);
}

void report_fatal(const char *why)
{
    console_printf(FATAL_PREFIX "%s\n", why);
    console_flush(FATAL_FLUSH_NS);
    domain_crash();
}
