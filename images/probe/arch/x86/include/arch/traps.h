/*
 * Traps: Xen bounces exceptions, software interrupts, the pv64 syscall and
 * the event upcall to entry stubs (entry_64.S / entry_32.S) that build a
 * struct trap_frame and call probe_trap(). User mode shares the kernel's
 * page tables; probe_user_enter() runs user code until it enters the kernel
 * again, whichever way, and returns the vector it came back through.
 */
#ifndef ARCH_TRAPS_H
#define ARCH_TRAPS_H

/* Not CPU vectors: how the syscall callback and the upcall reach probe_trap. */
#define TRAP_SYSCALL 0x100
#define TRAP_UPCALL  0x101
/* The DPL 3 trap gate user mode calls with `int $N`. */
#define TRAP_SOFT_INT 0x20
/* pv32's system call (FreeBSD i386's `int $0x80`). */
#define TRAP_INT80 0x80

#define X86_EFLAGS_TF 0x100

#ifdef __x86_64__
/* rax, rcx, rdx, rsi, rdi, r8-r11 as the stub saved them. */
#define TRAP_SAVED_WORDS 9
#else
/* pushal's eight, es, ds. */
#define TRAP_SAVED_WORDS 10
#endif

#ifdef __ASSEMBLY__

/* Assembly, which clang-format would take for C. */
/* clang-format off */

/*
 * Xen's bounce frame: pv64: RCX, R11, [error code], then an IRET frame
 * (RIP, CS, RFLAGS, RSP, SS); pv32: [error code], EIP, CS, EFLAGS, and
 * ESP, SS when it came from ring 3. Each stub restores RCX and R11 (pv64),
 * pushes an error code where the CPU gives none, and the vector, for the
 * trap_common of entry_*.S.
 */
.macro TRAP_ENTRY name, vector, has_error_code=0
        .globl  \name
        .type   \name, @function
\name:
#ifdef __x86_64__
        pop     %rcx
        pop     %r11
#endif
        .if !\has_error_code
        push    $0
        .endif
        push    $\vector
        jmp     trap_common
        .size   \name, . - \name
.endm

/*
 * Every entry Xen is told about (callbacks and trap table, traps.c):
 * name, vector, whether the CPU pushes an error code.
 */
.macro TRAP_ENTRIES
        TRAP_ENTRY probe_upcall_entry, TRAP_UPCALL
#ifdef __x86_64__
        TRAP_ENTRY probe_syscall_entry, TRAP_SYSCALL
#endif
        TRAP_ENTRY probe_trap_db, 1
        TRAP_ENTRY probe_trap_bp, 3
        TRAP_ENTRY probe_trap_ud, 6
        TRAP_ENTRY probe_trap_gp, 13, 1
        TRAP_ENTRY probe_trap_pf, 14, 1
        TRAP_ENTRY probe_trap_soft, TRAP_SOFT_INT
        TRAP_ENTRY probe_trap_int80, TRAP_INT80
.endm

/*
 * The 32-bit trap_common (pv32pae, pvh32): save every register (struct
 * trap_frame) with the kernel's data segments loaded, call probe_trap,
 * restore, drop vector and error code, and return the guest type's way.
 */
.macro TRAP_COMMON_32 kernel_ds, return:vararg
        .type   trap_common, @function
trap_common:
        push    %ds
        push    %es
        pushal
        mov     $\kernel_ds, %eax
        mov     %eax, %ds
        mov     %eax, %es
        mov     %esp, %eax
        push    %eax
        call    probe_trap
        add     $4, %esp
        popal
        pop     %es
        pop     %ds
        add     $8, %esp
        \return
        .size   trap_common, . - trap_common
.endm

/* clang-format on */

#else

#include <stdbool.h>

struct trap_frame {
    unsigned long saved[TRAP_SAVED_WORDS];
    unsigned long vector, error_code;
    /* The frame Xen built; cs carries the saved upcall mask above bit 15. */
    unsigned long ip, cs, flags;
};

/* What the last trap from user mode looked like. */
struct trap_record {
    unsigned long vector, error_code, ip, cs;
};

/* The entry points Xen is told about with HYPERVISOR_set_callbacks. */
extern char probe_upcall_entry[], probe_failsafe_entry[];

/* Called by the entry stubs, upcall included. */
void probe_trap(struct trap_frame *f);
/* Called from the failsafe entry: Xen could not load our segment state. */
void __attribute__((noreturn)) probe_failsafe(void);

/*
 * A kernel-mode trap goes to the hook; it returns false for a trap it did
 * not expect (the probe then stops with PROBE fatal). May change f->flags.
 */
typedef bool (*trap_hook_fn)(struct trap_frame *f);

/*
 * Install the trap table (and what user mode needs: a kernel stack, user
 * page tables or user-accessible pages), with hook for kernel-mode traps.
 * traps_disable() clears the table again, so `fault` still finds none.
 */
long traps_enable(trap_hook_fn hook);
void traps_disable(void);

/* Run user code at ip until it traps; *how says what came back. */
void user_run(void (*ip)(void), struct trap_record *how);

static inline bool trap_from_user(unsigned long cs)
{
    return (cs & 3) == 3;
}

/* The way into user mode and back (entry_*.S): enter returns return's value. */
unsigned long probe_user_enter(unsigned long ip, unsigned long sp);
void __attribute__((noreturn)) probe_user_return(unsigned long value);

/*
 * The sequences the checks run (trap-code.S) and where their traps must
 * point.
 */
void probe_user_syscall(void), probe_user_int(void);
void probe_int3(void), probe_single_step(void),
    probe_watch_write(volatile unsigned int *p);
extern char probe_int3_after[], probe_ss_2[], probe_ss_3[], probe_watch_after[],
    probe_user_syscall_after[], probe_user_int_after[];

#endif /* __ASSEMBLY__ */
#endif
