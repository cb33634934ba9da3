#include <probe/boot.h>
#include <probe/time.h>

#include <arch/cpu.h>

/* The TSC extrapolation documented with struct vcpu_time_info in xen.h. */
uint64_t time_now_ns(void)
{
    const volatile struct vcpu_time_info *t = &xen_shared_info->vcpu_info[0].time;
    uint32_t version;
    uint64_t now;

    do {
        uint64_t delta;

        version = t->version;
        rmb();
        delta = rdtsc() - t->tsc_timestamp;
        if ( t->tsc_shift < 0 )
            delta >>= -t->tsc_shift;
        else
            delta <<= t->tsc_shift;
        now = t->system_time +
              (uint64_t)(((unsigned __int128)delta * t->tsc_to_system_mul) >> 32);
        rmb();
    } while ( (version & 1) || version != t->version );

    return now;
}
