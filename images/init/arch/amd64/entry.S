/*
 * images/init on FreeBSD amd64: the entry point and the system call stub.
 *
 * System calls: number in %rax, arguments in %rdi %rsi %rdx %r10 %r8 %r9,
 * `syscall`; the kernel sets the carry flag on error, with the errno in
 * %rax (sys/amd64/amd64/trap.c, amd64_syscall / cpu_set_syscall_retval).
 */
	.text

/*
 * The kernel enters with %rsp at argc, argv[] following (its exec_setregs
 * also puts that pointer in %rdi). Align the stack for the C code and never
 * return: there is nothing to return to.
 */
	.globl	_start
	.type	_start, @function
_start:
	xorl	%ebp, %ebp
	movq	%rsp, %rdi
	andq	$-16, %rsp
	call	init_main
	hlt
	.size	_start, . - _start

/* long sys_call(long number, long a1, ..., long a6): the result, or minus
 * the errno. C passes number, a1..a5 in registers and a6 on the stack. */
	.globl	sys_call
	.type	sys_call, @function
sys_call:
	movq	%rdi, %rax
	movq	%rsi, %rdi
	movq	%rdx, %rsi
	movq	%rcx, %rdx
	movq	%r8, %r10
	movq	%r9, %r8
	movq	8(%rsp), %r9
	syscall
	jnc	1f
	negq	%rax
1:	ret
	.size	sys_call, . - sys_call

	.section .note.GNU-stack, "", @progbits
