/*
 * images/init on FreeBSD i386: the entry point and the system call stub.
 *
 * System calls: number in %eax, `int $0x80`; the kernel copies the
 * arguments from the user stack starting one word above %esp, the slot
 * where a libc stub's return address would be (sys/i386/i386/trap.c,
 * cpu_fetch_syscall_args: `params = (caddr_t)frame->tf_esp + sizeof(int)`).
 * It sets the carry flag on error, with the errno in %eax.
 */
	.text

/*
 * The kernel enters with %esp at argc, argv[] following
 * (lib/csu/i386-elf/crt1_s.S reads them there). Align the stack for the C
 * code, pass that pointer as the one argument, and never return.
 */
	.globl	_start
	.type	_start, @function
_start:
	xorl	%ebp, %ebp
	movl	%esp, %eax
	andl	$-16, %esp
	subl	$12, %esp
	pushl	%eax
	call	init_main
	hlt
	.size	_start, . - _start

/*
 * long sys_call(long number, long a1, ..., long a6): the result, or minus
 * the errno. On entry the stack holds the return address, number, a1..a6;
 * the kernel wants a1..a6 directly above one unused word, so they are
 * copied below with that word under them.
 */
	.globl	sys_call
	.type	sys_call, @function
sys_call:
	movl	4(%esp), %eax
	/* a6 is at 28(%esp); each push moves the next lower argument there. */
	pushl	28(%esp)
	pushl	28(%esp)
	pushl	28(%esp)
	pushl	28(%esp)
	pushl	28(%esp)
	pushl	28(%esp)
	pushl	%eax			/* the unused return-address slot */
	int	$0x80
	jnc	1f
	negl	%eax
1:	addl	$28, %esp
	ret
	.size	sys_call, . - sys_call

	.section .note.GNU-stack, "", @progbits
