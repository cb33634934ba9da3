/*
 * freebsd-xen-ci's /sbin/init for FreeBSD amd64 and i386: proves that the
 * kernel got as far as running a user program from the root file system,
 * then powers the domain off so the harness sees the run end by itself.
 *
 * No libc: a 2013 FreeBSD libc and crt are not available where this is built,
 * and the program needs only six system calls. What differs between the
 * targets, the entry point and how a system call is made, lives in
 * arch/<target>/entry.S; this file is the same for both.
 *
 * The line it prints is what the boot spec matches, so its format is a
 * contract: "freebsd-xen-ci init: name=<argv[0]> ostype=<kern.ostype>
 * osrelease=<kern.osrelease>".
 *
 * It powers off without syncing (RB_NOSYNC): it wrote nothing and the disk
 * is the run's own copy, while a 10.x kernel's syncer takes about 9 s to
 * walk its empty worklist wheel at shutdown. The kernel environment's
 * init_sync=1 (CMDLINE=init_sync=1) asks for the full shutdown instead:
 * sync, then unmount every file system, whose locking a port's developer
 * may want to see exercised.
 */

typedef unsigned long size_t;

/*
 * FreeBSD's numbers (sys/sys/syscall.h, sys/sys/reboot.h, sys/sys/sysctl.h,
 * sys/sys/fcntl.h); they have not changed since FreeBSD 2.
 */
enum {
    SYS_exit = 1,
    SYS_write = 4,
    SYS_open = 5,
    SYS_reboot = 55,
    SYS___sysctl = 202,
    SYS_kenv = 390,
};
#define O_RDWR         0x0002
#define RB_NOSYNC      0x0004
#define RB_HALT        0x0008
#define RB_POWEROFF    0x4000
#define CTL_KERN       1
#define KERN_OSTYPE    1
#define KERN_OSRELEASE 2
#define KENV_GET       0

/*
 * FreeBSD tells the kernel's ABI from this note (what crt1's crtbrand.c adds
 * to every program); the value is __FreeBSD_version of 10.0-CURRENT.
 */
__asm__(".section .note.tag,\"a\",@note\n"
        ".p2align 2\n"
        ".long 8\n" /* name size, "FreeBSD\0" */
        ".long 4\n" /* descriptor size */
        ".long 1\n" /* NT_FREEBSD_ABI_TAG */
        ".asciz \"FreeBSD\"\n"
        ".long 1000000\n"
        ".previous\n");

/*
 * arch/<target>/entry.S: the result, or minus the errno when the kernel
 * set the carry flag.
 */
long sys_call(long number, long a1, long a2, long a3, long a4, long a5,
              long a6);

static size_t length(const char *s)
{
    size_t n = 0;

    while ( s[n] != '\0' )
        n++;
    return n;
}

static void put(int fd, const char *s)
{
    sys_call(SYS_write, fd, (long)s, (long)length(s), 0, 0, 0);
}

static void put_number(int fd, long v)
{
    char buf[24];
    char *p = buf + sizeof(buf);
    unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;

    *--p = '\0';
    do
    {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while ( u != 0 );
    if ( v < 0 )
        *--p = '-';
    put(fd, p);
}

/* Reads a string sysctl into buf; "?" when the kernel refuses. */
static const char *sysctl_string(int second, char *buf, size_t size)
{
    int mib[2] = { CTL_KERN, second };
    size_t len = size - 1;

    if ( sys_call(SYS___sysctl, (long)mib, 2, (long)buf, (long)&len, 0, 0) < 0 )
        return "?";
    buf[len < size ? len : size - 1] = '\0';
    return buf;
}

/* Whether the kernel environment has `name` set to "1". */
static int kenv_set(const char *name)
{
    char value[4];

    return sys_call(SYS_kenv, KENV_GET, (long)name, (long)value, sizeof(value),
                    0, 0) == 2 &&
           value[0] == '1' && value[1] == '\0';
}

void init_main(long *stack) __attribute__((noreturn, used));

void init_main(long *stack)
{
    long argc = stack[0];
    const char *name = argc > 0 ? (const char *)stack[1] : "init";
    char ostype[64], osrelease[64];
    long fd, err, howto = RB_POWEROFF | RB_HALT;

    /*
     * The kernel starts init with no descriptors open; the console is
     * there once devfs is mounted on /dev, which the kernel does itself.
     */
    fd = sys_call(SYS_open, (long)"/dev/console", O_RDWR, 0, 0, 0, 0);
    if ( fd < 0 )
        fd = 2;
    put((int)fd, "freebsd-xen-ci init: name=");
    put((int)fd, name);
    put((int)fd, " ostype=");
    put((int)fd, sysctl_string(KERN_OSTYPE, ostype, sizeof(ostype)));
    put((int)fd, " osrelease=");
    put((int)fd, sysctl_string(KERN_OSRELEASE, osrelease, sizeof(osrelease)));
    put((int)fd, "\n");

    /*
     * What Xen's own poweroff request does (sys/dev/xen/control/control.c:
     * shutdown_nice(RB_POWEROFF|RB_HALT)), but for the sync; the Xen PV
     * shutdown handler then asks Xen for SHUTDOWN_poweroff.
     */
    if ( !kenv_set("init_sync") )
        howto |= RB_NOSYNC;
    err = sys_call(SYS_reboot, howto, 0, 0, 0, 0, 0);
    /*
     * Still here: say why, then let init's death panic the kernel, which
     * the harness reports, rather than hang silently.
     */
    put((int)fd,
        "freebsd-xen-ci init: reboot(RB_POWEROFF|RB_HALT) failed, errno ");
    put_number((int)fd, -err);
    put((int)fd, "\n");
    sys_call(SYS_exit, 1, 0, 0, 0, 0, 0);
    for ( ;; )
        ;
}
