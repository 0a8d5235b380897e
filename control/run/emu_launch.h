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

/* extra_args: whitespace-separated strobe-emu flags, or NULL. 0, or -1 with err set. */
int emu_launch(struct emu_child *c, const char *extra_args, char *err, size_t errlen);
void emu_stop(struct emu_child *c);

#endif
