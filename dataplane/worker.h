/* A dataplane worker: one thread, one epoll loop, its own sessions, connections and event
 * ring; nothing shared with other workers. Control steers it only through struct
 * worker_control (atomics) and reads struct worker_stats (atomics). Every received SSE
 * event becomes an event-log record stamped with the read that completed it. */
#ifndef STROBE_WORKER_H
#define STROBE_WORKER_H
#include "endpoint.h"
#include "eventlog.h"
#include "transport.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* A request's id: its worker's index and that worker's sequence number; the log's req_id.
 * Every request carries it in an X-Request-ID header ("strobe-" and 16 hex digits of the id)
 * so that a server's logs and traces join strobe's records. */
static inline uint64_t request_id_of(int worker, uint64_t seq)
{
    return ((uint64_t)worker << 48) | seq;
}
#define REQUEST_ID_HEADER "X-Request-ID: strobe-"
#define REQUEST_ID_DIGITS 16
static inline void request_id_write(char *digits, uint64_t id)
{
    for (int i = REQUEST_ID_DIGITS - 1; i >= 0; i--, id >>= 4)
        digits[i] = "0123456789abcdef"[id & 15];
}

/* Builds one request (HTTP head + body) into buf on the worker thread; must not allocate.
 * Returns its length, or 0 if it does not fit. */
typedef size_t (*request_build_fn)(void *arg, int worker, uint64_t seq, char *buf, size_t cap);

/* A workload that decides when each request is due (agents with tool time between turns).
 * Both calls run on the worker thread and must not allocate in steady state. */
struct request_spec {
    const char *body; /* owned by the source; stays valid until ended() for this tag */
    size_t body_len;
    size_t head_len;      /* bytes the source wrote into the head buffer */
    size_t request_id_at; /* where in the head the id's REQUEST_ID_DIGITS go, or 0 */
    uint64_t tag;         /* the source's own id of the request; logged with it */
    int64_t t_sched;      /* when the request was due (latency is charged from here) */
};

struct request_source {
    /* 1: a request is due at or before now and spec/head are filled; 0: none is, and
     * *next_due says when the next one will be (INT64_MAX: none). */
    int (*next)(void *arg, int64_t now, char *head, size_t head_cap, struct request_spec *spec,
                int64_t *next_due);
    /* The request ended (ok = 1 when it completed without a transport error). */
    void (*ended)(void *arg, uint64_t tag, int ok, int64_t t_end);
    void *arg;
};

struct worker_control {
    _Atomic int target;                    /* closed loop: requests to keep in flight */
    struct request_source *_Atomic source; /* when set, it decides instead of target */
    _Atomic int phase;                     /* phase index stamped on new requests */
    _Atomic int issuing;                   /* 0: start no new requests */
    _Atomic int abort_error; /* non-zero enum req_error: end every in-flight request with it */
    _Atomic int quit;
};

struct worker_stats {
    _Atomic int in_flight;
    _Atomic uint64_t started, finished, failed, events, bytes;
    _Atomic uint64_t cpu_ns; /* the worker thread's CPU time, set when it stops */
    _Atomic uint64_t loops;  /* event-loop turns: control waits two to know a source is let go */
};

struct worker_config {
    int index;
    const struct endpoint *ep;
    const struct transport_ops *ops;
    struct transport_ctx *tctx;
    struct eventlog *log;
    request_build_fn build;
    void *build_arg;
    size_t max_request_bytes;
    size_t max_event_bytes; /* longest SSE event data kept (0: SSE_DEFAULT_MAX_EVENT, 8 MiB) */
    double request_timeout_s, idle_timeout_s, connect_timeout_s;
};

struct worker {
    struct worker_config cfg;
    struct worker_control ctl;
    struct worker_stats stats;
    pthread_t thread;
    void *impl;
};

/* Starts the worker's thread: 0, or an errno value (nothing is left to join). */
int worker_start(struct worker *w, const struct worker_config *cfg);
/* Stops and joins a started worker, and frees what it holds. */
void worker_join(struct worker *w);

#endif
