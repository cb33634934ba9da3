#include <probe/check.h>
#include <probe/checks.h>
#include <probe/report.h>

void checks_run(void)
{
    static struct detail d;
    const struct check *c;

    for ( c = probe_checks; c < probe_checks_end; c++ )
    {
        enum check_status status;

        detail_clear(&d);
        status = c->run(&d);
        report_check(c->name, status, &d);
    }
}
