/*
 * pv32 entry points, the counterpart of entry_64.S for an i386 kernel in
 * ring 1: the kernel entry, the callbacks and trap stubs and the way into
 * user mode and back.
 */
#include <probe/xen.h>
#include <arch/hypercall.h>
#include <arch/traps.h>

#define STACK_SIZE 16384
#define HYPERCALL_IRET (hypercall_page + __HYPERVISOR_iret * HYPERCALL_STUB_SIZE)

        .section .text.entry, "ax", @progbits
        .globl  _start
        .type   _start, @function
/* Xen starts us with esi = start_info and a stack of its choosing. */
_start:
        cld
        mov     $boot_stack_top, %esp
        xor     %ebp, %ebp
        push    %esi
        call    probe_main
        ud2
        .size   _start, . - _start

        .text
        TRAP_ENTRIES

/*
 * Save every register (struct trap_frame) with the kernel's data segments
 * loaded (from ring 3 they hold user selectors, or null), call probe_trap,
 * and return through HYPERVISOR_iret: its stub pushes EAX itself. Xen
 * restores the upcall mask from the saved EFLAGS.IF.
 */
        TRAP_COMMON_32 FLAT_KERNEL_DS, jmp HYPERCALL_IRET

        .globl  probe_failsafe_entry
        .type   probe_failsafe_entry, @function
/* Nothing to return to: report and crash the domain. */
probe_failsafe_entry:
        call    probe_failsafe
        ud2
        .size   probe_failsafe_entry, . - probe_failsafe_entry

/*
 * probe_user_enter(ip, sp): keep the callee-saved registers and the stack
 * for probe_user_return, then HYPERVISOR_iret to ring 3 with IF clear, so
 * the upcall stays masked there.
 */
        .globl  probe_user_enter
        .type   probe_user_enter, @function
probe_user_enter:
        mov     4(%esp), %ecx
        mov     8(%esp), %edx
        push    %ebx
        push    %ebp
        push    %esi
        push    %edi
        mov     %esp, user_return_sp
        push    $FLAT_USER_SS
        push    %edx
        push    $2
        push    $FLAT_USER_CS
        push    %ecx
        jmp     HYPERCALL_IRET
        .size   probe_user_enter, . - probe_user_enter

/* probe_user_return(value): probe_user_enter returns value. */
        .globl  probe_user_return
        .type   probe_user_return, @function
probe_user_return:
        mov     4(%esp), %eax
        mov     user_return_sp, %esp
        pop     %edi
        pop     %esi
        pop     %ebp
        pop     %ebx
        ret
        .size   probe_user_return, . - probe_user_return

        .bss
        .balign 4
user_return_sp:
        .skip   4
        .balign 16
boot_stack:
        .skip   STACK_SIZE
boot_stack_top:
