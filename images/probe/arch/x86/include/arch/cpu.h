/* The few CPU instructions common code needs. */
#ifndef ARCH_CPU_H
#define ARCH_CPU_H

#include <stdint.h>

#define barrier() __asm__ volatile("" ::: "memory")

/*
 * x86 orders loads with loads and stores with stores, so read and write
 * barriers only have to stop the compiler; a store followed by a load (ring
 * index handshakes) needs the full fence.
 */
#define rmb() barrier()
#define wmb() barrier()
#define mb()  __asm__ volatile("mfence" ::: "memory")

static inline void cpu_relax(void)
{
    __asm__ volatile("pause" ::: "memory");
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

#endif
