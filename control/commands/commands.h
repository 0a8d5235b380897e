/* The subcommands of strobe, one file each in control/commands/ (NAME.c defines cmd_NAME).
 * main.c's table names them, gives each its line of `strobe --help` and dispatches to them.
 * A new subcommand: its file, its line here, its row in that table. */
#ifndef STROBE_COMMANDS_H
#define STROBE_COMMANDS_H

/* Each takes the arguments after `strobe` (argv[0] is the subcommand's name), prints its own
 * --help, and returns the process exit status (2 for a bad command line). */
int cmd_slt(int argc, char **argv);
int cmd_agents(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_tap(int argc, char **argv);

#endif
