# The system makefile bmake reads first when building FreeBSD's host tools
# (config(8)) on Linux with `bmake -m <this folder>`: only what
# bsd.prog.mk here relies on, so neither Debian's mk files nor the FreeBSD
# tree's share/mk (which targets a FreeBSD host) take part.
# As FreeBSD's sys.mk: a Makefile's own rules above its .include of
# bsd.prog.mk must not become the default target.
.MAIN:		all

CC?=		cc
YACC?=		byacc
LEX?=		flex
AWK?=		awk
# -fcommon: 10.x's usr.sbin/config defines its globals in config.h, which
# every file includes; gcc 10 and later default to -fno-common and the link
# fails with "multiple definition of `includepath'". Harmless where a tree
# declares them once.
CFLAGS?=	-O2 -pipe -fcommon
