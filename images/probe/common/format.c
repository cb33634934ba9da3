#include <stdbool.h>
#include <stdint.h>

#include <probe/format.h>

struct out {
    char *buf;
    size_t size, len;
};

static void put(struct out *o, char c)
{
    if ( o->len + 1 < o->size )
        o->buf[o->len++] = c;
}

static void put_number(struct out *o, uint64_t value, unsigned int base,
                       bool negative, bool alt, unsigned int width, char pad)
{
    char digits[24];
    unsigned int n = 0;

    do
    {
        digits[n++] = "0123456789abcdef"[value % base];
        value /= base;
    } while ( value );

    if ( negative )
        width = width ? width - 1 : 0;
    if ( alt )
        width = width > 2 ? width - 2 : 0;
    if ( pad == ' ' )
        for ( ; width > n; width-- )
            put(o, ' ');
    if ( negative )
        put(o, '-');
    if ( alt )
    {
        put(o, '0');
        put(o, 'x');
    }
    for ( ; width > n; width-- )
        put(o, '0');
    while ( n )
        put(o, digits[--n]);
}

size_t vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct out o = { buf, size, 0 };

    for ( ; *fmt; fmt++ )
    {
        bool alt = false;
        char pad = ' ';
        unsigned int width = 0, longs = 0;
        uint64_t u;
        int64_t s;

        if ( *fmt != '%' )
        {
            put(&o, *fmt);
            continue;
        }
        fmt++;
        for ( ; *fmt == '#' || *fmt == '0'; fmt++ )
            if ( *fmt == '#' )
                alt = true;
            else
                pad = '0';
        for ( ; *fmt >= '0' && *fmt <= '9'; fmt++ )
            width = width * 10 + (*fmt - '0');
        for ( ; *fmt == 'l' || *fmt == 'z'; fmt++ )
            longs++;

        switch ( *fmt )
        {
        case 'd':
        case 'i':
            s = longs > 1 ? va_arg(ap, long long)
                : longs   ? va_arg(ap, long)
                          : va_arg(ap, int);
            put_number(&o, s < 0 ? -(uint64_t)s : (uint64_t)s, 10, s < 0, false,
                       width, pad);
            break;
        case 'u':
        case 'x':
            u = longs > 1 ? va_arg(ap, unsigned long long)
                : longs   ? va_arg(ap, unsigned long)
                          : va_arg(ap, unsigned int);
            put_number(&o, u, *fmt == 'u' ? 10 : 16, false, alt && *fmt == 'x',
                       width, pad);
            break;
        case 'p':
            put_number(&o, (uintptr_t)va_arg(ap, void *), 16, false, true,
                       width, pad);
            break;
        case 'c':
            put(&o, (char)va_arg(ap, int));
            break;
        case 's':
        {
            const char *str = va_arg(ap, const char *);
            size_t len = 0;

            if ( !str )
                str = "(null)";
            while ( str[len] )
                len++;
            for ( ; width > len; width-- )
                put(&o, ' ');
            while ( *str )
                put(&o, *str++);
            break;
        }
        case '%':
            put(&o, '%');
            break;
        default:
            /* Unknown conversion: show it rather than guess its argument. */
            put(&o, '%');
            if ( !*fmt )
                goto done;
            put(&o, *fmt);
            break;
        }
    }
done:
    if ( size )
        buf[o.len] = '\0';
    return o.len;
}
