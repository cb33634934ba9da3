/* Names for Xen's negative error returns, so details read "-1 EPERM". */
#ifndef PROBE_ERRNO_H
#define PROBE_ERRNO_H

/* "EPERM" for -1 (or 1); "?" for codes Xen does not define. */
const char *xen_errno_name(long rc);

/* detail_add(d, "refused (" RC_FMT ")", RC_ARGS(rc)) gives "refused (-1 EPERM)". */
#define RC_FMT      "%ld %s"
#define RC_ARGS(rc) (long)(rc), xen_errno_name(rc)

#endif
