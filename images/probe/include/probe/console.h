/*
 * The probe's console: the PV console ring (start_info console page and
 * event channel, served by xenconsoled) for a domU; HYPERVISOR_console_io
 * for dom0, which has no ring. Writes never drop bytes: a full ring waits
 * for the backend.
 */
#ifndef PROBE_CONSOLE_H
#define PROBE_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <probe/format.h>

/* Returns 0, or -1 if the ring cannot be mapped. Needs xen_shared_info. */
long console_init(void);

/* "ring" or "console_io". */
const char *console_kind(void);

/*
 * '\n' becomes "\r\n" on the ring, as a terminal expects; Xen's serial
 * driver already does that for console_io.
 */
void console_write(const char *s, size_t len);
void console_puts(const char *s);
void console_printf(const char *fmt, ...) PRINTF(1, 2);

/* Next input byte; blocks until there is one. */
char console_getc(void);

/* Wait until the backend has read everything written, up to timeout_ns. */
bool console_flush(uint64_t timeout_ns);

#endif
