/*
 * The instruction sequences the trap checks run (arch/x86/check-traps.c),
 * each with a label where Xen's trap frame must point.
 */
#include <arch/traps.h>

#ifdef __x86_64__
#define SP %rsp
#else
#define SP %esp
#endif

.macro FUNCTION name
        .globl  \name
        .type   \name, @function
\name:
.endm

        .text
/* A ddb breakpoint: #BP is a trap, its frame points after the int3. */
FUNCTION probe_int3
        int3
        .globl  probe_int3_after
probe_int3_after:
        ret
        .size   probe_int3, . - probe_int3

/* ddb's `s`: POPF sets TF, the instruction after it is the first stepped. */
FUNCTION probe_single_step
        pushf
        orw     $X86_EFLAGS_TF, (SP)
        popf
        .globl  probe_ss_1, probe_ss_2, probe_ss_3
probe_ss_1:
        nop
probe_ss_2:
        nop
probe_ss_3:
        ret
        .size   probe_single_step, . - probe_single_step

/* A ddb watchpoint: a data breakpoint is a trap after the write. */
FUNCTION probe_watch_write
#ifdef __x86_64__
        movl    $1, (%rdi)
#else
        mov     4(%esp), %eax
        movl    $1, (%eax)
#endif
        .globl  probe_watch_after
probe_watch_after:
        ret
        .size   probe_watch_write, . - probe_watch_write

/* User mode: the round trips, each ending in the kernel through a trap. */
        .section .text.user, "ax", @progbits
/* The system call FreeBSD uses: `syscall` on amd64, `int $0x80` on i386. */
FUNCTION probe_user_syscall
#ifdef __x86_64__
        syscall
#else
        int     $TRAP_INT80
#endif
        .globl  probe_user_syscall_after
probe_user_syscall_after:
        ud2
        .size   probe_user_syscall, . - probe_user_syscall

FUNCTION probe_user_int
        int     $TRAP_SOFT_INT
        .globl  probe_user_int_after
probe_user_int_after:
        ud2
        .size   probe_user_int, . - probe_user_int
