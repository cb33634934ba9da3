/*
 * pvh32 entry points: Xen starts a PVH guest at its PHYS32_ENTRY in 32-bit
 * protected mode, paging off, flat segments, %ebx = struct hvm_start_info,
 * but with no GDT or IDT of its own: the probe brings a flat GDT, and the
 * trap stubs the IDT (arch/x86/pvh.c) points at, returning with iret.
 */
#include <probe/xen.h>
#include <arch/pvh.h>
#include <arch/traps.h>

#define STACK_SIZE 16384

        .section .text.entry, "ax", @progbits
        .globl  _start
        .type   _start, @function
_start:
        cld
        lgdt    gdt_descriptor
        ljmp    $PVH_KERNEL_CS, $1f
1:      mov     $PVH_KERNEL_DS, %eax
        mov     %eax, %ds
        mov     %eax, %es
        mov     %eax, %ss
        mov     %eax, %fs
        mov     %eax, %gs
        mov     $boot_stack_top, %esp
        xor     %ebp, %ebp
        push    %ebx
        call    pvh_start
        ud2
        .size   _start, . - _start

        .text
        TRAP_ENTRIES

/*
 * Save every register (struct trap_frame, as pv32's), call probe_trap, and
 * return with iret, which restores EFLAGS.IF: the upcall's interrupt gate
 * cleared it.
 */
        TRAP_COMMON_32 PVH_KERNEL_DS, iret

        .section .rodata
        .balign 8
/* Null, then flat 4 GiB code and data, ring 0. */
gdt:
        .quad   0
        .quad   0x00cf9a000000ffff
        .quad   0x00cf92000000ffff
gdt_end:
gdt_descriptor:
        .word   gdt_end - gdt - 1
        .long   gdt

        .bss
        .balign 16
boot_stack:
        .skip   STACK_SIZE
boot_stack_top:
