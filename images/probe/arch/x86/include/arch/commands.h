/* The commands arch/x86 adds at "probe> " (arch/x86/commands.c). */
#ifndef ARCH_COMMANDS_H
#define ARCH_COMMANDS_H

void cmd_badpte(const char *arg);

#endif
