/* Kernel TCP socket pieces (ksock.h): what the epoll and the io_uring transports both do. */
#include "ksock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void ksock_hold_stamping(void)
{
    static atomic_int held;
    /* a load first: every connection calls this, and only the first need write the line */
    if (atomic_load_explicit(&held, memory_order_relaxed) || atomic_exchange(&held, 1)) return;
    /* never closed: the process's last stamping socket closing would turn the key off again */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags);
}

int ksock_socket(struct tconn *c, const struct endpoint *ep)
{
    ksock_hold_stamping();
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
    return 0;
}

/* The host as written in --url, and its address when that differs. */
void ksock_connect_error(struct tconn *c, int e)
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

void ksock_note_local(struct tconn *c)
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

ssize_t ksock_send(struct tconn *c, const void *buf, size_t len)
{
    ssize_t w = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w >= 0) return w;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return T_AGAIN;
    snprintf(c->err, sizeof c->err, "send: %s", strerror(errno));
    return T_ERROR;
}

/* SCM_TIMESTAMPING holds the kernel's software stamp (ts[0]) and, where the NIC supplies
 * one, the raw hardware stamp (ts[2]). */
void ksock_stamp_cmsg(const struct cmsghdr *cm, struct rx_stamp *st)
{
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPING) return;
    struct scm_timestamping tss;
    memcpy(&tss, CMSG_DATA(cm), sizeof tss);
    if (tss.ts[2].tv_sec || tss.ts[2].tv_nsec) {
        st->t = (int64_t)tss.ts[2].tv_sec * 1000000000LL + tss.ts[2].tv_nsec + clock_test_offset_ns;
        st->src = TS_NIC;
    } else if (tss.ts[0].tv_sec || tss.ts[0].tv_nsec) {
        st->t = (int64_t)tss.ts[0].tv_sec * 1000000000LL + tss.ts[0].tv_nsec + clock_test_offset_ns;
        st->src = TS_KERNEL;
    }
}

/* EAGAIN means open and quiet; 0 (the server's FIN), bytes or an error mean it cannot take
 * another request. */
int ksock_quiet(int fd)
{
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}
