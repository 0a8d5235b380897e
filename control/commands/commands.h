/* The subcommands of strobe, one file each in control/commands/ (NAME.c defines cmd_NAME),
 * listed once in commands.def, which main.c expands into its dispatch table and usage list.
 * Each takes the arguments after `strobe` (argv[0] is the subcommand's name), prints its own
 * --help, and returns the process exit status (2 for a bad command line). */
#ifndef STROBE_COMMANDS_H
#define STROBE_COMMANDS_H

#define COMMAND(name, summary) int cmd_##name(int argc, char **argv);
#include "commands.def"
#undef COMMAND

#endif
