/* Kernel sockets: epoll-driven, non-blocking connect, SO_TIMESTAMPING receive stamps.
 * TLS runs OpenSSL over memory BIOs fed from our own recvmsg(), so a TLS read keeps the
 * kernel's timestamp of the segment that carried it (OpenSSL's socket BIO would hide it). */
#include "transport.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct transport_ctx {
    SSL_CTX *ssl_ctx;
    int insecure;
};

struct transport_ctx *transport_kernel_ctx_new(const struct transport_options *o, char *err,
                                               size_t errlen)
{
    struct transport_ctx *x = calloc(1, sizeof *x);
    x->insecure = o->insecure;
    x->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!x->ssl_ctx) goto fail;
    SSL_CTX_set_min_proto_version(x->ssl_ctx, TLS1_2_VERSION);
    if (SSL_CTX_set_default_verify_paths(x->ssl_ctx) != 1) goto fail;
    if (o->ca_file && SSL_CTX_load_verify_locations(x->ssl_ctx, o->ca_file, NULL) != 1) {
        snprintf(err, errlen, "cannot load --ca-file %s as PEM certificates", o->ca_file);
        SSL_CTX_free(x->ssl_ctx);
        free(x);
        return NULL;
    }
    SSL_CTX_set_verify(x->ssl_ctx, o->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    return x;
fail:
    snprintf(err, errlen, "OpenSSL could not set up a TLS client context: %s",
             ERR_reason_error_string(ERR_get_error()));
    if (x->ssl_ctx) SSL_CTX_free(x->ssl_ctx);
    free(x);
    return NULL;
}

void transport_ctx_free(struct transport_ctx *x)
{
    if (!x) return;
    SSL_CTX_free(x->ssl_ctx);
    free(x);
}

/* ---------- plain ---------- */

static int plain_open(struct transport_ctx *x, struct tconn *c, const struct endpoint *ep)
{
    (void)x;
    memset(c, 0, sizeof *c);
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
        snprintf(c->err, sizeof c->err, "connect to %s port %d: %s", ep->addr_text, ep->port,
                 strerror(errno));
        close(c->fd);
        c->fd = -1;
        return T_ERROR;
    }
    c->want_write = !c->connected;
    return 0;
}

static int plain_progress(struct tconn *c)
{
    if (c->connected) return 1;
    int soerr = 0;
    socklen_t len = sizeof soerr;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr) {
        snprintf(c->err, sizeof c->err, "connect: %s", strerror(soerr));
        return T_ERROR;
    }
    /* still in progress unless the peer address is known */
    struct sockaddr_storage peer;
    socklen_t pl = sizeof peer;
    if (getpeername(c->fd, (struct sockaddr *)&peer, &pl) != 0) return T_AGAIN;
    c->connected = 1;
    c->want_write = 0;
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

static int plain_flush(struct tconn *c) { (void)c; return 1; }

/* One recvmsg; the SCM_TIMESTAMPING control message holds the kernel's software stamp
 * (ts[0]) and, where the NIC supplies one, the raw hardware stamp (ts[2]). */
static ssize_t raw_recv(struct tconn *c, void *buf, size_t cap, struct rx_stamp *st)
{
    struct iovec iov = {buf, cap};
    union {
        char bytes[CMSG_SPACE(sizeof(struct scm_timestamping)) + 64];
        struct cmsghdr align;
    } ctrl;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.bytes,
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

static void plain_close(struct tconn *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

/* ---------- TLS over memory BIOs ---------- */

static int tls_open(struct transport_ctx *x, struct tconn *c, const struct endpoint *ep)
{
    int rc = plain_open(x, c, ep);
    if (rc) return rc;
    SSL *ssl = SSL_new(x->ssl_ctx);
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rbio, wbio);
    SSL_set_connect_state(ssl);
    unsigned char ipbuf[16];
    int is_ip = inet_pton(AF_INET, ep->host, ipbuf) == 1 || inet_pton(AF_INET6, ep->host, ipbuf) == 1;
    if (!is_ip) SSL_set_tlsext_host_name(ssl, ep->host);
    if (!x->insecure) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
        if (is_ip) X509_VERIFY_PARAM_set1_ip_asc(vp, ep->host);
        else SSL_set1_host(ssl, ep->host);
    }
    c->ssl = ssl;
    c->rbio = rbio;
    c->wbio = wbio;
    return 0;
}

/* Sends what is left of an earlier flush. 1 done, T_AGAIN, T_ERROR. */
static int send_pending(struct tconn *c)
{
    while (c->pend_off < c->pend_len) {
        ssize_t w = send(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                c->want_write = 1;
                return T_AGAIN;
            }
            snprintf(c->err, sizeof c->err, "send: %s", strerror(errno));
            return T_ERROR;
        }
        c->pend_off += (size_t)w;
    }
    c->pend_len = c->pend_off = 0;
    return 1;
}

/* Moves what OpenSSL wrote into the socket. 1 all sent, T_AGAIN, T_ERROR. */
static int tls_flush(struct tconn *c)
{
    int rc = send_pending(c);
    if (rc != 1) return rc;
    for (;;) {
        size_t pending = BIO_ctrl_pending(c->wbio);
        if (!pending) {
            c->want_write = 0;
            return 1;
        }
        if (pending > c->pend_cap) {
            c->pend_cap = pending;
            c->pend = realloc(c->pend, pending);
        }
        int n = BIO_read(c->wbio, c->pend, (int)pending);
        c->pend_len = n > 0 ? (size_t)n : 0;
        c->pend_off = 0;
        rc = send_pending(c);
        if (rc != 1) return rc;
    }
}

static int tls_error(struct tconn *c, int rc, const char *what)
{
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return T_AGAIN;
    long verify = SSL_get_verify_result(c->ssl);
    unsigned long q = ERR_get_error();
    if (verify != X509_V_OK)
        snprintf(c->err, sizeof c->err, "TLS %s: certificate verify failed: %s", what,
                 X509_verify_cert_error_string(verify));
    else
        snprintf(c->err, sizeof c->err, "TLS %s failed: %s", what,
                 q ? ERR_reason_error_string(q) : "connection closed");
    ERR_clear_error();
    return T_ERROR;
}

/* Reads the socket into the read BIO. 1 got bytes, T_AGAIN, T_ERROR (incl. EOF). */
static int tls_pump_in(struct tconn *c, struct rx_stamp *st)
{
    char buf[16384];
    struct rx_stamp tmp;
    ssize_t n = raw_recv(c, buf, sizeof buf, st ? st : &tmp);
    if (n > 0) c->last = st ? *st : tmp;
    if (n == 0) {
        snprintf(c->err, sizeof c->err, "peer closed the TLS connection");
        return T_ERROR;
    }
    if (n < 0) return (int)n;
    BIO_write(c->rbio, buf, (int)n);
    return 1;
}

static int tls_progress(struct tconn *c)
{
    if (!c->connected) {
        int rc = plain_progress(c);
        if (rc != 1) return rc;
    }
    for (;;) {
        int rc = SSL_do_handshake(c->ssl);
        int f = tls_flush(c);
        if (f == T_ERROR) return T_ERROR;
        if (rc == 1) return f == 1 ? 1 : T_AGAIN;
        int e = tls_error(c, rc, "handshake");
        if (e == T_ERROR) return T_ERROR;
        if (SSL_get_error(c->ssl, rc) == SSL_ERROR_WANT_READ) {
            int p = tls_pump_in(c, NULL);
            if (p != 1) return p;
        }
    }
}

static ssize_t tls_send(struct tconn *c, const void *buf, size_t len)
{
    int rc = SSL_write(c->ssl, buf, (int)len);
    if (rc <= 0) return tls_error(c, rc, "write");
    int f = tls_flush(c);
    return f == T_ERROR ? T_ERROR : rc;
}

static ssize_t tls_recv(struct tconn *c, void *buf, size_t cap, struct rx_stamp *st)
{
    for (;;) {
        int rc = SSL_read(c->ssl, buf, (int)cap);
        if (rc > 0) {
            *st = c->last; /* the read that brought the record's last bytes */
            return rc;
        }
        int e = SSL_get_error(c->ssl, rc);
        if (e == SSL_ERROR_ZERO_RETURN) return 0;
        if (e != SSL_ERROR_WANT_READ) return tls_error(c, rc, "read");
        int p = tls_pump_in(c, st);
        if (p == T_ERROR && !strcmp(c->err, "peer closed the TLS connection")) return 0;
        if (p != 1) return p;
    }
}

static void tls_close(struct tconn *c)
{
    if (c->ssl) SSL_free(c->ssl); /* frees both BIOs */
    c->ssl = NULL;
    free(c->pend);
    c->pend = NULL;
    c->pend_len = c->pend_off = c->pend_cap = 0;
    plain_close(c);
}

static const struct transport_ops plain_ops = {"kernel", plain_open, plain_progress, plain_send,
                                               plain_flush, plain_recv, plain_close, NULL};
static const struct transport_ops tls_ops = {"kernel+tls", tls_open, tls_progress, tls_send,
                                             tls_flush, tls_recv, tls_close, NULL};

const struct transport_ops *transport_kernel_ops(int tls) { return tls ? &tls_ops : &plain_ops; }
