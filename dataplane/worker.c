/* The worker loop: top up in-flight requests, poll, read, parse, record.
 * Per received read: one recvmsg (with its timestamp), the response parser over the bytes
 * (http_response.h: http_parser, and the SSE framer over the body), one ring record per event.
 * No allocation (a session's SSE buffer grows only when an event larger than any before it
 * arrives), no JSON, no locks. */
#include "worker.h"

#include "http_response.h"
#include "redact.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define READ_BUF    (64 * 1024)
#define ERRBODY_MAX 2048
#define TICK_MS     5
/* Timeouts are tenths of seconds and more: each open session is looked at once per sweep, a
 * slice of them per tick, so tens of thousands of sessions do not cost a pass every tick. */
#define TIMEOUT_SWEEP_MS       100
#define CONNECT_BACKOFF_MAX_NS 100000000LL /* 100 ms */
/* starts per loop turn at most: the loop must come back to its controls (a stop, an abort)
 * even when every start fails at once */
#define MAX_STARTS_PER_TURN 4096

enum sess_state { S_IDLE, S_CONNECTING, S_SENDING, S_RECEIVING };

struct session {
    struct impl *w;
    struct tconn tc;
    int open;
    enum sess_state state;
    uint64_t conn_serial;
    int reused;
    int polled_out;
    /* the request in flight */
    uint64_t req_id;
    int phase;
    int64_t t_sched, t_written, t_first_byte, t_last_rx;
    int64_t t_connect; /* the current connection's connect began (a retry's is later) */
    char *req_buf;     /* the request, or its head when a source supplies the body */
    size_t req_len, req_off;
    const char *body;
    size_t body_len, body_off;
    uint64_t tag;
    struct request_source *source; /* that issued the request in flight, or NULL */
    struct http_response rsp;      /* its response: status, keep-alive, errbody */
    int got_done, sent_recorded;
    uint32_t n_events;
    /* the request's one retry on a new connection, after its reused one proved dead */
    int retried, retry_pending; /* pending: its REC_REQUEST_RETRY is not written yet */
    enum req_error retry_err;
    int64_t t_retry;
    char retry_why[160];
    /* rsp.errbody: the server's error body for a non-2xx status, else strobe's reason */
    char errbody[ERRBODY_MAX];
    struct rx_stamp stamp; /* of the read being parsed */
    int64_t conn_rx;       /* bytes received on this connection before the read being parsed */
    struct session *next_idle;
    int active_index;
    uint32_t key_slot;   /* its number among the worker's sessions: its key's in the log */
    struct body_key key; /* the event bodies of its request are keyed against */
};

struct impl {
    struct worker *pub;
    int epfd;
    struct session **active;
    int nactive, cap_active;
    int timeout_cursor;   /* where the next slice of the timeout sweep starts (descending) */
    struct session *idle; /* sessions without a request (open or not) */
    uint64_t seq, conn_serial;
    uint32_t nsessions;
    /* connects failing in a row (a server that died): new requests wait until
     * connect_retry_at, 1 ms after the first failure, doubling up to CONNECT_BACKOFF_MAX_NS */
    int connect_failures;
    int64_t connect_retry_at;
    char rbuf[READ_BUF];
};

/* Counters only this worker writes: a relaxed load and store, no locked read-modify-write
 * on the per-event path; control reads them with relaxed loads. */
static inline void bump(_Atomic uint64_t *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

static void record(struct impl *w, const struct log_record *rec, const void *body, size_t len)
{
    eventlog_put(w->pub->cfg.log, w->pub->cfg.index, rec, body, len);
}

/* epoll registration; a transport with its own poll reports readiness itself */
static int uses_epoll(const struct session *s) { return !s->w->pub->cfg.ops->poll; }

static void set_poll(struct session *s, int out)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0), .data.ptr = s};
    if (s->polled_out != out) {
        if (uses_epoll(s)) epoll_ctl(s->w->epfd, EPOLL_CTL_MOD, s->tc.fd, &ev);
        s->polled_out = out;
    }
}

static void close_conn(struct session *s)
{
    if (!s->open) return;
    if (uses_epoll(s)) epoll_ctl(s->w->epfd, EPOLL_CTL_DEL, s->tc.fd, NULL);
    s->w->pub->cfg.ops->close(&s->tc);
    s->open = 0;
}

static void deactivate(struct impl *w, struct session *s)
{
    int i = s->active_index;
    w->active[i] = w->active[--w->nactive];
    w->active[i]->active_index = i;
    s->state = S_IDLE;
    s->next_idle = w->idle;
    w->idle = s;
}

static void record_sent(struct session *s)
{
    struct log_record rec =
        rec_request_sent_encode(&(struct rec_request_sent){.worker = (uint16_t)s->w->pub->cfg.index,
                                                           .req_id = s->req_id,
                                                           .t_sched = s->t_sched,
                                                           .t_written = s->t_written,
                                                           .tag = s->tag,
                                                           .phase = s->phase,
                                                           .conn_serial = s->conn_serial,
                                                           .reused = s->reused});
    record(s->w, &rec, NULL, 0);
    s->sent_recorded = 1;
}

/* After the request's SENT record (which describes its first attempt), once the retry's last
 * byte is written or the retry ends. */
static void record_retry(struct session *s)
{
    struct log_record rec = rec_request_retry_encode(
        &(struct rec_request_retry){.worker = (uint16_t)s->w->pub->cfg.index,
                                    .req_id = s->req_id,
                                    .t_failed = s->t_retry,
                                    .t_written = s->t_written,
                                    .error = s->retry_err,
                                    .conn_serial = s->conn_serial});
    record(s->w, &rec, s->retry_why, strlen(s->retry_why));
    s->retry_pending = 0;
}

static int open_conn(struct session *s);
static void progress_connect(struct session *s);
static void end_request(struct session *s, enum req_error err);

/* Response state back to "nothing received", for a new attempt at the same request. */
static void reset_response(struct session *s)
{
    s->t_written = s->t_first_byte = 0;
    s->got_done = 0;
    s->n_events = 0;
    s->req_off = s->body_off = 0;
    http_response_reset(&s->rsp);
}

/* A kept-alive connection the server had closed (llama-server closes after each streamed
 * response while advertising keep-alive; others close idle ones) when the liveness check
 * could not yet see it: a request that failed on it before any response byte arrived is sent
 * once more on a new connection, from the same scheduled time (its latency includes the
 * reconnect). 1 when this took the request over (retried, or ended if the new connection
 * could not be opened), 0 when it is not one to retry. */
static int retry_on_new_connection(struct session *s, enum req_error err)
{
    if (!s->reused || s->retried || s->t_first_byte || (err != ERR_SEND && err != ERR_RESET))
        return 0;
    if (!s->sent_recorded) record_sent(s); /* the first attempt: t2 = 0, it never left */
    s->retried = s->retry_pending = 1;
    s->retry_err = err;
    s->t_retry = clock_now_ns();
    snprintf(s->retry_why, sizeof s->retry_why, "%.*s", (int)s->rsp.errbody_len, s->errbody);
    if (!s->retry_why[0]) snprintf(s->retry_why, sizeof s->retry_why, "%s", s->tc.err);
    close_conn(s);
    reset_response(s);
    s->state = S_CONNECTING;
    if (open_conn(s)) {
        s->rsp.errbody_len = (size_t)snprintf(s->errbody, sizeof s->errbody, "%s", s->tc.err);
        end_request(s, ERR_CONNECT);
        return 1;
    }
    progress_connect(s);
    return 1;
}

/* Ends the request in flight, records its facts, and frees the session for the next one. */
static void end_request(struct session *s, enum req_error err)
{
    struct impl *w = s->w;
    struct worker_stats *st = &w->pub->stats;
    if (retry_on_new_connection(s, err)) return;
    if (err == ERR_CONNECT) {
        int k = w->connect_failures < 7 ? w->connect_failures : 7;
        int64_t backoff = 1000000LL << k;
        w->connect_failures++;
        w->connect_retry_at =
            clock_now_ns() + (backoff < CONNECT_BACKOFF_MAX_NS ? backoff : CONNECT_BACKOFF_MAX_NS);
    }
    if (!s->sent_recorded) record_sent(s); /* failed before its last byte left: t2 = 0 */
    if (s->retry_pending) record_retry(s);
    struct log_record rec =
        rec_request_end_encode(&(struct rec_request_end){.worker = (uint16_t)w->pub->cfg.index,
                                                         .req_id = s->req_id,
                                                         .t_end = clock_now_ns(),
                                                         .t_first_byte = s->t_first_byte,
                                                         .status = s->rsp.status,
                                                         .error = err,
                                                         .events = s->n_events});
    int bad_status = s->rsp.status && (s->rsp.status < 200 || s->rsp.status > 299);
    /* the body is the server's error body for a non-2xx status, else strobe's reason */
    record(w, &rec, s->errbody, s->rsp.errbody_len);
    atomic_fetch_add_explicit(&st->finished, 1, memory_order_relaxed);
    if (err || bad_status) atomic_fetch_add_explicit(&st->failed, 1, memory_order_relaxed);
    if (err || !s->rsp.keep_alive) close_conn(s);
    deactivate(w, s);
    if (s->source) s->source->ended(s->source->arg, s->tag, !err && !bad_status, rec.t);
    s->source = NULL;
    /* last: once control sees no request in flight, no source callback is running */
    atomic_fetch_sub_explicit(&st->in_flight, 1, memory_order_release);
}

static int open_conn(struct session *s)
{
    struct impl *w = s->w;
    const struct worker_config *c = &w->pub->cfg;
    s->tc.owner = s;
    if (c->ops->open(c->tctx, &s->tc, c->ep) != 0) return -1;
    s->open = 1;
    s->reused = 0;
    s->t_connect = clock_now_ns();
    s->conn_rx = 0;
    s->conn_serial = ((uint64_t)c->index << 48) | ++w->conn_serial;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLOUT, .data.ptr = s};
    s->polled_out = 1;
    if (uses_epoll(s)) epoll_ctl(w->epfd, EPOLL_CTL_ADD, s->tc.fd, &ev);
    return 0;
}

static void try_send(struct session *s)
{
    const struct transport_ops *ops = s->w->pub->cfg.ops;
    while (s->req_off < s->req_len || s->body_off < s->body_len) {
        int head = s->req_off < s->req_len;
        ssize_t n = head ? ops->send(&s->tc, s->req_buf + s->req_off, s->req_len - s->req_off)
                         : ops->send(&s->tc, s->body + s->body_off, s->body_len - s->body_off);
        if (n == T_AGAIN) {
            set_poll(s, 1);
            return;
        }
        if (n < 0) {
            end_request(s, ERR_SEND);
            return;
        }
        if (head)
            s->req_off += (size_t)n;
        else
            s->body_off += (size_t)n;
    }
    int f = ops->flush(&s->tc);
    if (f == T_ERROR) {
        end_request(s, ERR_SEND);
        return;
    }
    if (f == T_AGAIN) {
        set_poll(s, 1);
        return;
    }
    s->t_written = clock_now_ns();
    s->state = S_RECEIVING;
    set_poll(s, 0);
    if (!s->sent_recorded) record_sent(s);
    if (s->retry_pending) record_retry(s);
}

static void progress_connect(struct session *s)
{
    int rc = s->w->pub->cfg.ops->progress(&s->tc);
    if (rc == T_AGAIN) {
        set_poll(s, s->tc.want_write);
        return;
    }
    if (rc == T_ERROR) {
        snprintf(s->errbody, sizeof s->errbody, "%s", s->tc.err);
        s->rsp.errbody_len = strlen(s->errbody);
        end_request(s, ERR_CONNECT);
        return;
    }
    s->w->connect_failures = 0;
    s->state = S_SENDING;
    try_send(s);
}

static int on_sse_event(void *arg, const char *data, size_t len, int truncated, int is_error);

static struct session *new_session(struct impl *w)
{
    struct session *s = calloc(1, sizeof *s);
    s->w = w;
    s->key_slot = w->nsessions++;
    s->req_buf = malloc(w->pub->cfg.max_request_bytes);
    http_response_init(&s->rsp, w->pub->cfg.max_event_bytes, s->errbody, sizeof s->errbody,
                       on_sse_event, s, 0);
    return s;
}

/* Starts one request at scheduled time t_sched: from the closed-loop builder, or, when
 * spec is given, the head already in `head` and the source's body. */
static int start_request(struct impl *w, int64_t t_sched, const struct request_spec *spec,
                         struct request_source *src, struct session *s);

static struct session *take_session(struct impl *w)
{
    struct session *s = w->idle;
    if (s)
        w->idle = s->next_idle;
    else
        s = new_session(w);
    return s;
}

static int start_request(struct impl *w, int64_t t_sched, const struct request_spec *spec,
                         struct request_source *src, struct session *s)
{
    struct worker *pub = w->pub;
    if (w->nactive == w->cap_active) {
        w->cap_active = w->cap_active ? w->cap_active * 2 : 256;
        w->active = realloc(w->active, (size_t)w->cap_active * sizeof *w->active);
    }
    s->active_index = w->nactive;
    w->active[w->nactive++] = s;
    uint64_t seq = ++w->seq;
    s->req_id = request_id_of(pub->cfg.index, seq);
    s->phase = atomic_load_explicit(&pub->ctl.phase, memory_order_relaxed);
    s->t_sched = t_sched;
    s->t_last_rx = t_sched;
    s->sent_recorded = s->retried = s->retry_pending = 0;
    reset_response(s);
    s->source = src;
    if (spec) {
        s->req_len = spec->head_len;
        if (spec->request_id_at) request_id_write(s->req_buf + spec->request_id_at, s->req_id);
        s->body = spec->body;
        s->body_len = spec->body_len;
        s->tag = spec->tag;
    } else {
        s->req_len = pub->cfg.build(pub->cfg.build_arg, pub->cfg.index, seq, s->req_buf,
                                    pub->cfg.max_request_bytes);
        s->body = NULL;
        s->body_len = 0;
        s->tag = 0;
    }
    atomic_fetch_add_explicit(&pub->stats.in_flight, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&pub->stats.started, 1, memory_order_relaxed);
    if (!s->req_len) {
        end_request(s, ERR_SEND);
        return -1;
    }
    /* the server may have closed it since (its FIN not yet seen by the loop): then a new one */
    if (s->open && pub->cfg.ops->alive && !pub->cfg.ops->alive(&s->tc)) close_conn(s);
    if (s->open) {
        s->reused = 1;
        s->state = S_SENDING;
        try_send(s);
        return 0;
    }
    s->state = S_CONNECTING;
    if (open_conn(s)) {
        snprintf(s->errbody, sizeof s->errbody, "%s", s->tc.err);
        s->rsp.errbody_len = strlen(s->errbody);
        end_request(s, ERR_CONNECT);
        return 0;
    }
    progress_connect(s);
    return 0;
}

/* ---------- response parsing (http_response.h) ---------- */

/* Per SSE event of a 2xx body: stamped with the read that completed it, one record. */
static int on_sse_event(void *arg, const char *data, size_t len, int truncated, int is_error)
{
    struct session *s = arg;
    struct impl *w = s->w;
    (void)is_error; /* the event's JSON says it too; analysis reads it */
    /* a cut event is not recorded (analysis would read a torn JSON); the request ends */
    if (truncated) return http_response_cut(&s->rsp, s->n_events, len);
    /* TLS: stream offsets are of plaintext, which a tap on the wire cannot see */
    int64_t last_byte = s->tc.ssl ? -1 : http_response_event_end(&s->rsp) - 1;
    struct rec_event ev = {.worker = (uint16_t)w->pub->cfg.index,
                           .ts_source = (uint8_t)s->stamp.src,
                           .req_id = s->req_id,
                           .t_stamp = s->stamp.t,
                           .t_read = s->stamp.t_user,
                           .index = s->n_events++,
                           .stream_offset = last_byte,
                           .local_ip = s->tc.local_ip,
                           .local_port = s->tc.local_port};
    struct eventlog *log = w->pub->cfg.log;
    int producer = w->pub->cfg.index;
    if (len <= BODY_KEY_MAX) {
        /* the record and the stored body are written straight into the log's ring */
        char *slot = eventlog_event_reserve(log, producer, BODY_KEY_HEAD + len);
        char *stored = slot + sizeof(struct log_record);
        size_t stored_len = len;
        /* a body that echoes the API key is stored whole, where the writer blanks it all */
        enum body_key_role role =
            redact_holds(data, len)
                ? BODY_WHOLE
                : body_key_encode(&s->key, s->req_id, data, len, stored, &stored_len);
        if (role != BODY_KEYED) memcpy(stored, data, len);
        ev.body_keyed = role == BODY_KEYED;
        rec_event_put((struct log_record *)(void *)slot, &ev);
        eventlog_event_commit(log, producer, slot, stored_len, role, s->key_slot);
    } else {
        struct log_record rec = rec_event_encode(&ev); /* longer than any key: whole */
        eventlog_put_event(log, producer, &rec, data, len, BODY_WHOLE, s->key_slot);
    }
    if (len == 6 && !memcmp(data, "[DONE]", 6)) s->got_done = 1;
    bump(&w->pub->stats.events, 1);
    return 0;
}

static void on_readable(struct session *s)
{
    struct impl *w = s->w;
    const struct transport_ops *ops = w->pub->cfg.ops;
    for (;;) {
        ssize_t n = ops->recv(&s->tc, w->rbuf, sizeof w->rbuf, &s->stamp);
        if (n == T_AGAIN) return;
        if (n < 0) {
            s->rsp.errbody_len = (size_t)snprintf(s->errbody, sizeof s->errbody, "%s", s->tc.err);
            end_request(s, ERR_RESET);
            return;
        }
        enum http_response_state st;
        if (n == 0) {
            /* EOF ends a body delimited by the connection's close; otherwise it is a reset */
            st = http_response_eof(&s->rsp, s->t_first_byte != 0);
        } else {
            if (!s->t_first_byte) s->t_first_byte = s->stamp.t;
            s->t_last_rx = s->stamp.t_user;
            bump(&w->pub->stats.bytes, (uint64_t)n);
            st = http_response_feed(&s->rsp, w->rbuf, (size_t)n, s->conn_rx);
            s->conn_rx += n;
            if (st == HTTP_RESPONSE_MORE) {
                if (ops->short_read_drains && (size_t)n < sizeof w->rbuf) return;
                continue;
            }
        }
        /* it ended, or failed: then its rest is not read and the connection is closed */
        end_request(s, st == HTTP_RESPONSE_DONE ? ERR_NONE : s->rsp.error);
        return;
    }
}

static void on_event(struct impl *w, struct session *s, uint32_t events)
{
    if (s->state == S_IDLE) {
        /* an idle kept-alive connection became readable: the server closed it */
        close_conn(s);
        return;
    }
    (void)w;
    if (s->state == S_CONNECTING) {
        progress_connect(s);
        return;
    }
    if (s->state == S_SENDING && (events & EPOLLOUT)) {
        try_send(s);
        if (s->state != S_RECEIVING) return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable(s);
}

static void check_timeouts(struct impl *w, int64_t now)
{
    const struct worker_config *c = &w->pub->cfg;
    int64_t total = (int64_t)(c->request_timeout_s * 1e9);
    int64_t idle = (int64_t)(c->idle_timeout_s * 1e9);
    int64_t conn = (int64_t)(c->connect_timeout_s * 1e9);
    int slice = (w->nactive * TICK_MS + TIMEOUT_SWEEP_MS - 1) / TIMEOUT_SWEEP_MS;
    for (int k = 0; k < slice && w->nactive; k++) {
        /* descending, so a session moved into an ended one's place was already looked at */
        if (w->timeout_cursor <= 0 || w->timeout_cursor > w->nactive)
            w->timeout_cursor = w->nactive;
        struct session *s = w->active[--w->timeout_cursor];
        enum req_error e = ERR_NONE;
        if (now - s->t_sched > total)
            e = ERR_TIMEOUT;
        else if (s->state == S_CONNECTING && now - s->t_connect > conn)
            e = ERR_CONNECT;
        else if (now - s->t_last_rx > idle)
            e = ERR_IDLE_TIMEOUT;
        if (e) {
            if (!s->rsp.errbody_len)
                s->rsp.errbody_len =
                    (size_t)snprintf(s->errbody, sizeof s->errbody, "%s after %.1f s",
                                     e == ERR_CONNECT   ? "connect timed out"
                                     : e == ERR_TIMEOUT ? "request timed out"
                                                        : "nothing received",
                                     e == ERR_CONNECT   ? c->connect_timeout_s
                                     : e == ERR_TIMEOUT ? c->request_timeout_s
                                                        : c->idle_timeout_s);
            end_request(s, e);
        }
    }
}

static struct session *s_last(struct impl *w) { return w->active[w->nactive - 1]; }

static void abort_all(struct impl *w, enum req_error e)
{
    while (w->nactive) {
        end_request(s_last(w), e);
    }
}

/* The server refuses connections: new requests wait until the back-off ends. */
static int connect_backing_off(const struct impl *w, int64_t now)
{
    return w->connect_failures && now < w->connect_retry_at;
}

static void *worker_main(void *arg)
{
    struct worker *pub = arg;
    struct impl *w = pub->impl;
    struct epoll_event evs[256];
    int64_t last_tick = 0;
    while (!atomic_load_explicit(&pub->ctl.quit, memory_order_relaxed)) {
        int ab = atomic_load_explicit(&pub->ctl.abort_error, memory_order_relaxed);
        if (ab) {
            abort_all(w, (enum req_error)ab);
            atomic_store(&pub->ctl.abort_error, 0);
        }
        int target = atomic_load_explicit(&pub->ctl.target, memory_order_relaxed);
        struct request_source *src = atomic_load_explicit(&pub->ctl.source, memory_order_acquire);
        int64_t wait_ns = TICK_MS * 1000000LL;
        int64_t now = clock_now_ns();
        if (connect_backing_off(w, now)) {
            /* the server refuses connections: due requests wait (their latency still runs
             * from when they were due) instead of failing in a tight loop */
            if (w->connect_retry_at - now < wait_ns) wait_ns = w->connect_retry_at - now;
        } else if (atomic_load_explicit(&pub->ctl.issuing, memory_order_relaxed)) {
            if (src) {
                /* a source: start every request that is due, sleep until the next one */
                int64_t next_due = INT64_MAX;
                for (int started = 0; started < MAX_STARTS_PER_TURN; started++) {
                    struct session *s = take_session(w);
                    struct request_spec spec;
                    if (!src->next(src->arg, now, s->req_buf, pub->cfg.max_request_bytes, &spec,
                                   &next_due)) {
                        s->next_idle = w->idle;
                        w->idle = s;
                        break;
                    }
                    start_request(w, spec.t_sched, &spec, src, s);
                }
                if (next_due != INT64_MAX && next_due - now < wait_ns)
                    wait_ns = next_due - now > 0 ? next_due - now : 0;
            } else {
                /* closed loop: a finished request is replaced at once, due now */
                for (int want = target - w->nactive;
                     want > 0 && w->nactive < target && !connect_backing_off(w, clock_now_ns());
                     want--)
                    start_request(w, clock_now_ns(), NULL, NULL, take_session(w));
            }
        }
        atomic_fetch_add_explicit(&pub->stats.loops, 1, memory_order_release);
        int n;
        if (pub->cfg.ops->poll) {
            n = pub->cfg.ops->poll(pub->cfg.tctx, evs, 256, wait_ns);
        } else {
            struct timespec wait = clock_ns_to_timespec(wait_ns);
            n = epoll_pwait2(w->epfd, evs, 256, &wait, NULL);
        }
        for (int i = 0; i < n; i++) on_event(w, evs[i].data.ptr, evs[i].events);
        now = clock_now_ns();
        if (now - last_tick > TICK_MS * 1000000LL) {
            check_timeouts(w, now);
            last_tick = now;
        }
    }
    abort_all(w, ERR_INTERRUPTED);
    struct timespec cpu;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
    atomic_store(&pub->stats.cpu_ns, (uint64_t)cpu.tv_sec * 1000000000ULL + (uint64_t)cpu.tv_nsec);
    return NULL;
}

int worker_start(struct worker *pub, const struct worker_config *cfg)
{
    pub->cfg = *cfg;
    pub->impl = NULL;
    struct impl *w = calloc(1, sizeof *w);
    if (!w) return ENOMEM;
    w->pub = pub;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0) {
        int err = errno;
        free(w);
        return err;
    }
    pub->impl = w;
    int rc = pthread_create(&pub->thread, NULL, worker_main, pub);
    if (rc) {
        close(w->epfd);
        free(w);
        pub->impl = NULL;
        return rc;
    }
    char name[16]; /* shown by top -H and per-thread /proc accounting (scripts/longrun.py) */
    snprintf(name, sizeof name, "strobe-w%d", cfg->index);
    pthread_setname_np(pub->thread, name);
    return 0;
}

void worker_join(struct worker *pub)
{
    atomic_store(&pub->ctl.quit, 1);
    pthread_join(pub->thread, NULL);
    struct impl *w = pub->impl;
    while (w->idle) {
        struct session *s = w->idle;
        w->idle = s->next_idle;
        close_conn(s);
        http_response_free(&s->rsp);
        free(s->req_buf);
        free(s);
    }
    free(w->active);
    close(w->epfd);
    free(w);
}
