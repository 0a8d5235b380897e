/* strobe-emu's event loop and connections, whatever the network stack (emu_io.h): read and
 * parse requests with http-parser (one request at a time per connection), queue output the
 * connection would not take, and wait until the next deadline of the scheduler (emu_sched.c)
 * or the next I/O. */
#include "emu_server.h"
#include "emu_state.h"

#include "clock.h"
#include "prefix_cache.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

struct emu_state emu_state;

enum { STEPS_PER_RUN = 16 };

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* ---------- connection output ---------- */

static void want_out(struct conn *c, int on)
{
    if (c->writing == on) return;
    c->io->want_write(c, on);
    c->writing = on;
}

/* Writes now if nothing is queued, queues the rest. Returns -1 if the connection died. */
int emu_server_conn_write(struct conn *c, const char *data, size_t len)
{
    if (c->out_len == c->out_off) {
        c->out_len = c->out_off = 0;
        while (len) {
            ssize_t w = c->io->send(c, data, len);
            if (w < 0) return -1;
            if (w == 0) break;
            data += w;
            len -= (size_t)w;
        }
    }
    if (len) {
        if (c->out_len + len > c->out_cap) {
            while (c->out_len + len > c->out_cap) c->out_cap = c->out_cap ? c->out_cap * 2 : 65536;
            c->out = realloc(c->out, c->out_cap);
        }
        memcpy(c->out + c->out_len, data, len);
        c->out_len += len;
        want_out(c, 1);
    }
    return 0;
}

static int conn_flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = c->io->send(c, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0) return -1;
        if (w == 0) break;
        c->out_off += (size_t)w;
    }
    if (c->req) emu_sched_output_taken(c->req); /* a step waiting on this output */
    if (c->out_off < c->out_len) return 0;
    c->out_len = c->out_off = 0;
    want_out(c, 0);
    if (c->close_after_write) return -1;
    return 0;
}

/* One SSE event as one HTTP chunk, in one write. */
int emu_server_send_event(struct conn *c, const char *event, size_t len)
{
    static char frame[EVENT_BUF + 32];
    int hn = 0; /* the chunk's size in hex, without snprintf (once per token) */
    for (int shift = (int)(sizeof len * 8) - 4; shift >= 0; shift -= 4)
        if (hn || (len >> shift) & 15 || !shift)
            frame[hn++] = "0123456789abcdef"[(len >> shift) & 15];
    memcpy(frame + hn, "\r\n", 2);
    hn += 2;
    memcpy(frame + hn, event, len);
    memcpy(frame + hn + len, "\r\n", 2);
    return emu_server_conn_write(c, frame, (size_t)hn + len + 2);
}

void emu_server_send_response(struct conn *c, int status, const char *ctype, const char *body,
                              size_t len)
{
    const char *reason = status == 200   ? "OK"
                         : status == 404 ? "Not Found"
                         : status == 400 ? "Bad Request"
                         : status == 405 ? "Method Not Allowed"
                         : status == 429 ? "Too Many Requests"
                         : status == 503 ? "Service Unavailable"
                                         : "Internal Server Error";
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n", status,
                      reason, ctype, len, c->keep_alive ? "" : "Connection: close\r\n");
    if (!c->keep_alive) c->close_after_write = 1;
    if (emu_server_conn_write(c, head, (size_t)hn) == 0) emu_server_conn_write(c, body, len);
    if (c->close_after_write && c->out_len == c->out_off) emu_server_conn_close(c);
}

/* ---------- connections ---------- */

static int on_url(http_parser *hp, const char *at, size_t n)
{
    struct conn *c = hp->data;
    if (c->url_len + n >= sizeof c->url) return 1;
    memcpy(c->url + c->url_len, at, n);
    c->url_len += n;
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
    struct conn *c = hp->data;
    if (c->body_len + n > MAX_BODY) return 1;
    if (c->body_len + n > c->body_cap) {
        c->body_cap = (c->body_len + n) * 2;
        c->body = realloc(c->body, c->body_cap);
    }
    memcpy(c->body + c->body_len, at, n);
    c->body_len += n;
    return 0;
}

static int on_message_begin(http_parser *hp)
{
    struct conn *c = hp->data;
    c->url_len = 0;
    c->body_len = 0;
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    struct conn *c = hp->data;
    c->message_ready = 1;
    c->keep_alive = http_should_keep_alive(hp);
    http_parser_pause(hp, 1); /* one request at a time per connection */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Parses buffered input; dispatches at most one complete request. */
static void conn_process_input(struct conn *c)
{
    while (!c->req && !c->closed && c->in_parsed < c->in_len) {
        size_t n = http_parser_execute(&c->parser, &parser_settings, c->in + c->in_parsed,
                                       c->in_len - c->in_parsed);
        c->in_parsed += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e != HPE_OK && e != HPE_PAUSED) {
            c->keep_alive = 0;
            emu_request_reply_error(c, 400, http_errno_description(e));
            return;
        }
        if (c->message_ready) {
            c->message_ready = 0;
            http_parser_pause(&c->parser, 0);
            emu_request_dispatch(c);
        } else {
            break;
        }
    }
    if (!c->closed && c->in_parsed == c->in_len) c->in_len = c->in_parsed = 0;
}

void emu_server_conn_after_response(struct conn *c)
{
    if (c->closed) return;
    if (!c->keep_alive) {
        c->close_after_write = 1;
        if (c->out_len == c->out_off) emu_server_conn_close(c);
        return;
    }
    conn_process_input(c);
}

static void conn_release(struct conn *c, int reset)
{
    if (c->closed) return;
    c->io->close(c, reset);
    c->closed = 1;
    if (c->req) {
        struct req *r = c->req;
        r->conn = NULL;
        c->req = NULL;
        emu_sched_output_taken(r); /* a step waiting on output is due: it releases r's slot */
        emu_sched_req_maybe_free(r);
    }
    c->grave_next = emu_state.graveyard;
    emu_state.graveyard = c;
}

void emu_server_conn_close(struct conn *c) { conn_release(c, 0); }
void emu_server_conn_reset(struct conn *c) { conn_release(c, 1); }

struct conn *emu_server_conn_new(const struct emu_io *io)
{
    struct conn *c = calloc(1, sizeof *c);
    c->io = io;
    c->fd = -1;
    c->keep_alive = 1;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    return c;
}

static void conn_free(struct conn *c)
{
    free(c->in);
    free(c->out);
    free(c->body);
    free(c);
}

static void conn_read(struct conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 16384) {
            c->in_cap = c->in_cap ? c->in_cap * 2 : 65536;
            c->in = realloc(c->in, c->in_cap);
        }
        ssize_t n = c->io->recv(c, c->in + c->in_len, c->in_cap - c->in_len);
        if (n > 0) {
            c->in_len += (size_t)n;
            if (c->in_len > MAX_BODY + 65536) {
                c->keep_alive = 0;
                emu_request_reply_error(c, 400, "request too large");
                return;
            }
            continue;
        }
        if (n == EMU_IO_AGAIN) break;
        emu_server_conn_close(c);
        return;
    }
    conn_process_input(c);
}

int emu_serve(const struct emu_params *p)
{
    memset(&emu_state, 0, sizeof emu_state);
    emu_state.p = p;
    /* buckets as fine as the fastest emulated speeds (a token every 0.3 ms) need */
    static const double ttft_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08,
                                         0.1,   0.25,   0.5,   0.75, 1,    2.5,  5,    7.5,
                                         10,    20,     40,    80,   160,  640};
    static const double itl_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025,  0.05,    0.075,  0.1,   0.15,   0.2,   0.3,
                                        0.4,    0.5,     0.75,   1,     2.5,    5};
    emu_state.ttft = (struct emu_hist){.bounds = ttft_bounds,
                                       .nbounds = sizeof ttft_bounds / sizeof *ttft_bounds};
    emu_state.itl =
        (struct emu_hist){.bounds = itl_bounds, .nbounds = sizeof itl_bounds / sizeof *itl_bounds};
#ifdef STROBE_EMU_HAVE_DPDK
    emu_state.io = p->transport == EMU_TRANSPORT_DPDK ? emu_io_lwip() : emu_io_kernel();
#else
    emu_state.io = emu_io_kernel();
#endif
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (emu_state.io->start(p)) return 1;
    emu_state.cache = prefix_cache_new(p->kv_cache_tokens);
    emu_state.fault_rng = p->seed * 0x9e3779b97f4a7c15ULL + 7;
    emu_state.started_ns = emu_state.energy_at_ns = clock_now_ns();
    /* the default 50 µs timer slack would be the largest pacing error */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    enum { MAXEV = 256 };
    struct emu_io_event evs[MAXEV];
    while (!stop_flag) {
        int n = emu_state.io->wait(evs, MAXEV, emu_state.heap_len ? emu_state.heap[0].due : 0);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].c;
            if (c->closed) continue;
            if (evs[i].ev & EMU_IO_OUT)
                if (conn_flush(c)) emu_server_conn_close(c);
            if (!c->closed && (evs[i].ev & EMU_IO_IN)) conn_read(c);
        }
        /* a bounded run of timers between two waits: when steps are due faster than they
         * are written (unpaced, or a tiny step), the network stack still gets its turn (lwIP
         * sends, and takes the acks that free its send buffer, only inside wait); a few steps
         * per request per run, so that unpaced writes fill whole segments */
        for (size_t budget = emu_state.heap_len * STEPS_PER_RUN;
             budget && emu_state.heap_len && emu_state.heap[0].due <= clock_now_ns(); budget--) {
            struct timer t = emu_sched_heap_pop();
            emu_sched_on_timer(t.req, t.due);
        }
        while (emu_state.graveyard) {
            struct conn *c = emu_state.graveyard;
            emu_state.graveyard = c->grave_next;
            conn_free(c);
        }
    }
    fprintf(stderr, "strobe-emu: stopping after %llu requests\n",
            (unsigned long long)emu_state.requests_total);
    prefix_cache_free(emu_state.cache);
    emu_state.io->stop();
    return 0;
}
