/*
 * Xen's block hotplug script for the embedded host's dom0, as one program.
 *
 * libxl runs it as `block add|remove` with XENBUS_PATH set to the vbd's
 * backend path in xenstore. `add` backs a file target with a loop device
 * (read-only when the disk is: the loop driver takes that from the file's
 * open mode) and tells blkback which device to serve;
 * `remove` frees that loop device. Debian's script needs bash, and a shell
 * version runs six programs: in a PV dom0 under TCG every fork and exec is
 * tens of milliseconds, more than the rest of the script. This talks to
 * xenstored's socket and the loop driver itself, so a disk costs one exec.
 *
 * Static, as xenboot-agent: it must not need the dom0's C library.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>
#include <xen/io/xs_wire.h>

#define XENSTORED_SOCKET "/run/xenstored/socket"

static int xs = -1;
static const char *backend;

static int full_io(ssize_t (*io)(int, void *, size_t), void *buf, size_t len)
{
    char *p = buf;

    while ( len )
    {
        ssize_t n = io(xs, p, len);

        if ( n < 0 && errno == EINTR )
            continue;
        if ( n <= 0 )
            return -1;
        p += n;
        len -= n;
    }
    return 0;
}

static ssize_t write_some(int fd, void *buf, size_t len)
{
    return write(fd, buf, len);
}

/*
 * One request: `type` with the payload parts (each sent as given, the
 * caller puts the NULs the request needs). The reply's payload is left in
 * `reply` (NUL-terminated); -1 on a transport error or an XS_ERROR reply.
 */
static int xs_request(uint32_t type, const char *a, size_t alen, const char *b,
                      size_t blen, char *reply, size_t reply_size)
{
    struct xsd_sockmsg msg = { .type = type, .len = alen + blen };

    if ( xs < 0 || full_io(write_some, &msg, sizeof(msg)) ||
         full_io(write_some, (void *)a, alen) ||
         (blen && full_io(write_some, (void *)b, blen)) ||
         full_io(read, &msg, sizeof(msg)) || msg.len >= reply_size ||
         full_io(read, reply, msg.len) )
        return -1;
    reply[msg.len] = '\0';
    return msg.type == XS_ERROR ? -1 : 0;
}

/* <backend>/<key> into `value`; -1 if it is not there. */
static int xs_read_key(const char *key, char *value, size_t size)
{
    char path[XENSTORE_ABS_PATH_MAX + 1];

    snprintf(path, sizeof(path), "%s/%s", backend, key);
    return xs_request(XS_READ, path, strlen(path) + 1, NULL, 0, value, size);
}

static int xs_write_key(const char *key, const char *value)
{
    char path[XENSTORE_ABS_PATH_MAX + 1], reply[XENSTORE_PAYLOAD_MAX + 1];

    snprintf(path, sizeof(path), "%s/%s", backend, key);
    return xs_request(XS_WRITE, path, strlen(path) + 1, value, strlen(value),
                      reply, sizeof(reply));
}

static void __attribute__((noreturn, format(printf, 1, 2)))
fail(const char *fmt, ...)
{
    char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    fprintf(stderr, "block: %s\n", why);
    /* What libxl reads to say why the disk did not attach. */
    xs_write_key("hotplug-error", why);
    xs_write_key("hotplug-status", "error");
    exit(1);
}

static void connect_xenstored(void)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX,
                                .sun_path = XENSTORED_SOCKET };

    xs = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if ( xs >= 0 && connect(xs, (struct sockaddr *)&addr, sizeof(addr)) )
    {
        close(xs);
        xs = -1;
    }
}

/* A free loop device backed by `target`; its path into `dev`. */
static void attach_loop(const char *target, int read_only, char *dev,
                        size_t size)
{
    struct loop_info64 info = { 0 };
    size_t len, keep;
    int ctl, file, loop, n;

    file = open(target, read_only ? O_RDONLY : O_RDWR);
    if ( file < 0 )
        fail("cannot open %s: %s", target, strerror(errno));
    ctl = open("/dev/loop-control", O_RDWR);
    if ( ctl < 0 )
        fail("cannot open /dev/loop-control: %s", strerror(errno));
    /* Another disk may take the same free device between the two calls. */
    for ( ;; )
    {
        n = ioctl(ctl, LOOP_CTL_GET_FREE);
        if ( n < 0 )
            fail("no free loop device: %s", strerror(errno));
        snprintf(dev, size, "/dev/loop%d", n);
        loop = open(dev, read_only ? O_RDONLY : O_RDWR);
        if ( loop < 0 )
            fail("cannot open %s: %s", dev, strerror(errno));
        if ( ioctl(loop, LOOP_SET_FD, file) == 0 )
            break;
        if ( errno != EBUSY )
            fail("losetup %s %s failed: %s", dev, target, strerror(errno));
        close(loop);
    }
    /*
     * The file's name, which `losetup -a` shows: which run's disk it is.
     * The kernel keeps 63 bytes of it; the end names the run's copy.
     */
    len = strlen(target);
    keep = sizeof(info.lo_file_name) - 1;
    memcpy(info.lo_file_name, target + (len > keep ? len - keep : 0),
           len > keep ? keep : len);
    if ( ioctl(loop, LOOP_SET_STATUS64, &info) )
        fail("naming %s failed: %s", dev, strerror(errno));
    close(loop);
    close(ctl);
    close(file);
}

static void add(void)
{
    char target[XENSTORE_PAYLOAD_MAX + 1], dev[XENSTORE_PAYLOAD_MAX + 1];
    char mode[16], number[32];
    struct stat st;

    if ( xs_read_key("params", target, sizeof(target)) )
        fail("no params in %s", backend);
    if ( xs_read_key("mode", mode, sizeof(mode)) )
        mode[0] = '\0';
    if ( stat(target, &st) )
        fail("cannot stat %s: %s", target, strerror(errno));
    if ( S_ISBLK(st.st_mode) )
        snprintf(dev, sizeof(dev), "%s", target);
    else
    {
        attach_loop(target, strcmp(mode, "r") == 0, dev, sizeof(dev));
        if ( stat(dev, &st) )
            fail("cannot stat %s: %s", dev, strerror(errno));
    }
    /* blkback wants major:minor in hex, as `stat -c %t:%T` prints it. */
    snprintf(number, sizeof(number), "%x:%x", major(st.st_rdev),
             minor(st.st_rdev));
    if ( xs_write_key("physical-device-path", dev) ||
         xs_write_key("physical-device", number) ||
         xs_write_key("hotplug-status", "connected") )
        fail("cannot write %s's device to xenstore", backend);
}

static void remove_loop(void)
{
    char dev[XENSTORE_PAYLOAD_MAX + 1];
    int loop;

    if ( xs_read_key("physical-device-path", dev, sizeof(dev)) ||
         strncmp(dev, "/dev/loop", 9) )
        return;
    loop = open(dev, O_RDONLY);
    if ( loop < 0 || ioctl(loop, LOOP_CLR_FD) )
        fprintf(stderr, "block: freeing %s failed: %s\n", dev, strerror(errno));
}

int main(int argc, char **argv)
{
    backend = getenv("XENBUS_PATH");
    if ( argc != 2 || !backend )
    {
        fprintf(stderr, "usage: XENBUS_PATH=<vbd backend> block add|remove\n");
        return 2;
    }
    connect_xenstored();
    if ( xs < 0 )
    {
        fprintf(stderr, "block: cannot connect to %s: %s\n", XENSTORED_SOCKET,
                strerror(errno));
        return 1;
    }
    if ( strcmp(argv[1], "add") == 0 )
        add();
    else if ( strcmp(argv[1], "remove") == 0 )
        remove_loop();
    return 0;
}
