/* HTTP responses as the control plane reads them (oneshot.c over the workers' response
 * parsing, http_response.c: chunked and content-length bodies, SSE, status checks; then usage
 * and error JSON), through an in-memory transport that serves the fuzz input in pieces of
 * varying size and then closes. Then as a worker reads a chunked event stream, the input its
 * body: read whole and read in pieces, it must give the same events (bytes and stream
 * offsets), the same end and the same reason (the whole chunks a read holds are taken apart
 * from http-parser, a chunk split across reads by it). */
#include "http_response.h"
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

struct seen {
    struct http_response r;
    char err[256];
    uint64_t hash; /* of every event's bytes and end offset, in order */
    int n;
};

static int seen_event(void *arg, const char *d, size_t len, int truncated, int is_error)
{
    (void)is_error;
    struct seen *s = arg;
    if (truncated) return http_response_cut(&s->r, (uint32_t)s->n, len);
    int64_t end = http_response_event_end(&s->r);
    s->hash = (s->hash ^ (uint64_t)end ^ len) * 1099511628211u;
    for (size_t i = 0; i < len; i++) s->hash = (s->hash ^ (uint8_t)d[i]) * 1099511628211u;
    s->n++;
    return 0;
}

/* The stream read in one read (pieces 0) or in reads of 1-300 bytes; its end state. */
static enum http_response_state read_stream(struct seen *s, const char *text, size_t len,
                                            uint32_t pieces)
{
    memset(s, 0, sizeof *s);
    s->hash = 14695981039346656037u;
    /* a small event limit, so that cut events come up too */
    http_response_init(&s->r, 64, s->err, sizeof s->err - 1, seen_event, s, 0);
    enum http_response_state st = HTTP_RESPONSE_MORE;
    size_t at = 0;
    while (at < len && st == HTTP_RESPONSE_MORE) {
        size_t n = len - at;
        if (pieces) {
            pieces = pieces * 1103515245u + 12345u;
            n = 1 + (pieces >> 16) % 300;
            if (n > len - at) n = len - at;
        }
        st = http_response_feed(&s->r, text + at, n, (int64_t)at);
        at += n;
    }
    if (st == HTTP_RESPONSE_MORE) st = http_response_eof(&s->r, 1);
    s->err[s->r.errbody_len] = 0;
    http_response_free(&s->r);
    return st;
}

static void stream_whole_and_in_pieces(const uint8_t *data, size_t size)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    char *text = malloc(sizeof head + size);
    if (!text) return;
    memcpy(text, head, sizeof head - 1);
    memcpy(text + sizeof head - 1, data, size);
    size_t len = sizeof head - 1 + size;
    static struct seen whole, apart;
    enum http_response_state a = read_stream(&whole, text, len, 0);
    enum http_response_state b = read_stream(&apart, text, len, size ? data[size - 1] | 1u : 1u);
    if (a != b || whole.n != apart.n || whole.hash != apart.hash ||
        whole.r.error != apart.r.error || strcmp(whole.err, apart.err))
        abort(); /* the way the bytes were cut into reads changed what was read */
    free(text);
}

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
    static const struct oneshot_limits limits = {5, 5, 5, 0};
    oneshot_request(&ops, NULL, &ep, req, sizeof req - 1, &limits, &r);
    if (strlen(r.error) >= sizeof r.error) abort();
    stream_whole_and_in_pieces(data, size);
    return 0;
}
