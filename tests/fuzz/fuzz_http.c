/* HTTP responses as the control plane reads them (oneshot.c over the workers' response
 * parsing, http_response.c: chunked and content-length bodies, SSE, status checks; then usage
 * and error JSON), through an in-memory transport that serves the fuzz input in pieces of
 * varying size and then closes. */
#include "oneshot.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const uint8_t *in;
static size_t in_len, in_at;
static uint32_t cut_state;
static int always_ready = -1; /* /dev/null polls readable and writable at once */

static int f_open(struct transport_ctx *x, struct tconn *c, const struct endpoint *ep)
{
    (void)x;
    (void)ep;
    c->fd = always_ready;
    c->connected = 1;
    return 0;
}
static int f_progress(struct tconn *c)
{
    (void)c;
    return 1;
}
static ssize_t f_send(struct tconn *c, const void *b, size_t n)
{
    (void)c;
    (void)b;
    return (ssize_t)n;
}
static int f_flush(struct tconn *c)
{
    (void)c;
    return 1;
}
static ssize_t f_recv(struct tconn *c, void *buf, size_t cap, struct rx_stamp *st)
{
    (void)c;
    if (in_at == in_len) return 0;
    cut_state = cut_state * 1103515245u + 12345u;
    size_t n = 1 + (cut_state >> 16) % 700;
    if (n > in_len - in_at) n = in_len - in_at;
    if (n > cap) n = cap;
    memcpy(buf, in + in_at, n);
    in_at += n;
    st->t = st->t_user = 0;
    st->src = TS_USERSPACE;
    return (ssize_t)n;
}
static void f_close(struct tconn *c) { (void)c; }

static const struct transport_ops ops = {"fuzz", f_open,  f_progress, f_send, f_flush,
                                         f_recv, f_close, NULL,       NULL,   0};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (always_ready < 0) always_ready = open("/dev/null", O_RDWR);
    in = data;
    in_len = size;
    in_at = 0;
    cut_state = size ? data[0] : 1;
    struct endpoint ep;
    memset(&ep, 0, sizeof ep);
    struct oneshot_result r;
    static const char req[] = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n";
    oneshot_request(&ops, NULL, &ep, req, sizeof req - 1, 5, &r);
    if (strlen(r.error) >= sizeof r.error) abort();
    return 0;
}
