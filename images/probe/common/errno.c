#include <probe/errno.h>

static const char *const names[] = {
#define XEN_ERRNO(name, value) [value] = #name,
#include <xen/errno.h>
};

const char *xen_errno_name(long rc)
{
    unsigned long code = rc < 0 ? -(unsigned long)rc : (unsigned long)rc;

    if ( code < sizeof(names) / sizeof(names[0]) && names[code] )
        return names[code];
    return "?";
}
