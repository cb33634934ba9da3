/*
 * The part of FreeBSD's sbuf(9) that usr.sbin/config uses, for building
 * config(8) on a Linux host: glibc and libbsd have no sbuf. Only
 * automatically growing buffers; a fixed buffer handed to sbuf_new() is
 * refused, which config never does.
 */
#ifndef _COMPAT_SYS_SBUF_H_
#define _COMPAT_SYS_SBUF_H_

#include <stdarg.h>
#include <sys/types.h>

#define SBUF_FIXEDLEN	0x00000000
#define SBUF_AUTOEXTEND	0x00000001

struct sbuf {
	char	*s_buf;
	ssize_t	 s_len;
	ssize_t	 s_size;
	int	 s_error;
	int	 s_finished;
};

struct sbuf	*sbuf_new(struct sbuf *, char *, int, int);
#define		 sbuf_new_auto()	sbuf_new(NULL, NULL, 0, SBUF_AUTOEXTEND)
void		 sbuf_clear(struct sbuf *);
int		 sbuf_bcat(struct sbuf *, const void *, size_t);
int		 sbuf_cat(struct sbuf *, const char *);
int		 sbuf_cpy(struct sbuf *, const char *);
int		 sbuf_printf(struct sbuf *, const char *, ...)
		    __attribute__((__format__(__printf__, 2, 3)));
int		 sbuf_vprintf(struct sbuf *, const char *, va_list)
		    __attribute__((__format__(__printf__, 2, 0)));
int		 sbuf_putc(struct sbuf *, int);
int		 sbuf_trim(struct sbuf *);
int		 sbuf_error(struct sbuf *);
int		 sbuf_finish(struct sbuf *);
char		*sbuf_data(struct sbuf *);
ssize_t		 sbuf_len(struct sbuf *);
int		 sbuf_done(struct sbuf *);
void		 sbuf_delete(struct sbuf *);

#endif
