/* TLS as a layer over any byte transport (transport.h): the kernel's sockets or lwIP. A
 * transport's TLS table calls these; the connection remembers its lower table. */
#ifndef STROBE_TLS_LAYER_H
#define STROBE_TLS_LAYER_H
#include "transport.h"

struct tls_ctx; /* SSL_CTX: trust anchors, verification on or off */

/* NULL with err set. Verification (certificate and host name or IP) is on unless insecure. */
struct tls_ctx *tls_ctx_new(const struct transport_options *o, char *err, size_t errlen);
void tls_ctx_free(struct tls_ctx *x);

/* Opens the lower connection, then sets up the client session with SNI and verification. */
int tls_layer_open(struct tls_ctx *x, const struct transport_ops *lower,
                   struct transport_ctx *lower_ctx, struct tconn *c, const struct endpoint *ep);
int tls_layer_progress(struct tconn *c);
ssize_t tls_layer_send(struct tconn *c, const void *buf, size_t len);
int tls_layer_flush(struct tconn *c);
ssize_t tls_layer_recv(struct tconn *c, void *buf, size_t cap, struct rx_stamp *st);
/* Plaintext or records already read but not taken, or the lower connection closed: 0. */
int tls_layer_alive(struct tconn *c);
void tls_layer_close(struct tconn *c);

#endif
