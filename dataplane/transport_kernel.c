/* Kernel sockets: epoll-driven, non-blocking connect, SO_TIMESTAMPING receive stamps. TLS is
 * tls_layer.c over these sockets, fed from our own recvmsg() so it keeps the stamps. */
#include "transport.h"

#include "ksock.h"
#include "tls_layer.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct transport_ctx {
    struct tls_ctx *tls;
};

struct transport_ctx *transport_kernel_ctx_new(const struct transport_options *o, char *err,
                                               size_t errlen)
{
    struct transport_ctx *x = calloc(1, sizeof *x);
    x->tls = tls_ctx_new(o, err, errlen);
    if (!x->tls) {
        free(x);
        return NULL;
    }
    return x;
}

void transport_ctx_free(struct transport_ctx *x)
{
    if (!x) return;
    tls_ctx_free(x->tls);
    free(x);
}

/* ---------- plain ---------- */

static int plain_open(struct transport_ctx *x, struct tconn *c, const struct endpoint *ep)
{
    (void)x;
    if (ksock_socket(c, ep)) return T_ERROR;
    if (connect(c->fd, (const struct sockaddr *)&ep->addr, ep->addrlen) == 0) {
        c->connected = 1;
    } else if (errno != EINPROGRESS) {
        ksock_connect_error(c, errno);
        close(c->fd);
        c->fd = -1;
        return T_ERROR;
    }
    c->want_write = !c->connected;
    return 0;
}

static int plain_progress(struct tconn *c)
{
    if (c->connected) {
        if (!c->local_port) ksock_note_local(c);
        return 1;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr) {
        ksock_connect_error(c, soerr);
        return T_ERROR;
    }
    /* still in progress unless the peer address is known */
    struct sockaddr_storage peer;
    socklen_t pl = sizeof peer;
    if (getpeername(c->fd, (struct sockaddr *)&peer, &pl) != 0) return T_AGAIN;
    c->connected = 1;
    c->want_write = 0;
    ksock_note_local(c);
    return 1;
}

static int plain_flush(struct tconn *c)
{
    (void)c;
    return 1;
}

/* One recvmsg, stamped by its SCM_TIMESTAMPING control message where the kernel sent one. */
static ssize_t plain_recv(struct tconn *c, void *buf, size_t cap, struct rx_stamp *st)
{
    struct iovec iov = {buf, cap};
    union {
        char bytes[CMSG_SPACE(sizeof(struct scm_timestamping)) + 64];
        struct cmsghdr align;
    } ctrl;
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = ctrl.bytes,
                         .msg_controllen = sizeof ctrl.bytes};
    ssize_t n = recvmsg(c->fd, &msg, 0);
    int64_t now = clock_now_ns();
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return T_AGAIN;
        snprintf(c->err, sizeof c->err, "recv: %s", strerror(errno));
        return T_ERROR;
    }
    st->t_user = now;
    st->t = now;
    st->src = TS_USERSPACE;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
        ksock_stamp_cmsg(cm, st);
    return n;
}

/* A peek, once per reuse of a kept-alive connection (not per read). */
static int plain_alive(struct tconn *c) { return ksock_quiet(c->fd); }

static void plain_close(struct tconn *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

static const struct transport_ops plain_ops = {"kernel",    plain_open, plain_progress, ksock_send,
                                               plain_flush, plain_recv, plain_close,    NULL,
                                               plain_alive, 1};

static int tls_open(struct transport_ctx *x, struct tconn *c, const struct endpoint *ep)
{
    return tls_layer_open(x->tls, &plain_ops, x, c, ep);
}

static const struct transport_ops tls_ops = {"kernel+tls",       tls_open,
                                             tls_layer_progress, tls_layer_send,
                                             tls_layer_flush,    tls_layer_recv,
                                             tls_layer_close,    NULL,
                                             tls_layer_alive,    0};

const struct transport_ops *transport_kernel_ops(int tls) { return tls ? &tls_ops : &plain_ops; }
