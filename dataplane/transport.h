/* The transport seam: how a session gets bytes to and from the system under test, and when
 * each received byte arrived. The kernel transport (plain and TLS tables) lives in
 * transport_kernel.c; io_uring (transport_uring.c) and DPDK + lwIP implement the same table.
 * All calls are non-blocking. Readiness comes from the worker's epoll on tconn.fd, or, for a
 * transport that finds it itself (ops->poll set: io_uring's completions, DPDK + lwIP's stack),
 * from ops->poll, which reports the connections (by tconn.owner) that became ready. */
#ifndef STROBE_TRANSPORT_H
#define STROBE_TRANSPORT_H
#include "clock.h"
#include "endpoint.h"
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/types.h>

struct rx_stamp {
    int64_t t;          /* best stamp of the read (the last segment it consumed) */
    int64_t t_user;     /* userspace clock read right after the read returned */
    enum ts_source src; /* which clock t came from */
};

struct transport_ctx; /* per worker: TLS context, options */

/* Zero-initialise before open; the transport owns everything inside. */
struct tconn {
    int fd;
    void *owner;                       /* the worker's session, returned by ops->poll */
    void *impl;                        /* a descriptor-less transport's own connection */
    const struct transport_ops *lower; /* TLS: the byte transport under it */
    int connected;                     /* TCP connect finished */
    int want_write;                    /* progress/flush needs the socket writable */
    void *ssl;                         /* TLS only */
    void *rbio, *wbio;
    char *pend; /* TLS bytes the socket did not take yet */
    size_t pend_len, pend_off, pend_cap;
    struct rx_stamp last; /* stamp of the latest raw read (TLS) */
    uint32_t local_ip;    /* IPv4, host order, set once connected (0: unknown or IPv6) */
    uint16_t local_port;
    const struct endpoint *ep; /* the target, for messages (kernel transport) */
    char err[160];             /* why the last call failed */
};

enum { T_AGAIN = -1, T_ERROR = -2 };

struct transport_ops {
    const char *name;
    /* Starts a non-blocking connect. 0, or T_ERROR with c->err set. */
    int (*open)(struct transport_ctx *x, struct tconn *c, const struct endpoint *ep);
    /* Drives connect and handshake: 1 ready, T_AGAIN wait for readiness, T_ERROR. */
    int (*progress)(struct tconn *c);
    /* Bytes taken (may be fewer than len), T_AGAIN, or T_ERROR. */
    ssize_t (*send)(struct tconn *c, const void *buf, size_t len);
    /* Pushes anything buffered inside the transport: 1 done, T_AGAIN, T_ERROR. */
    int (*flush)(struct tconn *c);
    /* Bytes read (> 0), 0 on orderly close, T_AGAIN, or T_ERROR; stamps the read. */
    ssize_t (*recv)(struct tconn *c, void *buf, size_t cap, struct rx_stamp *st);
    void (*close)(struct tconn *c);
    /* NULL for epoll-driven transports. Otherwise: runs the stack for at most wait_ns and
     * fills up to max events (events: EPOLLIN/EPOLLOUT/EPOLLERR, data.ptr: tconn.owner);
     * returns how many. */
    int (*poll)(struct transport_ctx *x, struct epoll_event *ev, int max, int64_t wait_ns);
    /* Before a kept-alive connection is reused: 1 when it is still open with nothing unread,
     * 0 when the peer closed or reset it, or sent bytes nobody asked for (it must not carry
     * another request). Does not block; NULL: assumed alive. */
    int (*alive)(struct tconn *c);
    /* 1: a recv that returns fewer bytes than asked has left nothing to read, and the poll
     * says when more comes (a plain socket under level-triggered epoll), so the worker goes
     * back to the poll instead of asking again for a T_AGAIN: one syscall fewer per wake-up.
     * 0 where a transport may hold more than one read returns (TLS records, completions). */
    int short_read_drains;
};

struct transport_options {
    int insecure;        /* skip certificate and hostname verification */
    const char *ca_file; /* extra trust anchor (PEM), or NULL */
};

/* One context per worker (share-nothing). NULL with err set on failure. */
struct transport_ctx *transport_kernel_ctx_new(const struct transport_options *o, char *err,
                                               size_t errlen);
void transport_ctx_free(struct transport_ctx *x);
const struct transport_ops *transport_kernel_ops(int tls);

#endif
