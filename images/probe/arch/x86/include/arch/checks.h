/* The checks arch/x86 implements (the contract is probe/check.h). */
#ifndef ARCH_CHECKS_H
#define ARCH_CHECKS_H

#include <probe/check.h>

/* arch/x86/check-linear-pt.c */
enum check_status check_linear_pt(struct detail *d);
/* arch/x86/check-traps.c */
enum check_status check_trap_syscall(struct detail *d);
enum check_status check_trap_user_int(struct detail *d);
enum check_status check_trap_int3(struct detail *d);
enum check_status check_trap_single_step(struct detail *d);
enum check_status check_trap_watchpoint(struct detail *d);

#endif
