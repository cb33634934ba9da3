/* Shared by the console banner and the GUEST_VERSION note. */
#ifndef PROBE_VERSION_H
#define PROBE_VERSION_H

#define PROBE_VERSION "1"

#endif
