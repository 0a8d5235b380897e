/* strobe-emu's connection I/O: the seam between the shared server (emu_server.c: requests,
 * scheduler, SSE writing) and a network stack. Two backends: kernel sockets with epoll
 * (emu_io_kernel.c) and lwIP over DPDK ports (emu_lwip.c), which can also serve kernel
 * connections on a control address. One thread; a backend creates each accepted connection
 * with emu_server_conn_new(itself) and keeps its own handle in it; the server reaches a
 * connection's I/O through c->io, and waits through the backend it started. */
#ifndef EMU_IO_H
#define EMU_IO_H
#include "emu_params.h"

#include <stdint.h>
#include <sys/types.h>

struct conn;

enum { EMU_IO_IN = 1, EMU_IO_OUT = 2 };

struct emu_io_event {
    struct conn *c;
    unsigned ev; /* EMU_IO_IN (readable, end of stream or error) | EMU_IO_OUT (writable) */
};

enum { EMU_IO_AGAIN = -2 }; /* recv: nothing to read now */

struct emu_io {
    const char *name;
    /* Opens the listener(s) and prints the "listening on" line. 0, or -1 after printing one
     * sentence saying what was wrong. */
    int (*start)(const struct emu_params *p);
    /* Accepts what is pending and returns connection events, waiting at most until `due`
     * (absolute CLOCK_REALTIME ns; 0: no deadline, return within 200 ms). Returns 0 at `due`. */
    int (*wait)(struct emu_io_event *evs, int max, int64_t due);
    /* Bytes taken now (0: none, wait for EMU_IO_OUT), or -1: the connection is dead. */
    ssize_t (*send)(struct conn *c, const void *buf, size_t len);
    /* Bytes read, 0 at the end of the stream, -1 on error, EMU_IO_AGAIN when nothing is there. */
    ssize_t (*recv)(struct conn *c, void *buf, size_t cap);
    /* Whether the next wait should report EMU_IO_OUT for c (output is queued). */
    void (*want_write)(struct conn *c, int on);
    /* Releases c's handle; with `reset`, aborts with an RST as a crashed server would. */
    void (*close)(struct conn *c, int reset);
    /* Closes what is still open, lets every close finish (tcp_linger.h), releases the
     * listener(s). */
    void (*stop)(void);
    /* The backend's TCP connections not yet closed at both ends (open, or closing), for
     * /metrics; NULL where the kernel keeps them. */
    unsigned (*unclosed)(void);
};

const struct emu_io *emu_io_kernel(void);
/* For a backend that also takes kernel connections: opens a kernel listener and returns the
 * port it got (--listen HOST:0 gives a free one), or -1 after printing why. */
int emu_io_kernel_listen(const char *host, int port);
/* Kernel connection events within timeout_ns (0: only what is pending), without the
 * deadline spin of the kernel backend's own wait. */
int emu_io_kernel_poll(struct emu_io_event *evs, int max, int64_t timeout_ns);
#ifdef STROBE_EMU_HAVE_DPDK
const struct emu_io *emu_io_lwip(void);
#endif

#endif
