/*
 * sbuf(9) for a Linux host, as declared in ../include/sys/sbuf.h. Errors are
 * sticky, as in FreeBSD: once an append fails, every later call fails too and
 * sbuf_finish() reports it.
 */
#include <sys/sbuf.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sbuf *
sbuf_new(struct sbuf *s, char *buf, int length, int flags)
{
	if (buf != NULL || length < 0 || (flags & SBUF_AUTOEXTEND) == 0) {
		errno = EINVAL;
		return (NULL);
	}
	if (s == NULL && (s = malloc(sizeof(*s))) == NULL)
		return (NULL);
	memset(s, 0, sizeof(*s));
	s->s_size = length > 0 ? length : 64;
	if ((s->s_buf = malloc(s->s_size)) == NULL) {
		free(s);
		return (NULL);
	}
	s->s_buf[0] = '\0';
	return (s);
}

static int
reserve(struct sbuf *s, size_t more)
{
	size_t need = (size_t)s->s_len + more + 1;
	size_t size = (size_t)s->s_size;
	char *grown;

	if (s->s_error != 0)
		return (-1);
	if (need <= size)
		return (0);
	while (size < need)
		size *= 2;
	if ((grown = realloc(s->s_buf, size)) == NULL) {
		s->s_error = ENOMEM;
		return (-1);
	}
	s->s_buf = grown;
	s->s_size = (ssize_t)size;
	return (0);
}

void
sbuf_clear(struct sbuf *s)
{
	s->s_len = 0;
	s->s_error = 0;
	s->s_finished = 0;
	s->s_buf[0] = '\0';
}

int
sbuf_bcat(struct sbuf *s, const void *data, size_t len)
{
	if (reserve(s, len) != 0)
		return (-1);
	memcpy(s->s_buf + s->s_len, data, len);
	s->s_len += (ssize_t)len;
	s->s_buf[s->s_len] = '\0';
	return (0);
}

int
sbuf_cat(struct sbuf *s, const char *str)
{
	return (sbuf_bcat(s, str, strlen(str)));
}

int
sbuf_cpy(struct sbuf *s, const char *str)
{
	sbuf_clear(s);
	return (sbuf_cat(s, str));
}

int
sbuf_vprintf(struct sbuf *s, const char *fmt, va_list ap)
{
	va_list copy;
	int len;

	va_copy(copy, ap);
	len = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (len < 0) {
		s->s_error = EINVAL;
		return (-1);
	}
	if (reserve(s, (size_t)len) != 0)
		return (-1);
	vsnprintf(s->s_buf + s->s_len, (size_t)len + 1, fmt, ap);
	s->s_len += len;
	return (0);
}

int
sbuf_printf(struct sbuf *s, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = sbuf_vprintf(s, fmt, ap);
	va_end(ap);
	return (r);
}

int
sbuf_putc(struct sbuf *s, int c)
{
	char ch = (char)c;

	return (sbuf_bcat(s, &ch, 1));
}

int
sbuf_trim(struct sbuf *s)
{
	while (s->s_len > 0 && (s->s_buf[s->s_len - 1] == ' ' ||
	    s->s_buf[s->s_len - 1] == '\t' || s->s_buf[s->s_len - 1] == '\n'))
		s->s_buf[--s->s_len] = '\0';
	return (s->s_error != 0 ? -1 : 0);
}

int
sbuf_error(struct sbuf *s)
{
	return (s->s_error);
}

int
sbuf_finish(struct sbuf *s)
{
	s->s_finished = 1;
	errno = s->s_error;
	return (s->s_error != 0 ? -1 : 0);
}

char *
sbuf_data(struct sbuf *s)
{
	return (s->s_buf);
}

ssize_t
sbuf_len(struct sbuf *s)
{
	return (s->s_error != 0 ? -1 : s->s_len);
}

int
sbuf_done(struct sbuf *s)
{
	return (s->s_finished);
}

void
sbuf_delete(struct sbuf *s)
{
	free(s->s_buf);
	free(s);
}
