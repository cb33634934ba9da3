/* The interactive commands at "probe> ". */
#ifndef PROBE_COMMANDS_H
#define PROBE_COMMANDS_H

/*
 * Run a comma-separated list (probe.run=...) as if each had been typed at
 * the prompt. NULL or "" runs nothing.
 */
void commands_run_list(const char *list);

/* Prompt, read a line (echoing it), run it, forever. */
void __attribute__((noreturn)) commands_loop(void);

#endif
