#include <probe/detail.h>

void detail_add(struct detail *d, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    d->len += vformat(d->text + d->len, sizeof(d->text) - d->len, fmt, ap);
    va_end(ap);
}

void detail_add_escaped(struct detail *d, const char *s, size_t max)
{
    for ( ; max && *s; s++, max-- )
        if ( *s >= ' ' && *s <= '~' && *s != '\\' && *s != '"' )
            detail_add(d, "%c", *s);
        else
            detail_add(d, "\\x%02x", (unsigned char)*s);
}
