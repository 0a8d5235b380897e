/* The event log: the raw facts of a run, append-only, readable after a crash up to its last
 * flush. Two files in the run directory:
 *   events.bin  "STROBELG" | u32 version | u32 header_len | JSON header (the whole run config)
 *               | fixed 64-byte records (struct log_record), little-endian
 *   bodies.bin  raw bytes that records point at (SSE event data, error bodies)
 * Workers hand records to a collector thread through SPSC rings; the collector assigns body
 * offsets and writes both files in batches (bodies first, so a record never points past
 * the end of bodies.bin once both are flushed). */
#ifndef STROBE_EVENTLOG_H
#define STROBE_EVENTLOG_H
#include "spsc_ring.h"
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define LOG_MAGIC "STROBELG"
#define LOG_VERSION 1

enum log_type {
    REC_REQUEST_SENT = 1, /* t = scheduled, t2 = last request byte written, a = phase,
                             b = connection serial, c = 1 if the connection was reused */
    REC_EVENT = 2,        /* t = best receive stamp, t2 = userspace read time, len/off = data,
                             a = index of the event in its request, b = stream offset of the
                             event's last byte on its connection (bytes the server sent
                             before it; -1 over TLS), c = local IPv4 address << 16 | local
                             port (0 when unknown): what joins an FPGA tap's records */
    REC_REQUEST_END = 3,  /* t = end, t2 = first response byte, a = HTTP status,
                             b = enum req_error, c = events, len/off = error body if any */
    REC_PHASE = 4,        /* a = phase index, b = concurrency, t = start, t2 = window start,
                             c = window end, req_id = phase end (0 while running),
                             off = flags (PHASE_GATES_MET, PHASE_WARMUP_EXTENDED) */
    REC_MARK = 5,         /* a = enum log_mark, t = when */
    REC_TRAJECTORY_DONE = 6, /* an agent finished a trajectory: t = when, a = phase, b = agent,
                                c = task index */
    REC_POWER = 7,        /* t = reading time, a = power source, b = device (-1: the source
                             failed), c = milliwatts, t2 = energy in microjoules
                             (POWER_NONE when the device does not give it) */
    REC_REQUEST_RETRY = 8, /* the request failed on a reused connection before any response
                              byte and was sent again on a new one (at most once; after its
                              REC_REQUEST_SENT, which describes the first attempt): t = when
                              the failure was seen, t2 = the retry's last request byte written
                              (0: it failed before), a = enum req_error of the failed attempt,
                              b = the new connection's serial, len/off = why it failed.
                              Readers that predate it skip it. */
};

#define POWER_NONE INT64_MIN

enum log_mark {
    MARK_RUN_END = 1,
    MARK_INTERRUPTED = 2,
    MARK_CLIENT_MEMORY = 3, /* b = phase, c = bytes strobe held for that phase's agents */
};

#define PHASE_GATES_MET 1u /* the window met its steady-state gates */
#define PHASE_WARMUP_EXTENDED 2u /* the window waited for every agent to start */

enum req_error {
    ERR_NONE = 0,
    ERR_CONNECT,        /* TCP connect or TLS handshake failed */
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

/* ---------- writer ---------- */

struct eventlog;

/* Creates the files with the JSON header; NULL with err set. */
struct eventlog *eventlog_create(const char *dir, const char *header_json, int producers,
                                 char *err, size_t errlen);
/* Producer p's ring. Each producer is one thread. */
struct spsc_ring *eventlog_ring(struct eventlog *l, int producer);
/* Queues a record (plus body bytes) from producer p; spins while the ring is full, which
 * is counted (eventlog_full_waits). */
void eventlog_put(struct eventlog *l, int producer, const struct log_record *rec,
                  const void *body, size_t body_len);
/* Waits until everything queued before the call is written to the files. */
void eventlog_sync(struct eventlog *l);
/* Stops the collector, writes and fsyncs everything. Returns 0 or -1 (write error). */
int eventlog_close(struct eventlog *l);
uint64_t eventlog_full_waits(struct eventlog *l);
/* First write error, or NULL. */
const char *eventlog_error(struct eventlog *l);

/* ---------- reader ---------- */

/* The whole log mapped read-only. */
struct eventlog_reader {
    char *header_json; /* NUL-terminated copy */
    const struct log_record *records;
    size_t nrecords;     /* whole records only: a torn last record is ignored */
    const char *bodies;
    size_t bodies_len;
    void *map_events, *map_bodies;
    size_t map_events_len, map_bodies_len;
    struct log_record *owned_records; /* an aligned copy when the file's records are not */
};

/* Opens RUN_DIR's log; NULL with err set. */
struct eventlog_reader *eventlog_open(const char *dir, char *err, size_t errlen);
/* The record's body bytes, or NULL if they lie beyond what was flushed. */
const char *eventlog_body(const struct eventlog_reader *r, const struct log_record *rec);
void eventlog_reader_close(struct eventlog_reader *r);

#endif
