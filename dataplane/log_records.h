/* The event log's record format, owned here: the raw 64-byte record, the record types, and
 * for each type a struct with named fields, one encoder (what a producer writes) and one
 * decoder (what the analysis reads). No producer or reader touches the raw fields. Encoders
 * are inline and allocate nothing: the worker calls them per chunk.
 * A record's body (SSE event data, an error body, a reason) travels beside it: producers hand
 * it to eventlog_put, readers get it with eventlog_body. Readers skip types they do not know. */
#ifndef STROBE_LOG_RECORDS_H
#define STROBE_LOG_RECORDS_H
#include <stdint.h>

struct log_record {
    uint8_t type;
    uint8_t ts_source;
    uint16_t worker;
    uint32_t len;
    uint64_t req_id;
    int64_t t;
    int64_t t2;
    uint64_t off;
    int64_t a, b, c;
};
_Static_assert(sizeof(struct log_record) == 64, "log records are 64 bytes");

enum log_type {
    REC_REQUEST_SENT = 1,
    REC_EVENT = 2,
    REC_REQUEST_END = 3,
    REC_PHASE = 4,
    REC_MARK = 5,
    REC_TRAJECTORY_DONE = 6,
    REC_POWER = 7,
    REC_REQUEST_RETRY = 8,
    REC_SERVER_METRICS = 9,
    REC_CLOCK_OFFSET = 10,
};

/* Whether records of this type belong to one request (its start, events, retry, end); every
 * other type is about the run as a whole (phases, power, marks, scrapes, clock offsets...). */
static inline int log_type_is_request(uint8_t type)
{
    return type == REC_REQUEST_SENT || type == REC_EVENT || type == REC_REQUEST_END ||
           type == REC_REQUEST_RETRY;
}

/* Why a request ended without success, as the dataplane saw it (the analysis adds its own
 * classes for well-formed HTTP with bad content; see analysis/facts.h). */
enum req_error {
    ERR_NONE = 0,
    ERR_CONNECT, /* TCP connect or TLS handshake failed */
    ERR_SEND,
    ERR_RESET,          /* connection reset or closed before the response ended */
    ERR_HTTP_STATUS,    /* non-2xx; the body is kept */
    ERR_HTTP_PARSE,     /* malformed HTTP */
    ERR_TIMEOUT,        /* request exceeded --request-timeout-s */
    ERR_IDLE_TIMEOUT,   /* nothing received for --idle-timeout-s */
    ERR_INTERRUPTED,    /* run stopped by SIGINT/SIGTERM */
    ERR_DRAIN,          /* still running when the phase's drain limit ran out */
    ERR_EVENT_TOO_LONG, /* one SSE event exceeded --max-event-bytes (the body says which) */
    ERR_NOT_SSE,        /* a 2xx whose body is not an SSE stream (JSON, compressed) */
    ERR_COUNT
};

const char *req_error_name(enum req_error e);

/* A request source's tag with this bit set: the request fell due while the source was at its
 * cap of requests in flight, and waited for a slot (open-loop arrivals, --max-in-flight). */
#define SOURCE_TAG_HELD_BY_CAP (1ULL << 63)

/* A request's last byte left (or it failed before: t_written 0). Its first attempt when it
 * was retried. */
struct rec_request_sent {
    uint16_t worker;
    uint64_t req_id;
    int64_t t_sched;   /* when it was due: latency is charged from here */
    int64_t t_written; /* its last byte written, 0 if it never was */
    uint64_t tag;      /* the request source's own id (agents: agent, task, turn) */
    int phase;
    uint64_t conn_serial;
    int reused; /* sent on a kept-alive connection */
};

/* One SSE event, stamped with the read that completed it. */
struct rec_event {
    uint16_t worker;
    uint8_t ts_source; /* enum ts_source of t_stamp */
    uint64_t req_id;
    int64_t t_stamp;       /* the best receive stamp */
    int64_t t_read;        /* userspace time of the read */
    int64_t index;         /* of the event in its request, from 0 */
    int64_t stream_offset; /* of the event's last byte on its connection; -1 over TLS */
    uint32_t local_ip;     /* strobe's address and port: what joins an FPGA tap's records */
    uint16_t local_port;
    int body_keyed; /* its body is stored keyed (body_key.h); eventlog_body decodes it */
};

/* A REC_EVENT's c with this bit set: its body is keyed (the address and port take 48 bits) */
#define REC_EVENT_BODY_KEYED (1ULL << 63)

/* The request ended; the body is the server's error body for a non-2xx status, else strobe's
 * reason, if any. */
struct rec_request_end {
    uint16_t worker;
    uint64_t req_id;
    int64_t t_end;
    int64_t t_first_byte; /* 0: none arrived */
    int status;           /* HTTP status, 0 when none was read */
    enum req_error error;
    int64_t events;
};

/* The request failed on a reused connection before any response byte and was sent again on
 * a new one (at most once; written after its REC_REQUEST_SENT). The body says why. */
struct rec_request_retry {
    uint16_t worker;
    uint64_t req_id;
    int64_t t_failed;  /* when the failure was seen */
    int64_t t_written; /* the retry's last byte written, 0: it failed before */
    enum req_error error;
    uint64_t conn_serial; /* of the new connection */
};

#define PHASE_GATES_MET       1u /* the window met its steady-state gates */
#define PHASE_WARMUP_EXTENDED 2u /* the window waited for every agent to start */

/* An SLT phase or an agents iteration; written when it starts and again when it ends (the
 * last one read wins). */
struct rec_phase {
    int index;
    int concurrency; /* in-flight requests, or agents */
    int64_t t_start, t_window_start, t_window_end;
    int64_t t_end;  /* 0 while running */
    unsigned flags; /* PHASE_* */
};

enum log_mark {
    MARK_RUN_END = 1,
    MARK_INTERRUPTED = 2,
    MARK_CLIENT_MEMORY = 3,   /* phase and client_bytes are set */
    MARK_ARRIVALS_UNSENT = 4, /* phase and unsent are set */
};

struct rec_mark {
    enum log_mark kind;
    int64_t t;
    int phase;            /* MARK_CLIENT_MEMORY, MARK_ARRIVALS_UNSENT */
    int64_t client_bytes; /* MARK_CLIENT_MEMORY: bytes strobe held for that phase's agents */
    int64_t unsent;       /* MARK_ARRIVALS_UNSENT: arrivals that fell due in the phase but were
                             never sent (held by --max-in-flight, or the client behind) */
};

/* An agent finished a trajectory. */
struct rec_trajectory_done {
    uint16_t worker;
    int64_t t;
    int phase, agent;
    int64_t task; /* index in the replay */
};

#define POWER_NONE INT64_MIN

/* One power reading of one device of one source; device -1: the source failed (the body says
 * why). */
struct rec_power {
    int64_t t;
    int source, device;
    int64_t milliwatts;  /* POWER_NONE when not given */
    int64_t microjoules; /* cumulative energy, POWER_NONE when the device keeps none */
};

/* One scrape of the server's Prometheus metrics (--server-metrics). The body is the text as
 * served when status is 200, else one line saying why the scrape failed (status: the HTTP
 * status, 0 when there was no response). t is the request's midpoint on strobe's clock. */
struct rec_server_metrics {
    int64_t t;
    int64_t took_ns; /* how long the scrape took: t is uncertain by half of it */
    int status;
};

/* One MPI rank's clock against rank 0's, measured by rank 0 (control/run/clock_sync.h)
 * before and after every phase or iteration; written into rank 0's log. */
struct rec_clock_offset {
    int rank;
    int phase;              /* the phase that follows the measurement (-1: none) */
    int64_t t_ref;          /* rank 0's clock when it was measured */
    int64_t offset_ns;      /* rank's clock - rank 0's */
    int64_t uncertainty_ns; /* half the round trip of the best exchange */
};

static inline struct log_record rec_request_sent_encode(const struct rec_request_sent *v)
{
    return (struct log_record){.type = REC_REQUEST_SENT,
                               .worker = v->worker,
                               .req_id = v->req_id,
                               .t = v->t_sched,
                               .t2 = v->t_written,
                               .off = v->tag,
                               .a = v->phase,
                               .b = (int64_t)v->conn_serial,
                               .c = v->reused};
}

static inline struct rec_request_sent rec_request_sent_decode(const struct log_record *r)
{
    return (struct rec_request_sent){.worker = r->worker,
                                     .req_id = r->req_id,
                                     .t_sched = r->t,
                                     .t_written = r->t2,
                                     .tag = r->off,
                                     .phase = (int)r->a,
                                     .conn_serial = (uint64_t)r->b,
                                     .reused = (int)r->c};
}

/* Whether the record's body is keyed (body_key.h): an event's, flagged. */
static inline int log_body_is_keyed(const struct log_record *r)
{
    return r->type == REC_EVENT && ((uint64_t)r->c & REC_EVENT_BODY_KEYED);
}

/* The event's record written field by field where it is to lie (a worker writes it into its
 * ring slot: a record built on the stack and then copied stalled the copy's loads on store
 * forwarding, per event). */
static inline void rec_event_put(struct log_record *r, const struct rec_event *v)
{
    r->type = REC_EVENT;
    r->ts_source = v->ts_source;
    r->worker = v->worker;
    r->len = 0;
    r->req_id = v->req_id;
    r->t = v->t_stamp;
    r->t2 = v->t_read;
    r->off = 0;
    r->a = v->index;
    r->b = v->stream_offset;
    r->c = (int64_t)((uint64_t)v->local_ip << 16 | v->local_port |
                     (v->body_keyed ? REC_EVENT_BODY_KEYED : 0));
}

static inline struct log_record rec_event_encode(const struct rec_event *v)
{
    struct log_record r;
    rec_event_put(&r, v);
    return r;
}

static inline struct rec_event rec_event_decode(const struct log_record *r)
{
    return (struct rec_event){.worker = r->worker,
                              .ts_source = r->ts_source,
                              .req_id = r->req_id,
                              .t_stamp = r->t,
                              .t_read = r->t2,
                              .index = r->a,
                              .stream_offset = r->b,
                              .local_ip = (uint32_t)((uint64_t)r->c >> 16),
                              .local_port = (uint16_t)r->c,
                              .body_keyed = log_body_is_keyed(r)};
}

static inline struct log_record rec_request_end_encode(const struct rec_request_end *v)
{
    return (struct log_record){.type = REC_REQUEST_END,
                               .worker = v->worker,
                               .req_id = v->req_id,
                               .t = v->t_end,
                               .t2 = v->t_first_byte,
                               .a = v->status,
                               .b = v->error,
                               .c = v->events};
}

static inline struct rec_request_end rec_request_end_decode(const struct log_record *r)
{
    /* an error outside the enum (a damaged log) stays as it is: req_error_name names it */
    return (struct rec_request_end){.worker = r->worker,
                                    .req_id = r->req_id,
                                    .t_end = r->t,
                                    .t_first_byte = r->t2,
                                    .status = (int)r->a,
                                    .error = (enum req_error)(int)r->b,
                                    .events = r->c};
}

static inline struct log_record rec_request_retry_encode(const struct rec_request_retry *v)
{
    return (struct log_record){.type = REC_REQUEST_RETRY,
                               .worker = v->worker,
                               .req_id = v->req_id,
                               .t = v->t_failed,
                               .t2 = v->t_written,
                               .a = v->error,
                               .b = (int64_t)v->conn_serial};
}

static inline struct rec_request_retry rec_request_retry_decode(const struct log_record *r)
{
    return (struct rec_request_retry){.worker = r->worker,
                                      .req_id = r->req_id,
                                      .t_failed = r->t,
                                      .t_written = r->t2,
                                      .error = (enum req_error)(int)r->a,
                                      .conn_serial = (uint64_t)r->b};
}

static inline struct log_record rec_phase_encode(const struct rec_phase *v)
{
    return (struct log_record){.type = REC_PHASE,
                               .a = v->index,
                               .b = v->concurrency,
                               .t = v->t_start,
                               .t2 = v->t_window_start,
                               .c = v->t_window_end,
                               .req_id = (uint64_t)v->t_end,
                               .off = v->flags};
}

static inline struct rec_phase rec_phase_decode(const struct log_record *r)
{
    return (struct rec_phase){.index = (int)r->a,
                              .concurrency = (int)r->b,
                              .t_start = r->t,
                              .t_window_start = r->t2,
                              .t_window_end = r->c,
                              .t_end = (int64_t)r->req_id,
                              .flags = (unsigned)r->off};
}

static inline struct log_record rec_mark_encode(const struct rec_mark *v)
{
    return (struct log_record){.type = REC_MARK,
                               .a = v->kind,
                               .t = v->t,
                               .b = v->phase,
                               .c = v->kind == MARK_ARRIVALS_UNSENT ? v->unsent : v->client_bytes};
}

static inline struct rec_mark rec_mark_decode(const struct log_record *r)
{
    enum log_mark kind = (enum log_mark)r->a;
    return (struct rec_mark){.kind = kind,
                             .t = r->t,
                             .phase = (int)r->b,
                             .client_bytes = kind == MARK_ARRIVALS_UNSENT ? 0 : r->c,
                             .unsent = kind == MARK_ARRIVALS_UNSENT ? r->c : 0};
}

static inline struct log_record rec_trajectory_done_encode(const struct rec_trajectory_done *v)
{
    return (struct log_record){.type = REC_TRAJECTORY_DONE,
                               .worker = v->worker,
                               .t = v->t,
                               .a = v->phase,
                               .b = v->agent,
                               .c = v->task};
}

static inline struct rec_trajectory_done rec_trajectory_done_decode(const struct log_record *r)
{
    return (struct rec_trajectory_done){
        .worker = r->worker, .t = r->t, .phase = (int)r->a, .agent = (int)r->b, .task = r->c};
}

static inline struct log_record rec_power_encode(const struct rec_power *v)
{
    return (struct log_record){.type = REC_POWER,
                               .t = v->t,
                               .a = v->source,
                               .b = v->device,
                               .c = v->milliwatts,
                               .t2 = v->microjoules};
}

static inline struct rec_power rec_power_decode(const struct log_record *r)
{
    return (struct rec_power){.t = r->t,
                              .source = (int)r->a,
                              .device = (int)r->b,
                              .milliwatts = r->c,
                              .microjoules = r->t2};
}

static inline struct log_record rec_server_metrics_encode(const struct rec_server_metrics *v)
{
    return (struct log_record){
        .type = REC_SERVER_METRICS, .t = v->t, .t2 = v->took_ns, .a = v->status};
}

static inline struct rec_server_metrics rec_server_metrics_decode(const struct log_record *r)
{
    return (struct rec_server_metrics){.t = r->t, .took_ns = r->t2, .status = (int)r->a};
}

static inline struct log_record rec_clock_offset_encode(const struct rec_clock_offset *v)
{
    return (struct log_record){.type = REC_CLOCK_OFFSET,
                               .a = v->rank,
                               .b = v->phase,
                               .t = v->t_ref,
                               .t2 = v->offset_ns,
                               .c = v->uncertainty_ns};
}

static inline struct rec_clock_offset rec_clock_offset_decode(const struct log_record *r)
{
    return (struct rec_clock_offset){.rank = (int)r->a,
                                     .phase = (int)r->b,
                                     .t_ref = r->t,
                                     .offset_ns = r->t2,
                                     .uncertainty_ns = r->c};
}

#endif
