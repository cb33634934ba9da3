/*
 * The harness's side of the agent's control protocol (agent.c has the whole
 * protocol): one line in, one request out. No I/O and no global state, so
 * fuzz/fuzz_protocol.c can feed it any bytes.
 */
#ifndef XENBOOT_PROTOCOL_H
#define XENBOOT_PROTOCOL_H

#include <stddef.h>

#define MAX_ARGS 256
/* A line and its newline fit the agent's buffer, or the line is refused. */
#define LINE_MAX_BYTES (64 * 1024)
/*
 * Job ids are 1 to ID_MAX of [0-9A-Za-z_]: they go back unencoded in every
 * reply, and `-` stands for "no job" there.
 */
#define ID_MAX 32

enum request_kind {
    REQ_INVALID,
    REQ_RUN,
    REQ_KILL,
};

struct request {
    enum request_kind kind;
    char id[ID_MAX + 1]; /* "" when the line names no valid id */
    char error[128];     /* why the line is REQ_INVALID */
    int signal;
    int argc;
    char *argv[MAX_ARGS + 1];
    /*
     * argv's strings: each decoded argument and its NUL take no more room
     * than its hex and the space before it, so a line fits.
     */
    char strings[LINE_MAX_BYTES];
};

/*
 * Parses `line` (its `len` bytes, without the newline; any bytes, no NUL
 * needed) into `req` and returns req->kind. For REQ_INVALID, req->error says
 * why and req->id is the line's job id if that much of it was well formed.
 */
enum request_kind parse_control_line(const char *line, size_t len,
                                     struct request *req);

#endif
