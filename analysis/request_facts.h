/* One request's facts from its own records (facts.h gives the rules): each event of its
 * stream read into its req_facts and its pending token events, and, when it ends, those events
 * put into the thread's token store and the per-phase figures (request_finish). The record
 * loop, the threads and the run's own records are facts.c's. Internal to the analysis. */
#ifndef STROBE_REQUEST_FACTS_H
#define STROBE_REQUEST_FACTS_H
#include "chunk_facts.h"
#include "eventlog.h"
#include "facts.h"

/* One token event as read, before the request's rule is known. */
struct event_fact {
    int64_t t, lag, gap, pace;
    double bytes, tokenized, server; /* server: NAN when the event had no usage */
    int32_t emu;
};

/* Per-request scratch while its events are read; freed when the request ends. */
struct pending {
    struct event_fact *e;
    size_t n, cap;
    int out_of_memory; /* an event could not be kept: request_finish fails the analysis */
};

/* The buffers of closed requests, kept for the next ones to open: a request's events then
 * cost no allocation once its thread has had as many requests open at once as it will have. */
struct pend_pool {
    struct pending *spare;
    size_t n, cap;
};

/* Where a thread puts closed requests: its token store and its per-phase figure counts. */
struct tok_sink {
    struct tok_store *store;
    uint32_t index;
    const struct run_facts *f;                     /* the phases, read first */
    struct value_counts (*figures)[EVENT_FIGURES]; /* aligned with f->phases */
    int out_of_memory;
    struct pend_pool pool;
};

/* A buffer for p's events: a closed request's from the pool, else none yet. */
void pending_take(struct pend_pool *pool, struct pending *p);
void pending_pool_free(struct pend_pool *pool);
/* Marks r failed (the first reason wins), its reason printf-formatted. */
void request_set_failed(struct req_facts *r, enum fail_class cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* One SSE event of a successful-status stream (data: the event's data, not "[DONE]" or it). */
void request_take_event(struct req_facts *r, struct pending *p, const struct rec_event *ev,
                        const char *data, size_t len, uint64_t *src_counts, struct tokenizer *tok,
                        struct chunk_reader *rd);
/* The reason of a failed status from its body (an OpenAI error message where there is one). */
void request_reason_from_body(struct req_facts *r, const char *body, size_t len);
/* Room for need more token events in ts: 0, or -1 out of memory (ts as it was). */
int tok_store_grow(struct tok_store *ts, size_t need);
/* The ended request's token events inside its phase's window into sink; p's buffer back to
 * the pool. */
void request_finish(struct tok_sink *sink, struct req_facts *r, struct pending *p,
                    int have_tokenizer);

#endif
