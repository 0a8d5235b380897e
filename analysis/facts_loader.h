/* What facts.c (the record loop and its threads) and run_records.c (the run's own records,
 * and the pass before the threads) share: the loader's state, the requests' id table, and
 * which thread owns a request. Internal to the analysis. */
#ifndef STROBE_FACTS_LOADER_H
#define STROBE_FACTS_LOADER_H
#include "facts.h"
#include "request_facts.h"

#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

/* Requests are found by id through an open-addressing table: ids are (worker << 48 | seq). */
struct idmap {
    uint64_t *keys;
    size_t *vals;
    size_t cap;
};

static inline size_t *idmap_slot(struct idmap *m, uint64_t key, int insert)
{
    size_t i = (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 20) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) {
        if (!insert) return NULL;
        m->keys[i] = key;
    }
    return &m->vals[i];
}

/* A request's pending events on a cache line of their own: neighbours in the requests' order
 * belong to different threads, and each event writes its request's (two threads writing one
 * line cost each other every event: 1.5x the CPU per event over two threads). */
struct pending_line {
    _Alignas(64) struct pending p;
};

/* What facts_load carries between records: the run's shared state (read-only while the
 * threads run, but for each request's own slots). */
struct loader {
    struct run_facts *f;
    int only_phase;
    struct eventlog_reader *lr;
    struct tap_join *tap;
    struct idmap ids;
    struct pending_line *pend; /* per request, aligned with f->reqs */
    size_t *sent_at;           /* per request: its REC_REQUEST_SENT's record index */
    size_t phase_cap;
    unsigned nthreads;
    /* one phase's analysis: its requests' records lie from `first` on, the run's records at
     * run[0..nrun) (log_index.h); NULL run: every record is read */
    size_t first, *run, nrun;
    _Atomic size_t *progress; /* per thread: the records it has read up to */
    _Atomic size_t dropped;   /* the records before this, and their bodies, are unmapped */
    _Atomic int mapped;       /* a chunk was read through the mapping: unmap what is passed */
    _Atomic int go;           /* every thread has started (or failed to): the chunks' users */
    struct chunk_slot *slots; /* CHUNK_SLOTS chunks of the log, shared by the threads */
    size_t nchunks;
    unsigned nworkers;
    /* the log's files, read (span_read.h) rather than through the mapping when they open:
     * -1 else; the records lie from records_off in events.bin */
    int events_fd, bodies_fd;
    uint64_t records_off;
};

#ifndef LOG_WINDOW       /* the tests build a variant with tiny windows and chunks */
#define LOG_WINDOW 65536 /* records read at once: 4 MiB */
#endif

/* Which thread owns a request: by its id alone, so a thread skips others' records unread. */
static inline unsigned owner(uint64_t req_id, unsigned nthreads)
{
    /* the hash's top 32 bits scaled to [0, nthreads): no division per record */
    return (unsigned)((((req_id * 0x9e3779b97f4a7c15ULL) >> 32) * nthreads) >> 32);
}

/* madvise over the whole pages of [p, p + len) */
static inline void advise(const void *p, size_t len, int advice)
{
    uintptr_t from = (uintptr_t)p & ~(uintptr_t)4095, to = (uintptr_t)p + len;
    if (len && to > from) madvise((void *)from, to - from, advice);
}

/* The pass before the analysis threads (run_records.c): split over L->nthreads ranges of the
 * log, it counts each analysis thread's events into events[] and sizes the requests' arrays;
 * it gives what it kept (run_records_take then takes it), or NULL out of memory. */
struct prepass;
struct prepass *run_records_prepass(struct loader *L, size_t *events);
/* The run's records and every request's start, in log order (the index's first, when one
 * phase is read); frees P. */
void run_records_take(struct loader *L, struct prepass *P);

#endif
