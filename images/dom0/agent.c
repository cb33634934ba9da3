/*
 * xenboot-agent: runs inside the embedded Xen host's dom0 and executes what
 * the harness asks over a virtio-serial control port.
 *
 * Why a program and not a shell loop: arguments (paths, kernel command
 * lines) arrive hex-encoded and go straight to execve(), so nothing the user
 * typed is ever parsed by a shell, and several jobs (xl create -F, console
 * relays, one-shot queries) run at once with their output multiplexed.
 *
 * Protocol, one line per message, fields separated by one space, every
 * free-form field hex-encoded (lowercase), a job ID 1 to 32 of [0-9A-Za-z_]:
 *   harness -> agent   run ID ARGV0 ARGV1 ...      start a job
 *                      kill ID SIGNAL              signal a job (decimal)
 *   agent -> harness   ready                       once, at start
 *                      out ID DATA / err ID DATA   job output as it comes
 *                      exit ID STATUS              status, or 128+signal
 *                      error ID MESSAGE            the request for job ID
 *                                                  failed; for a run, the
 *                                                  job did not start and no
 *                                                  exit follows
 *                      error - MESSAGE             a line naming no job
 * A request that fails (a malformed line, no free slot, pipe2 or fork
 * failing) costs that job, never the agent, which stops only when the
 * control port, poll() or its signalfd fails. A job whose program cannot be
 * run exits 127, saying why on its err.
 *
 * `xenboot-agent relay PTY PORT` is the console relay a job runs: it copies
 * a guest's console pty to the virtio-serial port named PORT and back, over
 * one read-write descriptor (two opens of a port lose host input).
 * `xenboot-agent shell PORT` relays a login shell on a new pty the same way,
 * for a person at the harness's terminal. `xenboot-agent connect TCPPORT
 * PORT` relays a connection to 127.0.0.1:TCPPORT the same way: gdbsx, Xen's
 * gdb server for a domain, listens only on TCP, and dom0's loopback is its
 * only network. `xenboot-agent serve -` serves
 * on standard input, one read-write socket: how the tests drive a native
 * build of the agent.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "protocol.h"

#define MAX_JOBS 64
#define CHUNK    4096

struct job {
    char id[ID_MAX + 1];
    pid_t pid;
    int out_fd;
    int err_fd;
    int reaped;
    int status;
};

static struct job jobs[MAX_JOBS];
static int control_fd = -1;

static void die(const char *what)
{
    fprintf(stderr, "xenboot-agent: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void write_all(int fd, const char *buf, size_t len)
{
    while ( len > 0 )
    {
        ssize_t n = write(fd, buf, len);
        if ( n < 0 )
        {
            if ( errno == EINTR )
                continue;
            die("write to control port");
        }
        buf += n;
        len -= (size_t)n;
    }
}

static const char hexdigits[] = "0123456789abcdef";

/*
 * Ids are at most ID_MAX (the parser's rule) and data at most CHUNK bytes,
 * so every reply fits: one that would not is a bug, and the agent stops on
 * it rather than write past the buffer.
 */
static char reply[sizeof("error ") + ID_MAX + 1 + 2 * CHUNK + 1];

/* snprintf()'s length `n`, checked to leave `extra` bytes of reply free. */
static size_t fits(int n, size_t extra)
{
    if ( n < 0 || (size_t)n + extra >= sizeof(reply) )
    {
        errno = EOVERFLOW;
        die("reply longer than its buffer");
    }
    return (size_t)n;
}

static void send_data(const char *kind, const char *id, const char *data,
                      size_t len)
{
    size_t pos =
        fits(snprintf(reply, sizeof(reply), "%s %s ", kind, id), 2 * len + 1);

    for ( size_t i = 0; i < len; i++ )
    {
        reply[pos++] = hexdigits[(unsigned char)data[i] >> 4];
        reply[pos++] = hexdigits[(unsigned char)data[i] & 15];
    }
    reply[pos++] = '\n';
    write_all(control_fd, reply, pos);
}

static void send_exit(const char *id, int status)
{
    size_t n =
        fits(snprintf(reply, sizeof(reply), "exit %s %d\n", id, status), 0);

    write_all(control_fd, reply, n);
}

__attribute__((format(printf, 2, 3))) static void
send_error(const char *id, const char *fmt, ...)
{
    char message[256];
    va_list ap;

    /* A message cut short still says what failed. */
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    send_data("error", id, message, strlen(message));
}

static struct job *find_job(const char *id)
{
    for ( int i = 0; i < MAX_JOBS; i++ )
        if ( jobs[i].pid && strcmp(jobs[i].id, id) == 0 )
            return &jobs[i];
    return NULL;
}

/*
 * In the forked child: what goes wrong is told on the job's err, and the
 * job exits 127, as a shell's command that cannot run does.
 */
__attribute__((noreturn)) static void exec_job(char **argv, int out, int err)
{
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    sigset_t none;

    if ( null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 )
    {
        dprintf(err, "xenboot-agent: job's stdio: %s\n", strerror(errno));
        _exit(127);
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Own process group, so `kill` reaches what the job spawned. */
    setpgid(0, 0);
    execvp(argv[0], argv);
    dprintf(err, "xenboot-agent: exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static void start_job(const char *id, char **argv)
{
    struct job *job = NULL;
    int out[2] = { -1, -1 }, err[2] = { -1, -1 };
    const char *failed = NULL;
    pid_t pid = -1;

    if ( find_job(id) )
    {
        send_error(id, "job id already in use");
        return;
    }
    for ( int i = 0; i < MAX_JOBS && !job; i++ )
        if ( !jobs[i].pid )
            job = &jobs[i];
    if ( !job )
    {
        send_error(id, "no free job slot (%d jobs running)", MAX_JOBS);
        return;
    }
    if ( pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 )
        failed = "pipe2";
    else if ( (pid = fork()) < 0 )
        failed = "fork";
    if ( failed )
    {
        send_error(id, "%s: %s", failed, strerror(errno));
        for ( int i = 0; i < 2; i++ )
        {
            if ( out[i] >= 0 )
                close(out[i]);
            if ( err[i] >= 0 )
                close(err[i]);
        }
        return;
    }
    if ( pid == 0 )
        exec_job(argv, out[1], err[1]);
    /*
     * The child's setpgid() again: a `kill` right behind the `run` must
     * not come before it.
     */
    setpgid(pid, pid);
    close(out[1]);
    close(err[1]);
    snprintf(job->id, sizeof(job->id), "%s", id);
    job->pid = pid;
    job->out_fd = out[0];
    job->err_fd = err[0];
    job->reaped = 0;
}

static void kill_job(const char *id, int signal)
{
    struct job *job = find_job(id);

    /*
     * A job that has ended is no failure: the harness may ask as its exit
     * is on the way.
     */
    if ( !job || job->reaped )
        return;
    if ( kill(-job->pid, signal) < 0 && errno != ESRCH )
        send_error(id, "kill: %s", strerror(errno));
}

/*
 * A job is over once it is reaped and both pipes are drained: then its
 * `exit` line comes after all of its output.
 */
static void finish_if_done(struct job *job)
{
    if ( !job->pid || !job->reaped || job->out_fd >= 0 || job->err_fd >= 0 )
        return;
    int status = WIFEXITED(job->status) ? WEXITSTATUS(job->status)
                                        : 128 + WTERMSIG(job->status);
    send_exit(job->id, status);
    job->pid = 0;
}

static void handle_line(const char *line, size_t len)
{
    static struct request req;

    switch ( parse_control_line(line, len, &req) )
    {
    case REQ_RUN:
        start_job(req.id, req.argv);
        break;
    case REQ_KILL:
        kill_job(req.id, req.signal);
        break;
    case REQ_INVALID:
        send_error(req.id[0] ? req.id : "-", "%s", req.error);
        break;
    }
}

static void reap_children(void)
{
    int status;
    pid_t pid;

    while ( (pid = waitpid(-1, &status, WNOHANG)) > 0 )
        for ( int i = 0; i < MAX_JOBS; i++ )
            if ( jobs[i].pid == pid )
            {
                jobs[i].reaped = 1;
                jobs[i].status = status;
                finish_if_done(&jobs[i]);
            }
}

static void drain_pipe(struct job *job, int *fd, const char *kind)
{
    char buf[CHUNK];
    ssize_t n = read(*fd, buf, sizeof(buf));

    if ( n > 0 )
    {
        send_data(kind, job->id, buf, (size_t)n);
        return;
    }
    if ( n < 0 && errno == EINTR )
        return;
    close(*fd);
    *fd = -1;
    finish_if_done(job);
}

/*
 * Finds /dev/vportNpM whose sysfs name is `name`: dom0 has no udev, so
 * there are no /dev/virtio-ports/ links.
 */
static int open_port(const char *name)
{
    DIR *dir = opendir("/sys/class/virtio-ports");
    struct dirent *entry;

    if ( !dir )
        return -1;
    while ( (entry = readdir(dir)) )
    {
        char path[512], found[256];
        if ( entry->d_name[0] == '.' )
            continue;
        snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name",
                 entry->d_name);
        int fd = open(path, O_RDONLY);
        if ( fd < 0 )
            continue;
        ssize_t n = read(fd, found, sizeof(found) - 1);
        close(fd);
        if ( n <= 0 )
            continue;
        found[n] = '\0';
        found[strcspn(found, "\n")] = '\0';
        if ( strcmp(found, name) == 0 )
        {
            snprintf(path, sizeof(path), "/dev/%s", entry->d_name);
            closedir(dir);
            /* No job inherits a port. */
            return open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
        }
    }
    closedir(dir);
    errno = ENOENT;
    return -1;
}

static int copy_once(int from, int to)
{
    char buf[CHUNK];
    ssize_t n = read(from, buf, sizeof(buf));

    if ( n < 0 && (errno == EINTR || errno == EAGAIN) )
        return 1;
    if ( n <= 0 )
        return 0;
    for ( ssize_t done = 0; done < n; )
    {
        ssize_t w = write(to, buf + done, (size_t)(n - done));
        if ( w < 0 )
        {
            if ( errno == EINTR || errno == EAGAIN )
                continue;
            return 0;
        }
        done += w;
    }
    return 1;
}

static int relay_fds(int pty, int port)
{
    struct pollfd fds[2] = { { .fd = pty, .events = POLLIN },
                             { .fd = port, .events = POLLIN } };
    for ( ;; )
    {
        if ( poll(fds, 2, -1) < 0 )
        {
            if ( errno == EINTR )
                continue;
            die("poll");
        }
        /*
         * The pty closing means its other side (xenconsoled, or the
         * shell) let go.
         */
        if ( fds[0].revents & (POLLIN | POLLHUP | POLLERR) )
            if ( !copy_once(pty, port) )
                return 0;
        if ( fds[1].revents & POLLIN )
            if ( !copy_once(port, pty) )
                return 0;
    }
}

static int open_port_or_die(const char *port_name)
{
    int port = open_port(port_name);

    if ( port < 0 )
        die(port_name);
    return port;
}

static int relay(const char *pty_path, const char *port_name)
{
    int pty = open(pty_path, O_RDWR | O_NOCTTY);
    int port = open_port_or_die(port_name);
    struct termios tio;

    if ( pty < 0 )
        die(pty_path);
    /*
     * Raw and without echo: the guest's bytes pass through unchanged and
     * what the harness types is not reflected back as if the guest said it.
     */
    if ( tcgetattr(pty, &tio) == 0 )
    {
        cfmakeraw(&tio);
        tcsetattr(pty, TCSANOW, &tio);
    }
    printf("relay %s <-> %s\n", pty_path, port_name);
    fflush(stdout);
    return relay_fds(pty, port);
}

static int shell(const char *port_name)
{
    int port = open_port_or_die(port_name);
    int master;
    pid_t pid = forkpty(&master, NULL, NULL, NULL);

    if ( pid < 0 )
        die("forkpty");
    if ( pid == 0 )
    {
        setenv("PS1", "dom0# ", 1);
        execl("/bin/sh", "sh", "-i", (char *)NULL);
        _exit(127);
    }
    printf("shell on %s\n", port_name);
    fflush(stdout);
    relay_fds(master, port);
    kill(pid, SIGHUP);
    return 0;
}

/* gdbsx listens a moment after it starts: tried for this long. */
#define CONNECT_TRIES   100
#define CONNECT_WAIT_US 100000

static int connect_relay(const char *tcp_port, const char *port_name)
{
    struct sockaddr_in addr = {
        .sin_family = AF_INET,
        .sin_port = htons((unsigned short)atoi(tcp_port)),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    int port = open_port_or_die(port_name);

    for ( int try = 0;; try++ )
    {
        int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if ( sock < 0 )
            die("socket");
        if ( connect(sock, (struct sockaddr *)&addr, sizeof(addr)) == 0 )
        {
            printf("connect 127.0.0.1:%s <-> %s\n", tcp_port, port_name);
            fflush(stdout);
            return relay_fds(sock, port);
        }
        if ( try == CONNECT_TRIES )
            die("connect");
        close(sock);
        usleep(CONNECT_WAIT_US);
    }
}

static int serve(const char *port_name)
{
    /*
     * One request's line. One too long for it is answered from its start
     * (which names the job), and dropped up to its newline.
     */
    static char line[LINE_MAX_BYTES];
    size_t used = 0;
    int dropping = 0;
    sigset_t mask;

    control_fd = strcmp(port_name, "-") == 0 ? 0 : open_port(port_name);
    if ( control_fd < 0 )
        die(port_name);
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if ( sfd < 0 )
        die("signalfd");
    write_all(control_fd, "ready\n", 6);

    for ( ;; )
    {
        struct pollfd fds[2 + 2 * MAX_JOBS];
        struct job *owner[2 + 2 * MAX_JOBS];
        int nfds = 0;

        fds[nfds++] = (struct pollfd){ .fd = control_fd, .events = POLLIN };
        fds[nfds++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
        for ( int i = 0; i < MAX_JOBS; i++ )
        {
            if ( !jobs[i].pid )
                continue;
            if ( jobs[i].out_fd >= 0 )
            {
                owner[nfds] = &jobs[i];
                fds[nfds++] =
                    (struct pollfd){ .fd = jobs[i].out_fd, .events = POLLIN };
            }
            if ( jobs[i].err_fd >= 0 )
            {
                owner[nfds] = &jobs[i];
                fds[nfds++] =
                    (struct pollfd){ .fd = jobs[i].err_fd, .events = POLLIN };
            }
        }
        if ( poll(fds, (nfds_t)nfds, -1) < 0 )
        {
            if ( errno == EINTR )
                continue;
            die("poll");
        }
        if ( fds[1].revents & POLLIN )
        {
            struct signalfd_siginfo info;
            if ( read(sfd, &info, sizeof(info)) < 0 && errno != EINTR )
                die("signalfd read");
            reap_children();
        }
        for ( int i = 2; i < nfds; i++ )
        {
            if ( !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)) )
                continue;
            struct job *job = owner[i];
            if ( fds[i].fd == job->out_fd )
                drain_pipe(job, &job->out_fd, "out");
            else if ( fds[i].fd == job->err_fd )
                drain_pipe(job, &job->err_fd, "err");
        }
        if ( fds[0].revents & (POLLIN | POLLHUP) )
        {
            ssize_t n = read(control_fd, line + used, sizeof(line) - used);
            if ( n < 0 && errno != EINTR && errno != EAGAIN )
                die("read control port");
            /*
             * The harness went away; init starts a fresh agent, whose
             * `ready` blocks until the next harness connects.
             */
            if ( n == 0 )
                return 0;
            used += n > 0 ? (size_t)n : 0;
            char *nl;
            while ( (nl = memchr(line, '\n', used)) )
            {
                size_t len = (size_t)(nl - line);

                if ( !dropping )
                    handle_line(line, len);
                dropping = 0;
                used -= len + 1;
                memmove(line, nl + 1, used);
            }
            if ( used == sizeof(line) )
            {
                if ( !dropping )
                    handle_line(line, used);
                dropping = 1;
                used = 0;
            }
        }
    }
}

int main(int argc, char **argv)
{
    if ( argc == 4 && strcmp(argv[1], "relay") == 0 )
        return relay(argv[2], argv[3]);
    if ( argc == 3 && strcmp(argv[1], "serve") == 0 )
        return serve(argv[2]);
    if ( argc == 3 && strcmp(argv[1], "shell") == 0 )
        return shell(argv[2]);
    if ( argc == 4 && strcmp(argv[1], "connect") == 0 )
        return connect_relay(argv[2], argv[3]);
    fprintf(stderr,
            "usage: xenboot-agent serve PORT|- | relay PTY PORT | shell PORT"
            " | connect TCPPORT PORT\n");
    return 2;
}
