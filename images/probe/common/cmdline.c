#include <probe/setup.h>
#include <probe/cmdline.h>
#include <probe/string.h>

static char line[MAX_GUEST_CMDLINE];

void cmdline_init(void)
{
    memcpy(line, xen_start_info->cmd_line, sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
}

const char *cmdline(void)
{
    return line;
}

const char *cmdline_value(const char *key)
{
    size_t n = strlen(key);
    const char *p;

    for ( p = line; (p = strstr(p, key)); p++ )
        if ( (p == line || p[-1] == ' ') && p[n] == '=' )
            return p + n + 1;
    return NULL;
}
