/*
 * pv64 entry points: the kernel entry (ENTRY note), the callbacks and trap
 * stubs Xen bounces to, and the way into user mode and back.
 */
#include <probe/xen.h>
#include <arch/hypercall.h>
#include <arch/traps.h>

#define STACK_SIZE 16384
#define HYPERCALL_IRET (hypercall_page + __HYPERVISOR_iret * HYPERCALL_STUB_SIZE)

        .section .text.entry, "ax", @progbits
        .globl  _start
        .type   _start, @function
/* Xen starts us with rsi = start_info and a stack of its choosing. */
_start:
        cld
        lea     boot_stack_top(%rip), %rsp
        xor     %ebp, %ebp
        mov     %rsi, %rdi
        call    probe_main
        ud2
        .size   _start, . - _start

        .text
        TRAP_ENTRIES

/*
 * Save what C may clobber (struct trap_frame), call probe_trap, and return
 * through HYPERVISOR_iret: its stub pushes RCX, R11 and RAX itself and
 * wants a flags word (0: not a syscall return) on top of the IRET frame.
 * Xen restores the upcall mask from the saved RFLAGS.IF.
 */
        .type   trap_common, @function
trap_common:
        push    %rax
        push    %rcx
        push    %rdx
        push    %rsi
        push    %rdi
        push    %r8
        push    %r9
        push    %r10
        push    %r11
        mov     %rsp, %rdi
        push    %rbp
        mov     %rsp, %rbp
        and     $-16, %rsp
        call    probe_trap
        mov     %rbp, %rsp
        pop     %rbp
        pop     %r11
        pop     %r10
        pop     %r9
        pop     %r8
        pop     %rdi
        pop     %rsi
        pop     %rdx
        pop     %rcx
        pop     %rax
        add     $16, %rsp
        pushq   $0
        jmp     HYPERCALL_IRET
        .size   trap_common, . - trap_common

        .globl  probe_failsafe_entry
        .type   probe_failsafe_entry, @function
/* Nothing to return to: report and crash the domain. */
probe_failsafe_entry:
        and     $-16, %rsp
        call    probe_failsafe
        ud2
        .size   probe_failsafe_entry, . - probe_failsafe_entry

/*
 * probe_user_enter(ip, sp): keep the callee-saved registers and the stack
 * for probe_user_return, then HYPERVISOR_iret to user mode (CS RPL 3) with
 * IF clear, so the upcall stays masked there.
 */
        .globl  probe_user_enter
        .type   probe_user_enter, @function
probe_user_enter:
        push    %rbx
        push    %rbp
        push    %r12
        push    %r13
        push    %r14
        push    %r15
        mov     %rsp, user_return_sp(%rip)
        pushq   $FLAT_USER_SS
        push    %rsi
        pushq   $2
        pushq   $FLAT_USER_CS
        push    %rdi
        pushq   $0
        jmp     HYPERCALL_IRET
        .size   probe_user_enter, . - probe_user_enter

/* probe_user_return(value): probe_user_enter returns value. */
        .globl  probe_user_return
        .type   probe_user_return, @function
probe_user_return:
        mov     user_return_sp(%rip), %rsp
        mov     %rdi, %rax
        pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %rbp
        pop     %rbx
        ret
        .size   probe_user_return, . - probe_user_return

        .bss
        .balign 8
user_return_sp:
        .skip   8
        .balign 16
boot_stack:
        .skip   STACK_SIZE
boot_stack_top:
