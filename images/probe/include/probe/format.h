/*
 * printf-style formatting into a buffer. Supports %d %i %u %x %p %s %c %%,
 * the 'l', 'll' and 'z' sizes, a '0' flag, a width, and '#' for 0x prefixes.
 */
#ifndef PROBE_FORMAT_H
#define PROBE_FORMAT_H

#include <stdarg.h>
#include <stddef.h>

#define PRINTF(fmt_arg, first_arg) \
    __attribute__((format(printf, fmt_arg, first_arg)))

/* Like vsnprintf: always NUL-terminates, returns the length written. */
size_t vformat(char *buf, size_t size, const char *fmt, va_list ap);

#endif
