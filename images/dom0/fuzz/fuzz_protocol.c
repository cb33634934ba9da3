/*
 * libFuzzer target for the agent's control-line parser (protocol.c): any
 * bytes give a request or a refusal without leaving the request's buffers
 * (ASan, UBSan), and what the parser accepts is exactly what the harness
 * would have sent for it, so it never runs a job the harness did not ask
 * for. By hand, from images/dom0:
 *   make fuzz O=/tmp/f &&
 *       /tmp/f/fuzz-protocol -max_total_time=60 CORPUS fuzz/corpus
 * (CORPUS, a folder of its own, gets what it finds; fuzz/corpus stays as is.)
 */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../protocol.h"

static struct request req;

/* The input, read back as the re-encoded request is compared with it. */
static const uint8_t *input;
static size_t input_len, input_pos;

static void expect(const char *s, size_t n)
{
    if ( n > input_len - input_pos || memcmp(input + input_pos, s, n) != 0 )
        abort();
    input_pos += n;
}

static void expect_hex(const char *s)
{
    static const char hexdigits[] = "0123456789abcdef";

    for ( ; *s; s++ )
    {
        char pair[2] = { hexdigits[(unsigned char)*s >> 4],
                         hexdigits[(unsigned char)*s & 15] };
        expect(pair, 2);
    }
}

static void check_id(void)
{
    size_t len = strnlen(req.id, sizeof(req.id));

    if ( len > ID_MAX )
        abort();
    for ( size_t i = 0; i < len; i++ )
        if ( !strchr("0123456789abcdefghijklmnopqrstuvwxyz"
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ_",
                     req.id[i]) )
            abort();
    if ( len == 0 && req.kind != REQ_INVALID )
        abort();
}

static void expect_head(const char *verb)
{
    expect(verb, strlen(verb));
    expect(" ", 1);
    expect(req.id, strlen(req.id));
}

static void check_run(void)
{
    if ( req.argc < 1 || req.argc > MAX_ARGS || req.argv[req.argc] )
        abort();
    expect_head("run");
    for ( int i = 0; i < req.argc; i++ )
    {
        expect(" ", 1);
        expect_hex(req.argv[i]);
    }
    if ( input_pos != input_len )
        abort();
}

static void check_kill(void)
{
    long value = 0;

    expect_head("kill");
    expect(" ", 1);
    if ( input_pos == input_len )
        abort();
    /* Past NSIG the value can only mismatch: stop before it overflows. */
    for ( ; input_pos < input_len && value < NSIG; input_pos++ )
    {
        if ( input[input_pos] < '0' || input[input_pos] > '9' )
            abort();
        value = value * 10 + (input[input_pos] - '0');
    }
    if ( input_pos != input_len || value != req.signal || value < 1 )
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input = data;
    input_len = size;
    input_pos = 0;
    switch ( parse_control_line((const char *)data, size, &req) )
    {
    case REQ_RUN:
        check_run();
        break;
    case REQ_KILL:
        check_kill();
        break;
    case REQ_INVALID:
        if ( !req.error[0] )
            abort();
        break;
    }
    check_id();
    return 0;
}
