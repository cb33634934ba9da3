#include <probe/setup.h>

#include <arch/cpu.h>
#include <arch/time.h>

/*
 * (delta * mul) >> 32 in 64-bit arithmetic, which pv32 has without a
 * 128-bit product: the high half of delta contributes delta_hi * mul whole.
 */
static uint64_t scale(uint64_t delta, uint32_t mul)
{
    return (((delta & 0xffffffff) * mul) >> 32) + (delta >> 32) * mul;
}

/* The TSC extrapolation documented with struct vcpu_time_info in xen.h. */
uint64_t time_now_ns(void)
{
    const volatile struct vcpu_time_info *t =
        &xen_shared_info->vcpu_info[0].time;
    uint32_t version;
    uint64_t now;

    do
    {
        uint64_t delta;

        version = t->version;
        rmb();
        delta = rdtsc() - t->tsc_timestamp;
        if ( t->tsc_shift < 0 )
            delta >>= -t->tsc_shift;
        else
            delta <<= t->tsc_shift;
        now = t->system_time + scale(delta, t->tsc_to_system_mul);
        rmb();
    } while ( (version & 1) || version != t->version );

    return now;
}
