/* TLS over any byte transport below it (kernel sockets, lwIP): OpenSSL runs over memory BIOs
 * fed by the lower transport's own reads, so a TLS read keeps the receive stamp of the
 * segment that completed its record (OpenSSL's socket BIO would hide it). */
#include "tls_layer.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tls_ctx {
    SSL_CTX *ssl_ctx;
    int insecure;
};

struct tls_ctx *tls_ctx_new(const struct transport_options *o, char *err, size_t errlen)
{
    struct tls_ctx *x = calloc(1, sizeof *x);
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

void tls_ctx_free(struct tls_ctx *x)
{
    if (!x) return;
    SSL_CTX_free(x->ssl_ctx);
    free(x);
}

int tls_layer_open(struct tls_ctx *x, const struct transport_ops *lower,
                   struct transport_ctx *lower_ctx, struct tconn *c, const struct endpoint *ep)
{
    int rc = lower->open(lower_ctx, c, ep);
    if (rc) return rc;
    c->lower = lower;
    SSL *ssl = SSL_new(x->ssl_ctx);
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rbio, wbio);
    SSL_set_connect_state(ssl);
    unsigned char ipbuf[16];
    int is_ip =
        inet_pton(AF_INET, ep->host, ipbuf) == 1 || inet_pton(AF_INET6, ep->host, ipbuf) == 1;
    if (!is_ip) SSL_set_tlsext_host_name(ssl, ep->host);
    if (!x->insecure) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
        if (is_ip)
            X509_VERIFY_PARAM_set1_ip_asc(vp, ep->host);
        else
            SSL_set1_host(ssl, ep->host);
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
        ssize_t w = c->lower->send(c, c->pend + c->pend_off, c->pend_len - c->pend_off);
        if (w == T_AGAIN) {
            c->want_write = 1;
            return T_AGAIN;
        }
        if (w < 0) return T_ERROR;
        c->pend_off += (size_t)w;
    }
    c->pend_len = c->pend_off = 0;
    return c->lower->flush(c);
}

/* Moves what OpenSSL wrote into the lower transport. 1 all sent, T_AGAIN, T_ERROR. */
int tls_layer_flush(struct tconn *c)
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

/* Reads the lower transport into the read BIO. 1 got bytes, T_AGAIN, T_ERROR (incl. EOF). */
static int tls_pump_in(struct tconn *c, struct rx_stamp *st)
{
    char buf[16384];
    struct rx_stamp tmp;
    ssize_t n = c->lower->recv(c, buf, sizeof buf, st ? st : &tmp);
    if (n > 0) c->last = st ? *st : tmp;
    if (n == 0) {
        snprintf(c->err, sizeof c->err, "peer closed the TLS connection");
        return T_ERROR;
    }
    if (n < 0) return (int)n;
    BIO_write(c->rbio, buf, (int)n);
    return 1;
}

int tls_layer_progress(struct tconn *c)
{
    if (!c->connected) {
        int rc = c->lower->progress(c);
        if (rc != 1) return rc;
        c->connected = 1;
    }
    for (;;) {
        int rc = SSL_do_handshake(c->ssl);
        int f = tls_layer_flush(c);
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

ssize_t tls_layer_send(struct tconn *c, const void *buf, size_t len)
{
    int rc = SSL_write(c->ssl, buf, (int)len);
    if (rc <= 0) return tls_error(c, rc, "write");
    int f = tls_layer_flush(c);
    return f == T_ERROR ? T_ERROR : rc;
}

ssize_t tls_layer_recv(struct tconn *c, void *buf, size_t cap, struct rx_stamp *st)
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

int tls_layer_alive(struct tconn *c)
{
    /* a server's close_notify arrives as a record: the lower peek sees its bytes */
    if (SSL_pending(c->ssl) > 0 || BIO_ctrl_pending(c->rbio) > 0) return 0;
    return !c->lower->alive || c->lower->alive(c);
}

void tls_layer_close(struct tconn *c)
{
    if (c->ssl) SSL_free(c->ssl); /* frees both BIOs */
    c->ssl = NULL;
    free(c->pend);
    c->pend = NULL;
    c->pend_len = c->pend_off = c->pend_cap = 0;
    if (c->lower) c->lower->close(c);
}
