#include <probe/console.h>

#include <arch/commands.h>

/*
 * A PVH guest's page tables are its own (Xen translates its frames), so
 * there is no MMU_UPDATE for Xen to refuse.
 */
void cmd_badpte(const char *arg)
{
    (void)arg;
    console_printf("badpte: a PVH guest has no PV page tables: nothing for Xen"
                   " to refuse\n");
}
