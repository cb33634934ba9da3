/*
 * Entry points Xen jumps to: the kernel entry (ENTRY note) and the event
 * and failsafe callbacks registered with HYPERVISOR_set_callbacks.
 */
#include <probe/xen.h>
#include <arch/hypercall.h>

#define STACK_SIZE 16384

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
        .globl  probe_upcall_entry
        .type   probe_upcall_entry, @function
/*
 * Xen's bounce frame on our stack: RCX, R11, then an IRET frame (RIP, CS,
 * RFLAGS, RSP, SS), upcall masked. Restore RCX and R11, save what C may
 * clobber, and return through HYPERVISOR_iret: its stub pushes RCX, R11 and
 * RAX itself and wants a flags word (0: not a syscall return) on top of the
 * IRET frame. Xen unmasks the upcall again from the saved RFLAGS.IF.
 */
probe_upcall_entry:
        pop     %rcx
        pop     %r11
        push    %rax
        push    %rcx
        push    %rdx
        push    %rsi
        push    %rdi
        push    %r8
        push    %r9
        push    %r10
        push    %r11
        push    %rbp
        mov     %rsp, %rbp
        and     $-16, %rsp
        call    probe_upcall
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
        pushq   $0
        jmp     hypercall_page + __HYPERVISOR_iret * HYPERCALL_STUB_SIZE
        .size   probe_upcall_entry, . - probe_upcall_entry

        .globl  probe_failsafe_entry
        .type   probe_failsafe_entry, @function
/* Nothing to return to: report and crash the domain. */
probe_failsafe_entry:
        and     $-16, %rsp
        call    probe_failsafe
        ud2
        .size   probe_failsafe_entry, . - probe_failsafe_entry

        .bss
        .balign 16
boot_stack:
        .skip   STACK_SIZE
boot_stack_top:
