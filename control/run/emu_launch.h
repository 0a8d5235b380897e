/* The built-in target: when no --url is given, strobe starts strobe-emu on a free loopback
 * port and stops it at the end. The binary is looked up next to strobe, in the build tree,
 * then on PATH. */
#ifndef STROBE_EMU_LAUNCH_H
#define STROBE_EMU_LAUNCH_H
#include <sys/types.h>

struct emu_child {
    pid_t pid;
    int port;
    char path[4096];
};

/* extra_args: whitespace-separated strobe-emu flags, or NULL. 0, or -1 with err set.
 * The emulator started is the one emu_watch_exited() looks at, until emu_stop(). */
int emu_launch(struct emu_child *c, const char *extra_args, char *err, size_t errlen);
void emu_stop(struct emu_child *c);
/* Whether the emulator emu_launch() started has exited on its own (crashed, or killed by
 * someone else) since: 1 the first time it is found so, with how it ended in `how` ("exit
 * status 1", "killed by signal 9 (Killed)"); it is reaped then, and emu_stop() does nothing.
 * 0 while it runs, after emu_stop(), or when none was started. Never blocks. */
int emu_watch_exited(char *how, size_t howlen);

#endif
