/* The boot checks, run in their order (common/checks.c). */
#ifndef PROBE_CHECKS_H
#define PROBE_CHECKS_H

/* Each check's line and outcome go to the report (probe/report.h). */
void checks_run(void);

#endif
