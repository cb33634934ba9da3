/*
 * The control-line parser (protocol.h). Fields are split on single spaces,
 * the way the harness joins them, so an empty argument is an empty field
 * and not a missing one.
 */
#include "protocol.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct field {
    const char *s;
    size_t len;
};

/* The field of line[0, len) at *pos; 0 once past the last one. */
static int next_field(const char *line, size_t len, size_t *pos,
                      struct field *f)
{
    if ( *pos > len )
        return 0;
    f->s = line + *pos;
    f->len = 0;
    while ( *pos + f->len < len && f->s[f->len] != ' ' )
        f->len++;
    *pos += f->len + 1;
    return 1;
}

static int is_word(struct field f, const char *word)
{
    return f.len == strlen(word) && memcmp(f.s, word, f.len) == 0;
}

static int is_id(struct field f)
{
    if ( f.len == 0 || f.len > ID_MAX )
        return 0;
    for ( size_t i = 0; i < f.len; i++ )
    {
        char c = f.s[i];
        if ( !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
               (c >= 'A' && c <= 'Z') || c == '_') )
            return 0;
    }
    return 1;
}

__attribute__((format(printf, 2, 3))) static enum request_kind
refuse(struct request *req, const char *fmt, ...)
{
    va_list ap;

    /* A message cut short at sizeof(req->error) still says what is wrong. */
    va_start(ap, fmt);
    vsnprintf(req->error, sizeof(req->error), fmt, ap);
    va_end(ap);
    return req->kind = REQ_INVALID;
}

/* Lowercase only, as the harness writes it: one spelling per argument. */
static int hexval(char c)
{
    if ( c >= '0' && c <= '9' )
        return c - '0';
    if ( c >= 'a' && c <= 'f' )
        return c - 'a' + 10;
    return -1;
}

static enum request_kind parse_run(const char *line, size_t len, size_t pos,
                                   struct request *req)
{
    char *out = req->strings;
    struct field f;

    req->argc = 0;
    while ( next_field(line, len, &pos, &f) )
    {
        int n = req->argc;

        if ( n == MAX_ARGS )
            return refuse(req, "more than %d arguments", MAX_ARGS);
        if ( f.len % 2 )
            return refuse(req, "argv[%d]: odd number of hex digits", n);
        req->argv[n] = out;
        for ( size_t i = 0; i < f.len; i += 2 )
        {
            int hi = hexval(f.s[i]), lo = hexval(f.s[i + 1]);
            if ( hi < 0 || lo < 0 )
                return refuse(req, "argv[%d]: not lowercase hex", n);
            /* execve() would end the argument there. */
            if ( (hi | lo) == 0 )
                return refuse(req, "argv[%d] holds a NUL byte", n);
            *out++ = (char)(hi << 4 | lo);
        }
        *out++ = '\0';
        req->argc++;
    }
    if ( req->argc == 0 )
        return refuse(req, "no program to run");
    req->argv[req->argc] = NULL;
    return req->kind = REQ_RUN;
}

static enum request_kind parse_kill(const char *line, size_t len, size_t pos,
                                    struct request *req)
{
    struct field f;
    char digits[12];

    /* A field left after the signal shows as pos still inside the line. */
    if ( !next_field(line, len, &pos, &f) || pos <= len )
        return refuse(req, "kill takes one signal number");
    /* strtol() alone would take leading blanks and a sign. */
    if ( f.len > 0 && f.len < sizeof(digits) && f.s[0] >= '0' && f.s[0] <= '9' )
    {
        char *end;
        long value;

        memcpy(digits, f.s, f.len);
        digits[f.len] = '\0';
        errno = 0;
        value = strtol(digits, &end, 10);
        /* end, not *end: a NUL inside the field would pass for its end. */
        if ( end == digits + f.len && errno != ERANGE && value >= 1 &&
             value < NSIG )
        {
            req->signal = (int)value;
            return req->kind = REQ_KILL;
        }
    }
    return refuse(req, "signal is not a number from 1 to %d", NSIG - 1);
}

enum request_kind parse_control_line(const char *line, size_t len,
                                     struct request *req)
{
    struct field verb, id;
    size_t pos = 0;

    req->id[0] = '\0';
    next_field(line, len, &pos, &verb);
    if ( !next_field(line, len, &pos, &id) || !is_id(id) )
        return refuse(req, "no job id of 1 to %d letters, digits or _", ID_MAX);
    memcpy(req->id, id.s, id.len);
    req->id[id.len] = '\0';
    /* Checked after the id, so that the refusal can name the job. */
    if ( len >= LINE_MAX_BYTES )
        return refuse(req, "line longer than %d bytes", LINE_MAX_BYTES - 1);
    if ( is_word(verb, "run") )
        return parse_run(line, len, pos, req);
    if ( is_word(verb, "kill") )
        return parse_kill(line, len, pos, req);
    return refuse(req, "unknown request");
}
