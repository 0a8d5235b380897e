/* strobe-emu's server: one thread, epoll, HTTP/1.1 keep-alive, and the performance model
 * (admission, serial prefill, per-request decode step clocks, power) driven on an absolute
 * schedule. Runs until SIGINT/SIGTERM. */
#ifndef EMU_SERVER_H
#define EMU_SERVER_H
#include "emu_params.h"

/* Returns the process exit status. */
int emu_serve(const struct emu_params *p);

#endif
