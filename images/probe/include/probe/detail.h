/* A check's detail text: the rest of its "PROBE check" line. */
#ifndef PROBE_DETAIL_H
#define PROBE_DETAIL_H

#include <stddef.h>

#include <probe/format.h>

struct detail {
    char text[2048];
    size_t len;
};

static inline void detail_clear(struct detail *d)
{
    d->len = 0;
    d->text[0] = '\0';
}

void detail_add(struct detail *d, const char *fmt, ...) PRINTF(2, 3);
/* Append s with anything unprintable shown as \xNN, so a line stays a line. */
void detail_add_escaped(struct detail *d, const char *s, size_t max);

#endif
