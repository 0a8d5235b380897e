#include "facts_loader.h"

#include "chunk_facts.h"
#include "clock.h"
#include "log_index.h"
#include "span_read.h"
#include "stats.h"
#include "tap_join.h"

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The keys of keyed bodies (body_key.h) an analyser has read: a request's key mostly lies long
 * before the chunk that reads it, and read through the mapping its pages would stay mapped,
 * the log's size becoming this process's memory. One per request read at once, mostly: a
 * key pushed out is read again (one pread). */
#define KEY_CACHE 4096
struct cached_key {
    uint64_t off;
    uint32_t len; /* 0: empty */
    char bytes[BODY_KEY_MAX];
};

/* One analysis thread: the requests whose id hashes to it, and everything it counts. */
struct analyser {
    _Alignas(64) struct loader *L; /* a thread's own lines: each event writes its analyser */
    unsigned index;
    struct tokenizer *tok;
    struct chunk_reader rd;
    struct tok_sink sink;
    uint64_t ts_source_events[5];
    size_t torn_bodies, damaged_bodies, tap_matched, tap_fallback, tap_out_of_order;
    double *tap_minus_host_us;
    size_t ntap, tap_cap;
    char keyed[BODY_KEY_MAX]; /* the keyed body being read, put together */
    struct cached_key *keys;  /* KEY_CACHE of them, at the first keyed body; NULL before */
};

/* An event's stamp: the FPGA tap's when its record joins the event, else the host's own. */
static void stamp_from_tap(struct analyser *A, struct req_facts *r, struct rec_event *ev)
{
    int64_t t_tap;
    int64_t addr = (int64_t)ev->local_ip << 16 | ev->local_port;
    if (A->L->tap && ev->stream_offset >= 0 && addr) {
        if (tap_join_lookup(A->L->tap, ev->stream_offset, addr, &t_tap)) {
            if (A->ntap == A->tap_cap) {
                size_t cap = A->tap_cap ? A->tap_cap * 2 : 4096;
                double *grown = realloc(A->tap_minus_host_us, cap * sizeof *grown);
                if (grown) {
                    A->tap_minus_host_us = grown;
                    A->tap_cap = cap;
                }
            }
            double d = stamps_apart(ev->t_stamp, t_tap, 1e3);
            if (A->ntap == A->tap_cap)
                A->sink.out_of_memory = 1; /* the analysis fails, saying so */
            else if (!isnan(d))
                A->tap_minus_host_us[A->ntap++] = d;
            ev->t_stamp = t_tap;
            ev->ts_source = TS_FPGA;
            A->tap_matched++;
        } else {
            A->tap_fallback++; /* the host's own stamp stays, with its own source */
        }
    }
    if (ev->ts_source == TS_FPGA && ev->t_stamp < r->t_prev_event) A->tap_out_of_order++;
    r->t_prev_event = ev->t_stamp;
}

static void take_end(struct analyser *A, struct req_facts *r, struct pending *p,
                     const struct rec_request_end *v, const char *body, size_t len)
{
    r->t_done = v->t_end;
    r->t_first_byte = v->t_first_byte;
    r->status = v->status;
    r->transport_error = (int)v->error;
    if (r->status && (r->status < 200 || r->status > 299)) {
        r->failed = 1;
        r->fail_class = FAIL_HTTP_STATUS;
        request_reason_from_body(r, body, len);
    } else if (r->transport_error) {
        /* older logs recorded the cut event too: its torn JSON is not the reason */
        if (r->transport_error == ERR_EVENT_TOO_LONG) r->failed = 0;
        char what[160];
        snprintf(what, sizeof what, "%.*s", (int)(len > 150 ? 150 : len), body ? body : "");
        if (!what[0] && r->transport_error == ERR_DRAIN)
            snprintf(what, sizeof what,
                     "still streaming when the drain ended; raise --drain-s to let long requests "
                     "finish");
        request_set_failed(r, FAIL_TRANSPORT, "%s%s%s", req_error_name(v->error),
                           what[0] ? ": " : "", what);
    } else if (!r->status) {
        request_set_failed(r, FAIL_NO_STATUS,
                           "no HTTP status: the response ended without a status line");
    }
    request_finish(&A->sink, r, p, A->tok != NULL);
}

/* A record about one request: its events, its retry, its end. */
static void take_request_record(struct analyser *A, const struct log_record *rec, size_t req,
                                const char *body, size_t len)
{
    struct loader *L = A->L;
    struct req_facts *r = &L->f->reqs[req];
    struct pending *p = &L->pend[req].p;
    if (rec->len && !body) {
        A->torn_bodies++;
        return;
    }
    if (rec->type == REC_REQUEST_RETRY) {
        r->retried = 1;
    } else if (rec->type == REC_EVENT) {
        r->n_events++;
        struct rec_event ev = rec_event_decode(rec);
        stamp_from_tap(A, r, &ev);
        pending_take(&A->sink.pool, p);
        request_take_event(r, p, &ev, body, len, A->ts_source_events, A->tok, &A->rd);
    } else if (rec->type == REC_REQUEST_END) {
        struct rec_request_end end = rec_request_end_decode(rec);
        take_end(A, r, p, &end, body, len);
    }
}

/* What the analysis threads leave to the serial pass: the run's records and requests' starts. */
static int is_run_record(uint8_t type)
{
    return !log_type_is_request(type) || type == REC_REQUEST_SENT;
}

/* The log's records, and the bodies of those the threads read, in chunks shared by the
 * threads: each chunk is read once, by whichever thread gets to it first, which also sorts its
 * records by the analyser that owns them; each thread then reads only its own records of it.
 * Before, every thread read every record and the bodies' span of its batch, the other threads'
 * bodies included: with two threads the log's bytes were copied twice. */
#ifndef CHUNK_RECORDS
/* 64 KiB of records and about 256 KiB of their bodies: the CHUNK_SLOTS in flight then stay
 * near a core's 1 MiB L2 on the development VM, where 4096 (four times as much) cost a quarter
 * more system CPU in the reads (0.78-0.90 against 1.04-1.21 s over a 10 M-event log) */
#define CHUNK_RECORDS 1024
#endif
/* With two threads half the bodies a thread reads were copied by the other core, and waiting for
 * each of their first lines cost the second thread most of its gain (README, the analysis
 * benchmark): the bodies of the records this far ahead are asked for first. */
#define PREFETCH_AHEAD 4
#define PREFETCH_BYTES 512 /* a chunk's body is about 300 bytes */
#define CHUNK_SLOTS    4   /* chunks in flight: the most a thread runs ahead of the slowest */

/* A record of a chunk that one analyser reads: where it is in the chunk, and its request. */
struct chunk_item {
    uint32_t at;
    size_t req;
};

struct chunk_slot {
    _Atomic size_t free_for; /* the chunk this slot may be read into next; SIZE_MAX: being read */
    _Atomic size_t ready;    /* the chunk it holds, read whole (SIZE_MAX: none yet) */
    _Atomic unsigned users;  /* the threads yet to finish with it */
    struct span_buf records_copy, bodies_copy;
    const struct log_record *recs; /* the copy, or the mapping where the read failed */
    const char *bodies;            /* the copy of bodies [lo, hi), or NULL: the mapping */
    uint64_t lo, hi;
    struct chunk_item *items; /* sorted by analyser: analyser a's at [start[a], start[a + 1]) */
    uint32_t *start;
    uint8_t *who; /* scratch: each item's analyser before the sort */
};

/* Reads chunk k into slot s: its records, the records the analysers will read (their
 * requests', of the phase asked for) sorted by analyser, and their bodies' span (the
 * collector writes bodies in record order). Where a read fails, or the records share their
 * bodies (strobe-log-replicate --share-bodies: the span would be the whole file), the mapping
 * is populated instead, the span in one call. */
static void chunk_fill(struct loader *L, struct chunk_slot *s, size_t k)
{
    const struct eventlog_reader *lr = L->lr;
    unsigned nthreads = L->nthreads;
    size_t w = L->first + k * CHUNK_RECORDS;
    size_t end = lr->nrecords - w < CHUNK_RECORDS ? lr->nrecords : w + CHUNK_RECORDS;
    const struct log_record *recs =
        lr->owned_records
            ? &lr->records[w]
            : (const void *)span_read(&s->records_copy, L->events_fd,
                                      L->records_off + w * sizeof *recs, (end - w) * sizeof *recs);
    if (!recs) {
        recs = &lr->records[w];
        advise(recs, (end - w) * sizeof *recs, MADV_POPULATE_READ);
        atomic_store_explicit(&L->mapped, 1, memory_order_relaxed);
    }
    s->recs = recs;
    memset(s->start, 0, (nthreads + 1) * sizeof *s->start);
    struct chunk_item *found = s->items + CHUNK_RECORDS; /* the second half: before the sort */
    uint64_t lo = UINT64_MAX, hi = 0, bytes = 0;
    size_t n = 0;
    for (size_t i = w; i < end; i++) {
        const struct log_record *rec = &recs[i - w];
        /* unknown types find no request */
        if (is_run_record(rec->type)) continue;
        size_t *slot = idmap_slot(&L->ids, rec->req_id, 0);
        /* another phase's, its start lost with a torn log, or written before its start */
        if (!slot || i < L->sent_at[*slot]) continue;
        /* eventlog_body's bounds */
        if (rec->len && rec->off <= lr->bodies_len && rec->len <= lr->bodies_len - rec->off) {
            if (rec->off < lo) lo = rec->off;
            if (rec->off + rec->len > hi) hi = rec->off + rec->len;
            bytes += rec->len;
        }
        unsigned a = nthreads > 1 ? owner(rec->req_id, nthreads) : 0;
        s->who[n] = (uint8_t)a;
        s->start[a + 1]++;
        found[n++] = (struct chunk_item){.at = (uint32_t)(i - w), .req = *slot};
    }
    for (unsigned a = 0; a < nthreads; a++) s->start[a + 1] += s->start[a];
    uint32_t next[FACTS_MAX_THREADS];
    memcpy(next, s->start, nthreads * sizeof *next);
    for (size_t j = 0; j < n; j++) s->items[next[s->who[j]]++] = found[j];
    int copy = L->bodies_fd >= 0 && hi > lo && hi - lo <= 2 * bytes + 65536;
    s->bodies = copy ? span_read(&s->bodies_copy, L->bodies_fd, lo, hi - lo) : NULL;
    s->lo = lo;
    s->hi = hi;
    if (!s->bodies && hi > lo && !lr->owned_records) {
        advise(lr->bodies + lo, hi - lo, MADV_POPULATE_READ);
        atomic_store_explicit(&L->mapped, 1, memory_order_relaxed);
    }
}

/* Reads chunk k into its slot when the slot is free for it and no thread has taken it: 1 when
 * this thread did. */
static int chunk_claim(struct loader *L, size_t k)
{
    struct chunk_slot *s = &L->slots[k % CHUNK_SLOTS];
    size_t want = k;
    if (atomic_load_explicit(&s->free_for, memory_order_relaxed) != k ||
        !atomic_compare_exchange_strong(&s->free_for, &want, SIZE_MAX))
        return 0;
    chunk_fill(L, s, k);
    atomic_store_explicit(&s->users, L->nworkers, memory_order_relaxed);
    atomic_store_explicit(&s->ready, k, memory_order_release);
    return 1;
}

/* Chunk k's slot once the chunk is read: by this thread when no other has taken it; while
 * another reads it, this one reads the chunks after it that it can. */
static struct chunk_slot *chunk_wait(struct loader *L, size_t k)
{
    struct chunk_slot *s = &L->slots[k % CHUNK_SLOTS];
    for (unsigned idle = 0;;) {
        if (atomic_load_explicit(&s->ready, memory_order_acquire) == k) return s;
        if (chunk_claim(L, k)) continue;
        int read = 0;
        for (size_t j = k + 1; !read && j < k + CHUNK_SLOTS && j < L->nchunks; j++)
            read = chunk_claim(L, j);
        if (read) continue;
        if (++idle < 64) {
            sched_yield();
        } else {
            struct timespec nap = {0, 20000};
            nanosleep(&nap, NULL);
        }
    }
}

/* The last thread to finish with chunk k frees its slot for the chunk CHUNK_SLOTS later. */
static void chunk_done(struct chunk_slot *s, size_t k)
{
    if (atomic_fetch_sub_explicit(&s->users, 1, memory_order_acq_rel) == 1)
        atomic_store_explicit(&s->free_for, k + CHUNK_SLOTS, memory_order_release);
}

/* The records every thread has read up to. */
static size_t slowest(struct loader *L)
{
    size_t behind = SIZE_MAX;
    for (unsigned t = 0; t < L->nthreads; t++) {
        size_t p = atomic_load_explicit(&L->progress[t], memory_order_acquire);
        if (p < behind) behind = p;
    }
    return behind;
}

/* Unmaps the windows of the log every thread has passed (whichever thread moves L->dropped
 * does it), so that the log's size does not become this process's memory. */
static void drop_passed(struct loader *L)
{
    const struct eventlog_reader *lr = L->lr;
    size_t behind = slowest(L), dropped = atomic_load_explicit(&L->dropped, memory_order_acquire);
    /* a window of slack: requests' bodies are not in strict record order */
    if (behind <= dropped + 2 * LOG_WINDOW) return;
    size_t upto = behind - LOG_WINDOW;
    if (!atomic_compare_exchange_strong(&L->dropped, &dropped, upto)) return;
    advise(&lr->records[dropped], (upto - dropped) * sizeof *lr->records, MADV_DONTNEED);
    /* the bodies before the first one still ahead */
    for (size_t i = upto; i < behind; i++)
        if (lr->records[i].len && lr->records[i].off <= lr->bodies_len) {
            advise(lr->bodies, lr->records[i].off, MADV_DONTNEED);
            break;
        }
}

/* Asks for the first lines of the copied body of the chunk's record at, if it has one.
 * Inlined by force: GCC 12 finds a function that only prefetches free of effects and deletes
 * its calls. */
static inline __attribute__((always_inline)) void prefetch_body(const struct chunk_slot *s,
                                                                uint32_t at)
{
    const struct log_record *rec = &s->recs[at];
    if (!s->bodies || rec->off < s->lo || rec->off >= s->hi) return;
    const char *body = s->bodies + (rec->off - s->lo);
    size_t len = rec->len < s->hi - rec->off ? rec->len : (size_t)(s->hi - rec->off);
    for (size_t line = 0; line < len && line < PREFETCH_BYTES; line += 64)
        __builtin_prefetch(body + line);
}

/* The key of len bytes at off in bodies.bin (within it): from the analyser's cache, else read
 * into it; the mapping where it cannot be (no memory, a failed read). */
static const char *cached_key(struct analyser *A, uint64_t off, uint32_t len)
{
    const struct loader *L = A->L;
    if (!A->keys && L->bodies_fd >= 0) A->keys = calloc(KEY_CACHE, sizeof *A->keys);
    if (!A->keys) return L->lr->bodies + off;
    struct cached_key *e = &A->keys[(off * 0x9e3779b97f4a7c15ULL) >> 52 & (KEY_CACHE - 1)];
    if (e->len == len && e->off == off) return e->bytes;
    e->len = 0;
    if (pread(L->bodies_fd, e->bytes, len, (off_t)off) != (ssize_t)len) return L->lr->bodies + off;
    e->off = off;
    e->len = len;
    return e->bytes;
}

/* A keyed body (body_key.h) put together in A->keyed, its key read from the chunk's copy when it
 * lies there, else from the mapping; NULL when damaged. */
static const char *put_together(struct analyser *A, const struct chunk_slot *s,
                                const struct log_record *rec, const char *stored, size_t *len)
{
    const struct eventlog_reader *lr = A->L->lr;
    struct body_keyed k;
    if (body_key_parse(stored, rec->len, lr->bodies_len, &k)) return NULL;
    const char *key = s->bodies && k.key_off >= s->lo && k.key_off + k.key_len <= s->hi
                          ? s->bodies + (k.key_off - s->lo)
                          : cached_key(A, k.key_off, k.key_len);
    *len = body_key_join(&k, key, A->keyed);
    return A->keyed;
}

/* One analysis thread: the analysers it runs (its own; the first thread also those whose
 * thread could not start). */
struct worker {
    struct loader *L;
    unsigned index;
    struct analyser **A;
    unsigned nA;
};

/* Each thread takes the log a chunk at a time (chunk_wait: read by whichever thread gets
 * there first, into buffers the chunk's slot reuses: span_read.h) and reads its analysers'
 * records of it. Where a read failed the log is mapped in instead: what every thread has
 * passed is then unmapped. */
static void *analyse(void *arg)
{
    struct worker *W = arg;
    struct loader *L = W->L;
    const struct eventlog_reader *lr = L->lr;
    while (!atomic_load_explicit(&L->go, memory_order_acquire)) sched_yield();
    for (size_t k = 0; k < L->nchunks; k++) {
        struct chunk_slot *s = chunk_wait(L, k);
        for (unsigned a = 0; a < W->nA; a++) {
            struct analyser *A = W->A[a];
            /* the analysis will fail saying so: the rest would only meet the limit again, each
             * record at the cost of failing allocations */
            if (A->sink.out_of_memory) continue;
            uint32_t jend = s->start[A->index + 1];
            for (uint32_t j = s->start[A->index]; j < jend; j++) {
                if (j + PREFETCH_AHEAD < jend) prefetch_body(s, s->items[j + PREFETCH_AHEAD].at);
                const struct log_record *rec = &s->recs[s->items[j].at];
                int inside = rec->off <= lr->bodies_len && rec->len <= lr->bodies_len - rec->off;
                const char *body = !inside                 ? NULL
                                   : s->bodies && rec->len ? s->bodies + (rec->off - s->lo)
                                                           : lr->bodies + rec->off;
                size_t len = rec->len;
                if (body && log_body_is_keyed(rec) &&
                    !(body = put_together(A, s, rec, body, &len))) {
                    A->damaged_bodies++;
                    continue;
                }
                take_request_record(A, rec, s->items[j].req, body, len);
            }
        }
        size_t end = L->first + (k + 1) * CHUNK_RECORDS;
        atomic_store_explicit(&L->progress[W->index], end < lr->nrecords ? end : lr->nrecords,
                              memory_order_release);
        chunk_done(s, k);
        if (atomic_load_explicit(&L->mapped, memory_order_relaxed)) drop_passed(L);
    }
    atomic_store_explicit(&L->progress[W->index], lr->nrecords, memory_order_release);
    return NULL;
}

unsigned facts_default_threads(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set)) return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? (unsigned)n : 1;
}

/* The chunks' slots and run_analysers' tables, freed (any of them NULL). */
static void free_run_tables(struct loader *L, pthread_t *th, struct worker *W,
                            struct analyser **mine, struct analyser **own)
{
    for (size_t k = 0; L->slots && k < CHUNK_SLOTS; k++) {
        span_buf_free(&L->slots[k].records_copy);
        span_buf_free(&L->slots[k].bodies_copy);
        free(L->slots[k].items);
        free(L->slots[k].start);
        free(L->slots[k].who);
    }
    free(L->slots);
    L->slots = NULL;
    free(W);
    free(mine);
    free(own);
    free(th);
}

/* Runs the analysers, the first on this thread; a thread that cannot start leaves its
 * analyser to this one, which reads its records in the same pass. 0, or -1 out of memory
 * before any record was read. */
static int run_analysers(struct analyser *A, unsigned n)
{
    struct loader *L = A[0].L;
    pthread_t *th = calloc(n, sizeof *th);
    struct worker *W = calloc(n, sizeof *W);
    /* the first thread's analysers, and each other thread's own */
    struct analyser **mine = calloc(n, sizeof *mine), **own = calloc(n, sizeof *own);
    L->nchunks = (L->lr->nrecords - L->first + CHUNK_RECORDS - 1) / CHUNK_RECORDS;
    L->slots = calloc(CHUNK_SLOTS, sizeof *L->slots);
    int no_memory = !th || !W || !mine || !own || !L->slots;
    for (size_t k = 0; !no_memory && k < CHUNK_SLOTS; k++) {
        struct chunk_slot *s = &L->slots[k];
        atomic_init(&s->free_for, k);
        atomic_init(&s->ready, SIZE_MAX);
        atomic_init(&s->users, 0);
        s->items = malloc(2 * CHUNK_RECORDS * sizeof *s->items);
        s->start = malloc((n + 1) * sizeof *s->start);
        s->who = malloc(CHUNK_RECORDS);
        no_memory |= !s->items || !s->start || !s->who;
    }
    if (no_memory) {
        free_run_tables(L, th, W, mine, own);
        return -1;
    }
    /* threads that do not exist hold no one back */
    for (unsigned t = 0; t < n; t++) atomic_init(&L->progress[t], L->lr->nrecords);
    atomic_init(&L->dropped, L->first);
    atomic_init(&L->mapped, 0);
    atomic_init(&L->go, 0);
    W[0] = (struct worker){.L = L, .index = 0, .A = mine, .nA = 1};
    mine[0] = &A[0];
    atomic_store(&L->progress[0], L->first);
    unsigned nworkers = 1;
    for (unsigned t = 1; t < n; t++) {
        struct worker *w = &W[nworkers];
        own[t] = &A[t];
        *w = (struct worker){.L = L, .index = nworkers, .A = &own[t], .nA = 1};
        atomic_store(&L->progress[nworkers], L->first);
        if (!pthread_create(&th[nworkers], NULL, analyse, w)) {
            nworkers++;
        } else {
            atomic_store(&L->progress[nworkers], L->lr->nrecords);
            mine[W[0].nA++] = &A[t];
        }
    }
    L->nworkers = nworkers;
    atomic_store_explicit(&L->go, 1, memory_order_release);
    analyse(&W[0]);
    for (unsigned t = 1; t < nworkers; t++) pthread_join(th[t], NULL);
    free_run_tables(L, th, W, mine, own);
    return 0;
}

/* The threads' per-phase figure counts merged and sorted, a figure at a time on each of the
 * threads (the larger tables take about as long as the threads' share of the events). */
struct figure_merge {
    struct analyser *A;
    unsigned nthreads;
    struct run_facts *f;
    _Atomic size_t next; /* the next figure to take: phase * EVENT_FIGURES + figure */
    _Atomic int out_of_memory;
};

static void *merge_some_figures(void *arg)
{
    struct figure_merge *m = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&m->next, 1);
        if (i >= m->f->nphases * EVENT_FIGURES) return NULL;
        size_t k = i / EVENT_FIGURES, w = i % EVENT_FIGURES;
        struct value_counts *to = &m->f->phase_figures[k][w];
        for (unsigned t = 0; t < m->nthreads; t++)
            if (value_counts_merge(to, &m->A[t].sink.figures[k][w]))
                atomic_store(&m->out_of_memory, 1);
        value_counts_sort(to);
    }
}

/* 1 when out of memory */
static int merge_figures(struct analyser *A, unsigned nthreads, struct run_facts *f)
{
    struct figure_merge m = {.A = A, .nthreads = nthreads, .f = f};
    atomic_init(&m.next, 0);
    atomic_init(&m.out_of_memory, 0);
    pthread_t th[FACTS_MAX_THREADS];
    unsigned started = 0;
    for (unsigned t = 1; t < nthreads && t < f->nphases * EVENT_FIGURES; t++)
        if (!pthread_create(&th[started], NULL, merge_some_figures, &m)) started++;
    merge_some_figures(&m);
    for (unsigned t = 0; t < started; t++) pthread_join(th[t], NULL);
    return atomic_load(&m.out_of_memory);
}

/* The loader's own tables, the tap and the log's files, closed (what facts_load opened
 * besides the facts and the analysers; any of the tables may be NULL). */
static void loader_close(struct loader *L)
{
    free(L->ids.keys);
    free(L->ids.vals);
    free(L->pend);
    free(L->sent_at);
    free(L->run);
    free(L->progress);
    if (L->tap) tap_join_close(L->tap);
    eventlog_reader_close(L->lr);
    if (L->events_fd >= 0) close(L->events_fd);
    if (L->bodies_fd >= 0) close(L->bodies_fd);
}

/* What facts_load has allocated when it stops for want of memory before the threads: freed,
 * with the facts (L->f). */
static void load_abort(struct loader *L, struct analyser *A, struct tokenizer *tok, size_t *events)
{
    free(events);
    for (unsigned t = 1; t < L->nthreads; t++)
        if (A[t].tok != tok) tokenizer_free(A[t].tok);
    free(A);
    loader_close(L);
    facts_free(L->f);
}

int facts_load(const char *dir, struct tokenizer *tok, const char *tokenizer_path, unsigned threads,
               int only_phase, struct run_facts *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    struct loader L = {.f = f, .only_phase = only_phase};
    L.lr = eventlog_open(dir, err, errlen);
    if (!L.lr) return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/events.bin", dir);
    L.events_fd = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof path, "%s/bodies.bin", dir);
    L.bodies_fd = open(path, O_RDONLY | O_CLOEXEC);
    L.records_off = (uint64_t)((const char *)L.lr->records - (const char *)L.lr->map_events);
    f->header_json = strdup(L.lr->header_json);
    if (errlen) err[0] = 0;
    L.tap = tap_join_open(dir, L.lr->header_json, err, errlen);
    if (!L.tap && err[0]) {
        loader_close(&L);
        free(f->header_json);
        f->header_json = NULL;
        return -1;
    }
    f->tap_present = L.tap != NULL;
    if (!threads) threads = facts_default_threads();
    if (threads > FACTS_MAX_THREADS) threads = FACTS_MAX_THREADS;
    struct analyser *A = calloc_lines(threads, sizeof *A);
    if (!A) {
        snprintf(err, errlen, "out of memory opening %s: analyse it on a machine with more memory",
                 dir);
        loader_close(&L);
        facts_free(f);
        return -1;
    }
    for (unsigned t = 0; t < threads; t++) {
        /* a tokenizer serves one thread at a time: the others load their own copy (a copy
         * that cannot load, which the first load makes unlikely, leaves fewer threads) */
        A[t].tok = t == 0 || !tok ? tok : tokenizer_load(tokenizer_path, err, errlen);
        if (tok && !A[t].tok) {
            threads = t;
            if (errlen) err[0] = 0;
            break;
        }
    }
    L.nthreads = threads;
    L.progress = calloc(threads, sizeof *L.progress);
    /* without memory for the index, every record is read: slower, the same facts */
    if (only_phase >= 0 && log_index_phase(dir, L.lr, only_phase, &L.run, &L.nrun, &L.first))
        L.first = 0;
    /* the requests, and each thread's events: the arrays are sized once, never grown */
    size_t *events = calloc(threads, sizeof *events);
    struct prepass *P = events && L.progress ? run_records_prepass(&L, events) : NULL;
    if (!P) {
        snprintf(err, errlen,
                 "out of memory while reading the requests of %s: analyse it on a "
                 "machine with more memory",
                 dir);
        load_abort(&L, A, tok, events);
        return -1;
    }
    run_records_take(&L, P);

    f->tok = calloc_lines(threads, sizeof *f->tok);
    int no_memory = !f->tok;
    for (unsigned t = 0; t < threads && !no_memory; t++) {
        A[t].L = &L;
        A[t].index = t;
        A[t].sink = (struct tok_sink){.store = &f->tok[t], .index = t, .f = f};
        A[t].sink.figures = calloc_lines(f->nphases + 1, sizeof *A[t].sink.figures);
        /* pages are touched only as they fill */
        no_memory |= !A[t].sink.figures || tok_store_grow(&f->tok[t], events[t]);
    }
    if (no_memory) {
        snprintf(err, errlen,
                 "out of memory while setting up the analysis threads of %s: analyse it on a "
                 "machine with more memory",
                 dir);
        if (f->tok) f->ntok_stores = threads; /* facts_free frees what the stores hold */
        for (unsigned t = 0; t < threads; t++) free(A[t].sink.figures);
        load_abort(&L, A, tok, events);
        return -1;
    }
    f->ntok_stores = threads;
    free(events);
    int out_of_memory = run_analysers(A, threads) != 0;
    /* requests without an end record (the run was killed): failed, their tokens kept */
    for (size_t i = 0; !out_of_memory && i < f->nreqs; i++) {
        struct req_facts *r = &f->reqs[i];
        if (!r->t_done) {
            request_set_failed(r, FAIL_NO_END,
                               "no end record: the run stopped before this request ended");
            r->transport_error = ERR_INTERRUPTED;
            request_finish(&A[owner(r->req_id, threads)].sink, r, &L.pend[i].p, tok != NULL);
        }
    }
    f->phase_figures = calloc(f->nphases + 1, sizeof *f->phase_figures);
    out_of_memory |= !f->phase_figures;
    for (unsigned t = 0; t < threads; t++) {
        for (int s = 0; s < 5; s++) f->ts_source_events[s] += A[t].ts_source_events[s];
        f->torn_bodies += A[t].torn_bodies;
        f->damaged_bodies += A[t].damaged_bodies;
        f->tap_matched += A[t].tap_matched;
        f->tap_fallback += A[t].tap_fallback;
        f->tap_out_of_order += A[t].tap_out_of_order;
        double *tap = realloc(f->tap_minus_host_us,
                              (f->ntap_minus_host + A[t].ntap + 1) * sizeof *f->tap_minus_host_us);
        if (tap) {
            f->tap_minus_host_us = tap;
            if (A[t].ntap)
                memcpy(tap + f->ntap_minus_host, A[t].tap_minus_host_us, A[t].ntap * sizeof *tap);
            f->ntap_minus_host += A[t].ntap;
        } else {
            out_of_memory = 1;
        }
        free(A[t].tap_minus_host_us);
        free(A[t].keys);
        f->chunks_scanned += A[t].rd.scanned;
        f->chunks_parsed += A[t].rd.parsed;
        chunk_reader_free(&A[t].rd);
        if (A[t].tok != tok) tokenizer_free(A[t].tok);
        out_of_memory |= A[t].sink.out_of_memory;
        pending_pool_free(&A[t].sink.pool);
    }
    if (!out_of_memory) {
        out_of_memory = merge_figures(A, threads, f); /* which frees the threads' tables */
    } else {
        for (unsigned t = 0; t < threads; t++)
            for (size_t k = 0; k < f->nphases; k++)
                for (int w = 0; w < EVENT_FIGURES; w++) value_counts_free(&A[t].sink.figures[k][w]);
    }
    for (unsigned t = 0; t < threads; t++) free(A[t].sink.figures);
    for (unsigned t = 0; t < threads; t++) f->ntok += f->tok[t].len;
    free(A);
    if (L.tap) {
        tap_join_stats(L.tap, &f->tap_records, &f->tap_lost, &f->tap_drift_ppm,
                       &f->tap_uncertainty_ns);
        /* the results say why the drift and uncertainty are unknown, not only stderr */
        const char *clock_note = tap_join_clock_note(L.tap);
        if (clock_note) snprintf(f->tap_clock_note, sizeof f->tap_clock_note, "%s", clock_note);
    }
    loader_close(&L);
    if (out_of_memory) {
        snprintf(err, errlen,
                 "out of memory while counting the per-event figures of %s: "
                 "analyse it on a machine with more memory",
                 dir);
        facts_free(f);
        return -1;
    }
    return 0;
}

const struct value_counts *phase_figure(const struct run_facts *f, const struct phase_info *ph,
                                        enum event_figure which)
{
    static const struct value_counts none = {.sorted = 1};
    for (size_t k = 0; k < f->nphases; k++)
        if (f->phases[k].index == ph->index) return &f->phase_figures[k][which];
    return &none;
}

void facts_free(struct run_facts *f)
{
    free(f->header_json);
    free(f->reqs);
    for (size_t i = 0; i < f->ntok_stores; i++) {
        free(f->tok[i].ev);
        free(f->tok[i].wide);
    }
    for (size_t k = 0; f->phase_figures && k < f->nphases; k++)
        for (int w = 0; w < EVENT_FIGURES; w++) value_counts_free(&f->phase_figures[k][w]);
    free(f->phase_figures);
    free(f->tok);
    free(f->tap_minus_host_us);
    free(f->phases);
    for (size_t i = 0; i < f->npower; i++) {
        free(f->power[i].t);
        free(f->power[i].watts);
        free(f->power[i].energy_j);
    }
    free(f->power);
    server_metrics_free(&f->server);
    free(f->traj_t);
    free(f->traj_phase);
    free(f->offsets);
    for (size_t i = 0; i < f->nranks; i++) {
        free(f->ranks[i].sent);
        free(f->ranks[i].failed);
        free(f->ranks[i].output_tps);
        free(f->ranks[i].ttft_p50_s);
        free(f->ranks[i].start_s);
    }
    free(f->ranks);
    memset(f, 0, sizeof *f);
}
