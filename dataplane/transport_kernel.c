/* Kernel sockets: epoll-driven, non-blocking connect, SO_TIMESTAMPING receive stamps. TLS is
 * tls_layer.c over these sockets, fed from our own recvmsg() so it keeps the stamps. */
#include "transport.h"

#include "tls_layer.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
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

/* Why a connect failed, naming the target: "connection to 127.0.0.1:9 refused: is the
 * server running?" (the host as written in --url, and its address when that differs). */
static void connect_error(struct tconn *c, int e)
{
    const struct endpoint *ep = c->ep;
    char where[400];
    int v6 = strchr(ep->host, ':') != NULL;
    snprintf(where, sizeof where, v6 ? "[%s]:%d" : "%s:%d", ep->host, ep->port);
    if (ep->addr_text[0] && strcmp(ep->addr_text, ep->host))
        snprintf(where + strlen(where), sizeof where - strlen(where), " (%s)", ep->addr_text);
    if (e == ECONNREFUSED)
        snprintf(c->err, sizeof c->err, "connection to %s refused: is the server running?", where);
    else
        snprintf(c->err, sizeof c->err, "connect to %s: %s", where, strerror(e));
}

static int plain_open(struct transport_ctx *x, struct tconn *c, const struct endpoint *ep)
{
    (void)x;
    void *owner = c->owner;
    memset(c, 0, sizeof *c);
    c->owner = owner;
    c->ep = ep;
    c->fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(c->err, sizeof c->err, "socket: %s", strerror(errno));
        return T_ERROR;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* hardware flags are harmless where the NIC has none: the raw stamp then stays zero */
    int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE |
                SOF_TIMESTAMPING_RX_HARDWARE | SOF_TIMESTAMPING_RAW_HARDWARE;
    setsockopt(c->fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags);
    if (connect(c->fd, (const struct sockaddr *)&ep->addr, ep->addrlen) == 0) {
        c->connected = 1;
    } else if (errno != EINPROGRESS) {
        connect_error(c, errno);
        close(c->fd);
        c->fd = -1;
        return T_ERROR;
    }
    c->want_write = !c->connected;
    return 0;
}

/* The local address and port, once per connection: an FPGA tap's records name flows by them. */
static void note_local(struct tconn *c)
{
    struct sockaddr_storage me;
    socklen_t ml = sizeof me;
    if (getsockname(c->fd, (struct sockaddr *)&me, &ml) != 0) return;
    if (me.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&me;
        c->local_ip = ntohl(a->sin_addr.s_addr);
        c->local_port = ntohs(a->sin_port);
    } else if (me.ss_family == AF_INET6) {
        c->local_port = ntohs(((const struct sockaddr_in6 *)&me)->sin6_port);
    }
}

static int plain_progress(struct tconn *c)
{
    if (c->connected) {
        if (!c->local_port) note_local(c);
        return 1;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr) {
        connect_error(c, soerr);
        return T_ERROR;
    }
    /* still in progress unless the peer address is known */
    struct sockaddr_storage peer;
    socklen_t pl = sizeof peer;
    if (getpeername(c->fd, (struct sockaddr *)&peer, &pl) != 0) return T_AGAIN;
    c->connected = 1;
    c->want_write = 0;
    note_local(c);
    return 1;
}

static ssize_t plain_send(struct tconn *c, const void *buf, size_t len)
{
    ssize_t w = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (w >= 0) return w;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return T_AGAIN;
    snprintf(c->err, sizeof c->err, "send: %s", strerror(errno));
    return T_ERROR;
}

static int plain_flush(struct tconn *c)
{
    (void)c;
    return 1;
}

/* One recvmsg; the SCM_TIMESTAMPING control message holds the kernel's software stamp
 * (ts[0]) and, where the NIC supplies one, the raw hardware stamp (ts[2]). */
static ssize_t raw_recv(struct tconn *c, void *buf, size_t cap, struct rx_stamp *st)
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
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPING) continue;
        struct scm_timestamping tss;
        memcpy(&tss, CMSG_DATA(cm), sizeof tss);
        if (tss.ts[2].tv_sec || tss.ts[2].tv_nsec) {
            st->t = (int64_t)tss.ts[2].tv_sec * 1000000000LL + tss.ts[2].tv_nsec;
            st->src = TS_NIC;
        } else if (tss.ts[0].tv_sec || tss.ts[0].tv_nsec) {
            st->t = (int64_t)tss.ts[0].tv_sec * 1000000000LL + tss.ts[0].tv_nsec;
            st->src = TS_KERNEL;
        }
    }
    return n;
}

static ssize_t plain_recv(struct tconn *c, void *buf, size_t cap, struct rx_stamp *st)
{
    return raw_recv(c, buf, cap, st);
}

/* A peek, once per reuse of a kept-alive connection (not per read): EAGAIN means open and
 * quiet; 0 (the server's FIN), bytes or an error mean it cannot take another request. */
static int plain_alive(struct tconn *c)
{
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static void plain_close(struct tconn *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

static const struct transport_ops plain_ops = {"kernel",    plain_open,  plain_progress,
                                               plain_send,  plain_flush, plain_recv,
                                               plain_close, NULL,        plain_alive};

static int tls_open(struct transport_ctx *x, struct tconn *c, const struct endpoint *ep)
{
    return tls_layer_open(x->tls, &plain_ops, x, c, ep);
}

static const struct transport_ops tls_ops = {
    "kernel+tls",    tls_open, tls_layer_progress, tls_layer_send, tls_layer_flush, tls_layer_recv,
    tls_layer_close, NULL,     tls_layer_alive};

const struct transport_ops *transport_kernel_ops(int tls) { return tls ? &tls_ops : &plain_ops; }
