# The part of FreeBSD's bsd.prog.mk that usr.sbin/config's Makefile uses
# (PROG, SRCS with .y/.l/.c/.h, CFLAGS, LDADD or LIBADD, CLEANFILES), for
# building config(8) from the tree itself on a Linux host: its version must
# match the tree's kernel Makefile templates, so a config(8) from elsewhere
# will not do.
#
# Linux lacks what the tree takes from FreeBSD's libc and base: sbuf(9)
# comes from ../src/sbuf.c, BSD <sys/queue.h> and strlcpy() from libbsd's
# overlay headers (Debian's libbsd-dev), -ll from Debian's flex, file2c from
# ../bin.
COMPAT:=	${.PARSEDIR:tA:H}

.PATH: ${.CURDIR}

CFLAGS+=	-isystem ${COMPAT}/include -isystem /usr/include/bsd \
		-DLIBBSD_OVERLAY -D_GNU_SOURCE -MMD
# The 2013 sources predate these warnings becoming errors in newer compilers.
CFLAGS+=	-Wno-error

_GEN_C=		${SRCS:M*.y:T:R:S/$/.c/} ${SRCS:M*.l:T:R:S/$/.c/}
_OBJS=		${SRCS:N*.h:T:R:S/$/.o/} compat_sbuf.o
# LDADD is the 2013 spelling, LIBADD the later one; sbuf is linked in
# directly and libbsd supplies the rest.
_LIBS=		${LDADD:N-lsbuf} ${LIBADD:Nsbuf:S/^/-l/} -lbsd

all: ${PROG}

${PROG}: ${_OBJS}
	${CC} ${LDFLAGS} -o ${.TARGET} ${_OBJS} ${_LIBS}

# Generated headers (y.tab.h) before any object that may include them.
${_OBJS}: ${SRCS:M*.h}

.for _y in ${SRCS:M*.y}
# yacc writes y.tab.c and y.tab.h; byacc's -o would name the header after
# the output (config.h), overwriting the program's own header.
${_y:T:R}.c: ${_y}
	${YACC} -d ${.ALLSRC:M*.y}
	mv y.tab.c ${.TARGET}
y.tab.h: ${_y:T:R}.c
.endfor

.for _l in ${SRCS:M*.l}
${_l:T:R}.c: ${_l}
	${LEX} -t ${.ALLSRC:M*.l} > ${.TARGET}
.endfor

.SUFFIXES: .c .o
.c.o:
	${CC} ${CFLAGS} -c ${.IMPSRC} -o ${.TARGET}

compat_sbuf.o: ${COMPAT}/src/sbuf.c
	${CC} ${CFLAGS} -c ${COMPAT}/src/sbuf.c -o ${.TARGET}

clean:
	rm -f ${PROG} ${_OBJS} ${_OBJS:R:S/$/.d/} ${_GEN_C} y.tab.h ${CLEANFILES}

# Header dependencies that -MMD recorded in earlier builds.
.for _o in ${_OBJS}
.-include "${.OBJDIR}/${_o:R}.d"
.endfor
