/*
 * The guest command line (start_info cmd_line), copied at boot with a
 * guaranteed terminator.
 */
#ifndef PROBE_CMDLINE_H
#define PROBE_CMDLINE_H

void cmdline_init(void);
const char *cmdline(void);

/*
 * The value of "key=" where key starts the line or follows a space. The value
 * runs to the end of the line (so "probe.run=panic oops" keeps its space):
 * such an option must come last. NULL when absent.
 */
const char *cmdline_value(const char *key);

#endif
