/*
 * The 64-bit division libgcc provides, which GCC calls for uint64_t / and %
 * in 32-bit code: Debian's 32-bit libgcc comes only with gcc-multilib, and
 * the probe needs no more than this (times, counters, number formatting).
 */
#include <stdint.h>

uint64_t __udivmoddi4(uint64_t n, uint64_t d, uint64_t *remainder);
uint64_t __udivdi3(uint64_t n, uint64_t d);
uint64_t __umoddi3(uint64_t n, uint64_t d);

/* Shift-and-subtract, one quotient bit a step. */
uint64_t __udivmoddi4(uint64_t n, uint64_t d, uint64_t *remainder)
{
    uint64_t q = 0, r = 0;
    int bit;

    for ( bit = 63; bit >= 0; bit-- )
    {
        r = (r << 1) | ((n >> bit) & 1);
        if ( r >= d )
        {
            r -= d;
            q |= (uint64_t)1 << bit;
        }
    }
    *remainder = r;
    return q;
}

uint64_t __udivdi3(uint64_t n, uint64_t d)
{
    uint64_t r;

    return __udivmoddi4(n, d, &r);
}

uint64_t __umoddi3(uint64_t n, uint64_t d)
{
    uint64_t r;

    __udivmoddi4(n, d, &r);
    return r;
}
