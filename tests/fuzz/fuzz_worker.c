/* HTTP responses as a dataplane worker reads them (worker.c over http_response.c: http-parser,
 * SSE framer, error bodies, keep-alive reuse; the worker's event records), through a
 * descriptor-less transport (the poll seam the DPDK transport uses) that serves the fuzz input
 * in pieces of varying size, sometimes says "again", and closes when the input is spent. Two
 * requests are issued, together or one after the other (then a kept-alive connection is
 * reused). After each input the event log is read back and must be consistent: every request
 * sent has exactly one end, every event belongs to a request and the end counts its events, a
 * retry on a new connection (the reused one proved dead) comes at most once, inside its request
 * and before its events, and the worker's counters agree with the log. */
#include "clock.h"
#include "eventlog.h"
#include "fuzz_util.h"
#include "worker.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define REQUESTS  2
#define MAX_CONNS 4

static const uint8_t *in;
static size_t in_len;
static size_t in_at; /* the worker thread's only */
static uint32_t cut_state;
static struct tconn *conns[MAX_CONNS]; /* open connections (touched by the worker thread only) */

static int f_open(struct transport_ctx *x, struct tconn *c, const struct endpoint *ep)
{
    (void)x;
    (void)ep;
    for (int i = 0; i < MAX_CONNS; i++)
        if (!conns[i]) {
            conns[i] = c;
            c->fd = -1;
            c->connected = 1;
            return 0;
        }
    snprintf(c->err, sizeof c->err, "fuzz transport: too many connections");
    return T_ERROR;
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
    return (ssize_t)(n > 1000 ? 1000 : n); /* partial writes, as a full socket buffer gives */
}
static int f_flush(struct tconn *c)
{
    (void)c;
    return 1;
}
static ssize_t f_recv(struct tconn *c, void *buf, size_t cap, struct rx_stamp *st)
{
    (void)c;
    size_t at = in_at;
    if (at == in_len) return 0;
    cut_state = cut_state * 1103515245u + 12345u;
    uint32_t r = cut_state >> 16;
    if (r % 7 == 0) return T_AGAIN;
    size_t n = 1 + r % 900;
    if (n > in_len - at) n = in_len - at;
    if (n > cap) n = cap;
    memcpy(buf, in + at, n);
    in_at = at + n;
    st->t = st->t_user = clock_now_ns(); /* the worker's idle timeout reads it */
    st->src = TS_USERSPACE;
    return (ssize_t)n;
}
static void f_close(struct tconn *c)
{
    for (int i = 0; i < MAX_CONNS; i++)
        if (conns[i] == c) conns[i] = NULL;
}
/* The input's first byte picks the schedule: bit 0, the second request only after the first
 * ended (so it reuses the kept-alive connection); bit 2, the liveness check misses a
 * connection whose input is spent (the request is sent, reset, and retried on a new one).
 * http-parser skips a leading \r (0x0d: both) or \n (neither). */
static int sequential, check_misses;

/* Once the input is spent the connection is over. */
static int f_alive(struct tconn *c)
{
    (void)c;
    return in_at < in_len || check_misses;
}
static int f_poll(struct transport_ctx *x, struct epoll_event *ev, int max, int64_t wait_ns)
{
    (void)x;
    (void)wait_ns; /* never sleeps: the input is all there */
    int n = 0;
    for (int i = 0; i < MAX_CONNS && n < max; i++)
        if (conns[i])
            ev[n++] =
                (struct epoll_event){.events = EPOLLIN | EPOLLOUT, .data.ptr = conns[i]->owner};
    return n;
}

static const struct transport_ops ops = {"fuzz", f_open,  f_progress, f_send,  f_flush,
                                         f_recv, f_close, f_poll,     f_alive, 0};

/* ---------- a source that issues REQUESTS requests, all due at once ---------- */

static _Atomic int issued, ended;
static const char body[] = "{\"model\":\"m\",\"stream\":true,\"messages\":[]}";

static int src_next(void *arg, int64_t now, char *head, size_t cap, struct request_spec *spec,
                    int64_t *next_due)
{
    (void)arg;
    if (issued == REQUESTS || (sequential && ended < issued)) {
        *next_due = INT64_MAX;
        return 0;
    }
    int len = snprintf(
        head, cap, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
        sizeof body - 1);
    *spec = (struct request_spec){.body = body,
                                  .body_len = sizeof body - 1,
                                  .head_len = (size_t)len,
                                  .tag = (uint64_t)issued,
                                  .t_sched = now};
    issued++;
    return 1;
}
static void src_ended(void *arg, uint64_t tag, int ok, int64_t t_end)
{
    (void)arg;
    (void)tag;
    (void)ok;
    (void)t_end;
    ended++;
}

/* Checks the records from index `from` on (this input's). Returns the log's record count. */
static size_t check_log(const char *dir, size_t from, const struct worker *w)
{
    char err[256];
    struct eventlog_reader *r = eventlog_open(dir, err, sizeof err);
    if (!r) abort();
    uint64_t sent[REQUESTS + 1] = {0}, ends[REQUESTS + 1] = {0}, events[REQUESTS + 1] = {0};
    uint64_t retries[REQUESTS + 1] = {0};
    int64_t counted[REQUESTS + 1] = {0};
    uint64_t n_ends = 0, n_failed = 0;
    for (size_t i = from; i < r->nrecords; i++) {
        const struct log_record *rec = &r->records[i];
        uint64_t id = rec->req_id & 0xffffffffffffULL;
        if (rec->type != REC_REQUEST_SENT && rec->type != REC_REQUEST_END &&
            rec->type != REC_EVENT && rec->type != REC_REQUEST_RETRY)
            continue;
        if (id < 1 || id > REQUESTS) abort(); /* a record for a request never issued */
        char keyed[BODY_KEY_MAX];
        size_t body_len;
        if (rec->len && !eventlog_body(r, rec, keyed, &body_len)) abort();
        if (rec->type == REC_REQUEST_SENT) {
            if (sent[id]++ || ends[id]) abort();
        } else if (rec->type == REC_REQUEST_RETRY) {
            /* at most one, between its request's SENT and END, before any event */
            if (!sent[id] || ends[id] || retries[id]++ || events[id]) abort();
        } else if (rec->type == REC_EVENT) {
            if (!sent[id] || ends[id]) abort(); /* an event outside its request's lifetime */
            if (rec->a != (int64_t)events[id]++) abort();
        } else {
            if (!sent[id] || ends[id]++) abort();
            counted[id] = rec->c;
            n_ends++;
            if (rec->b != ERR_NONE || rec->a < 200 || rec->a > 299) n_failed++;
            if (rec->b < ERR_NONE || rec->b >= ERR_COUNT) abort();
        }
    }
    for (int id = 1; id <= REQUESTS; id++)
        if (sent[id] != 1 || ends[id] != 1 || counted[id] != (int64_t)events[id]) abort();
    if (n_ends != w->stats.finished || n_failed != w->stats.failed ||
        w->stats.started != w->stats.finished || w->stats.in_flight != 0)
        abort();
    size_t n = r->nrecords;
    eventlog_reader_close(r);
    return n;
}

/* One log for many inputs (creating one costs its rings), started again when it grows large. */
static struct eventlog *log;
static size_t log_records;

static void log_restart(const char *dir)
{
    char err[256], path[256];
    if (log && eventlog_close(log)) abort();
    snprintf(path, sizeof path, "%s/events.bin", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/bodies.bin", dir);
    unlink(path);
    log = eventlog_create(dir, "{}", 1, err, sizeof err);
    if (!log) abort();
    log_records = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    in = data;
    in_len = size;
    in_at = 0;
    cut_state = size ? data[0] : 1;
    issued = ended = 0;
    sequential = size && (data[0] & 1);
    check_misses = size && (data[0] & 4);
    memset(conns, 0, sizeof conns);
    const char *dir = fuzz_dir();
    if (!log || log_records > 200000) log_restart(dir);
    struct endpoint ep;
    memset(&ep, 0, sizeof ep);
    struct request_source src = {src_next, src_ended, NULL};
    struct worker w;
    memset(&w, 0, sizeof w);
    struct worker_config cfg = {.index = 0,
                                .ep = &ep,
                                .ops = &ops,
                                .log = log,
                                .max_request_bytes = 4096,
                                .request_timeout_s = 30,
                                .idle_timeout_s = 30,
                                .connect_timeout_s = 30};
    atomic_store(&w.ctl.source, &src);
    atomic_store(&w.ctl.issuing, 1);
    if (worker_start(&w, &cfg)) abort();
    /* every input ends both requests: the transport closes once the input is spent */
    while (ended < REQUESTS) sched_yield();
    worker_join(&w);
    eventlog_sync(log);
    if (eventlog_error(log)) abort();
    log_records = check_log(dir, log_records, &w);
    return 0;
}
