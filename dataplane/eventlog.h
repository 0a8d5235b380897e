/* The event log: the raw facts of a run, append-only, readable after a crash up to its last
 * flush. Two files in the run directory:
 *   events.bin  "STROBELG" | u32 version | u32 header_len | JSON header (the whole run config)
 *               | fixed 64-byte records (log_records.h), little-endian
 *   bodies.bin  raw bytes that records point at (SSE event data, error bodies); an event's
 *               data may be stored keyed against an earlier one of its request (body_key.h)
 * Workers hand records to a collector thread through SPSC rings; the collector, in short
 * turns so that it never holds a worker's core for long, assigns body offsets and writes
 * both files in short batches (bodies first, and a record only once its body is in
 * bodies.bin, so that a run killed at any moment leaves no record pointing past its end), at
 * least every 100 ms: with direct I/O where the file system takes it (log_file.h), so that the
 * bytes are not copied through the page cache on a core a worker may need. */
#ifndef STROBE_EVENTLOG_H
#define STROBE_EVENTLOG_H
#include "body_key.h"
#include "log_records.h"
#include "spsc_ring.h"
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#define LOG_MAGIC "STROBELG"
/* 2: event bodies may be keyed (body_key.h); version 1 logs are read as they are */
#define LOG_VERSION 2

/* ---------- writer ---------- */

struct eventlog;

/* Creates the files with the JSON header; NULL with err set. The collector writes them with
 * direct I/O where the file system takes it (log_file.h), else through the page cache. */
struct eventlog *eventlog_create(const char *dir, const char *header_json, int producers, char *err,
                                 size_t errlen);
/* eventlog_create, want_direct 0: through the page cache only. */
struct eventlog *eventlog_create_writes(const char *dir, const char *header_json, int producers,
                                        int want_direct, char *err, size_t errlen);
/* How the files were written: log_file_mode's words (for both, or each), and after 64 MiB or
 * more written direct, how many and how fast. After eventlog_stop. */
const char *eventlog_writes(struct eventlog *l, char *buf, size_t len);
/* Producer p's ring. Each producer is one thread. */
struct spsc_ring *eventlog_ring(struct eventlog *l, int producer);
/* Queues a record (plus body bytes) from producer p; sleeps while the ring is full, which
 * is counted (eventlog_full_waits). */
void eventlog_put(struct eventlog *l, int producer, const struct log_record *rec, const void *body,
                  size_t body_len);
/* eventlog_put for a REC_EVENT flagged body_keyed when role is BODY_KEYED, whose body
 * body_key_encode coded (role): BODY_SETS_KEY makes it the key of key_slot (the producer's own
 * numbering of its sessions), BODY_KEYED is coded against that slot's key, whose offset in
 * bodies.bin the collector fills in. */
void eventlog_put_event(struct eventlog *l, int producer, const struct log_record *rec,
                        const void *body, size_t body_len, enum body_key_role role,
                        uint32_t key_slot);
/* eventlog_put_event written in place, for a body of at most EVENTLOG_IN_PLACE_MAX bytes (no
 * copy through the caller's stack: per event, those copies cost as much as the ring's own):
 * room in producer p's ring for a record and body_max bytes (sleeping while it is full, as
 * eventlog_put does), 8-byte aligned; NULL when body_max is over EVENTLOG_IN_PLACE_MAX (use
 * eventlog_put_event). The caller writes the record there and its stored body right after it,
 * then commits with the body's length (at most body_max). */
#define EVENTLOG_IN_PLACE_MAX 65536
void *eventlog_event_reserve(struct eventlog *l, int producer, size_t body_max);
void eventlog_event_commit(struct eventlog *l, int producer, void *slot, size_t body_len,
                           enum body_key_role role, uint32_t key_slot);
/* Waits until everything queued before the call is written to the files. */
void eventlog_sync(struct eventlog *l);
/* Stops the collector once everything queued is written (the files stay open). */
void eventlog_stop(struct eventlog *l);
/* eventlog_stop, then fsyncs and closes the files. Returns 0 or -1 (write error). */
int eventlog_close(struct eventlog *l);
/* For a run that could not start: stops the collector and removes the log's files from dir
 * (eventlog_create's), so that the same --out can be used again. */
void eventlog_abandon(struct eventlog *l, const char *dir);
uint64_t eventlog_full_waits(struct eventlog *l);
/* First write error, or NULL. */
const char *eventlog_error(struct eventlog *l);
/* At the first write error (said on stderr at once) the collector sets *flag to 1: the run's
 * stop flag, so that a full disk ends the run then, not at its end. Set before producers put. */
void eventlog_stop_on_error(struct eventlog *l, volatile sig_atomic_t *flag);

/* ---------- reader ---------- */

/* The whole log mapped read-only. */
struct eventlog_reader {
    char *header_json; /* NUL-terminated copy */
    const struct log_record *records;
    size_t nrecords; /* whole records only: a torn last record is ignored */
    const char *bodies;
    size_t bodies_len;
    void *map_events, *map_bodies;
    size_t map_events_len, map_bodies_len;
    struct log_record *owned_records; /* an aligned copy when the file's records are not */
};

/* Opens RUN_DIR's log; NULL with err set. */
struct eventlog_reader *eventlog_open(const char *dir, char *err, size_t errlen);
/* The record's body and its length (*len), or NULL when it lies beyond what was flushed or is
 * damaged. A keyed event body (body_key.h) is put together in keyed (BODY_KEY_MAX bytes). */
const char *eventlog_body(const struct eventlog_reader *r, const struct log_record *rec,
                          char *keyed, size_t *len);
/* The same over bodies.bin's bytes [0, bodies_len) (a reader with its own copy of them). */
const char *eventlog_body_in(const char *bodies, size_t bodies_len, const struct log_record *rec,
                             char *keyed, size_t *len);
void eventlog_reader_close(struct eventlog_reader *r);

#endif
