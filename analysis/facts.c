#include "facts.h"
#include "server_timings.h"

#include "chunk_facts.h"
#include "clock.h"
#include "json_num.h"
#include "log_index.h"
#include "span_read.h"
#include "stats.h"
#include "tap_join.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Requests are found by id through an open-addressing table: ids are (worker << 48 | seq). */
struct idmap {
    uint64_t *keys;
    size_t *vals;
    size_t cap;
};

static size_t *idmap_slot(struct idmap *m, uint64_t key, int insert)
{
    size_t i = (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 20) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) {
        if (!insert) return NULL;
        m->keys[i] = key;
    }
    return &m->vals[i];
}

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
};

static void pend_push(struct pending *p, const struct event_fact *e)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 32;
        p->e = realloc(p->e, p->cap * sizeof *p->e);
    }
    p->e[p->n++] = *e;
}

/* The buffers of closed requests, kept for the next ones to open: a request's events then
 * cost no allocation once its thread has had as many requests open at once as it will have. */
struct pend_pool {
    struct pending *spare;
    size_t n, cap;
};

/* Gives an empty request a spare buffer, when there is one. */
static void pend_take(struct pend_pool *pool, struct pending *p)
{
    if (!p->cap && pool->n) {
        *p = pool->spare[--pool->n];
        p->n = 0;
    }
}

/* A closed request's buffer, back to the pool (or freed when the pool cannot grow). */
static void pend_give(struct pend_pool *pool, struct pending *p)
{
    if (p->cap && pool->n == pool->cap) {
        size_t cap = pool->cap ? pool->cap * 2 : 64;
        struct pending *spare = realloc(pool->spare, cap * sizeof *spare);
        if (spare) {
            pool->spare = spare;
            pool->cap = cap;
        }
    }
    if (p->cap && pool->n < pool->cap)
        pool->spare[pool->n++] = *p;
    else
        free(p->e);
    memset(p, 0, sizeof *p);
}

static void pend_pool_free(struct pend_pool *pool)
{
    for (size_t i = 0; i < pool->n; i++) free(pool->spare[i].e);
    free(pool->spare);
    memset(pool, 0, sizeof *pool);
}

/* The first failure of a request wins: its class and its reason, one line. */
static void set_failed(struct req_facts *r, enum fail_class cls, const char *fmt, ...)
{
    if (r->failed) return;
    r->failed = 1;
    r->fail_class = cls;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
}

/* 1 when this event carried usage (completion_tokens), taken into r */
static int take_usage(struct req_facts *r, const struct chunk_facts *cf)
{
    if (!cf->has_usage) return 0;
    r->usage_seen = 1;
    r->completion_tokens = cf->completion_tokens;
    if (cf->has_prompt_tokens) r->prompt_tokens = cf->prompt_tokens;
    if (cf->has_cached_tokens) r->cached_tokens = cf->cached_tokens;
    if (cf->has_reasoning_tokens) r->reasoning_tokens = cf->reasoning_tokens;
    return 1;
}

/* One SSE event of a successful-status stream. */
static void take_event(struct req_facts *r, struct pending *p, const struct rec_event *ev,
                       const char *data, size_t len, uint64_t *src_counts, struct tokenizer *tok,
                       struct chunk_reader *rd)
{
    if (ev->ts_source < 5) src_counts[ev->ts_source]++;
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        r->saw_done = 1;
        return;
    }
    struct chunk_facts cf;
    chunk_facts_read_keyed(data, len, r->req_id, tok != NULL, rd, &cf);
    if (!cf.is_object) {
        set_failed(r, FAIL_MALFORMED_CHUNK, "malformed chunk JSON at event %ld", (long)ev->index);
        return;
    }
    if (cf.has_error)
        set_failed(r, FAIL_ERROR_EVENT, "error event in stream: %s", cf.error_message);
    int64_t cumulative_before = r->usage_seen ? r->completion_tokens : 0;
    int usage_here = take_usage(r, &cf);
    double tokenized = 0;
    /* each field on its own, as the server sent it */
    for (size_t i = 0; tok && i < cf.ntexts; i++)
        tokenized += (double)tokenizer_count(tok, cf.texts[i].s, cf.texts[i].len);
    if (cf.visible_bytes > cf.answer_bytes && !r->t_first_reasoning)
        r->t_first_reasoning = ev->t_stamp;
    if (cf.finish_reason) r->finish_reason = cf.finish_reason;
    /* a server's own timings ride on a stream's last chunks: its finish or its usage */
    if ((cf.finish_reason || (cf.has_usage && !cf.visible_bytes)) &&
        server_timings_read(data, len, &r->server_prompt_ms, &r->server_predicted_ms))
        r->has_server_timings = 1;
    if (!cf.visible_bytes) return;
    if (!r->t_first_token) {
        r->t_first_token = ev->t_stamp;
        r->usage_per_chunk = usage_here; /* decided by the first token event */
    }
    if (cf.answer_bytes && !r->t_first_answer) r->t_first_answer = ev->t_stamp;
    r->t_last_token = ev->t_stamp;
    r->n_token_events++;
    int64_t lag = INT64_MIN, pace = INT64_MIN;
    if (cf.has_sent_ns) {
        if (__builtin_sub_overflow(ev->t_stamp, cf.sent_ns, &lag)) lag = INT64_MIN;
        if (cf.has_sched_ns) pace = cf.sent_ns - cf.sched_ns; /* both within 2^62 */
    }
    struct event_fact e = {
        .t = ev->t_stamp,
        .lag = lag,
        .gap = ev->ts_source == TS_KERNEL ? ev->t_read - ev->t_stamp : INT64_MIN,
        .pace = pace,
        .bytes = (double)cf.visible_bytes,
        .tokenized = tokenized,
        .server = usage_here ? (double)(r->completion_tokens - cumulative_before) : NAN,
        .emu = cf.has_emu_tokens && cf.emu_tokens >= 0 && cf.emu_tokens <= INT32_MAX
                   ? (int32_t)cf.emu_tokens
                   : -1,
    };
    if (!usage_here) r->usage_per_chunk = 0;
    pend_push(p, &e);
}

static void reason_from_body(struct req_facts *r, const char *body, size_t len)
{
    cJSON *j = body ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *msg = cJSON_IsObject(err) ? cJSON_GetObjectItemCaseSensitive(err, "message") : err;
    if (cJSON_IsString(msg))
        snprintf(r->reason, sizeof r->reason, "HTTP %d: %s", r->status, msg->valuestring);
    else
        snprintf(r->reason, sizeof r->reason, "HTTP %d: %.*s", r->status,
                 (int)(len > 120 ? 120 : len), body ? body : "");
    for (char *c = r->reason; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    cJSON_Delete(j);
}

static void store_grow(struct tok_store *ts, size_t need)
{
    if (ts->len + need <= ts->cap) return;
    while (ts->len + need > ts->cap) ts->cap = ts->cap ? ts->cap * 2 : 4096;
    ts->ev = big_realloc(ts->ev, ts->cap * sizeof *ts->ev);
}

const struct tok_wide *tok_wide_find(const struct tok_store *ts, size_t at)
{
    size_t lo = 0, hi = ts->nwide;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (ts->wide[mid].at <= at)
            lo = mid;
        else
            hi = mid;
    }
    return &ts->wide[lo]; /* every wide event has its entry */
}

/* Appends one token event (prev: the request's previous token event's stamp, or its first
 * token's), all its values in the wide list when one does not fit. */
static void store_put(struct tok_store *ts, int64_t t, int64_t prev, double k, double bytes,
                      uint32_t flags)
{
    size_t at = ts->len++;
    struct tok_event *ev = &ts->ev[at];
    int64_t dt;
    int dt_fits = !__builtin_sub_overflow(t, prev, &dt) && dt > INT32_MIN && dt <= INT32_MAX;
    int k_fits =
        isnan(k) || (k > (double)TOK_K_WIDE && k <= (double)INT32_MAX && k == (double)(int32_t)k);
    int bytes_fit =
        bytes >= 0 && bytes < (double)TOK_BYTES_WIDE && bytes == (double)(uint32_t)bytes;
    ev->dt = dt_fits ? (int32_t)dt : TOK_DT_WIDE;
    ev->k = isnan(k) ? TOK_K_UNKNOWN : k_fits ? (int32_t)k : TOK_K_WIDE;
    ev->bytes_flags = (bytes_fit ? (uint32_t)bytes : TOK_BYTES_WIDE) | flags;
    if (dt_fits && k_fits && bytes_fit) return;
    if (ts->nwide == ts->wide_cap) {
        ts->wide_cap = ts->wide_cap ? ts->wide_cap * 2 : 64;
        ts->wide = realloc(ts->wide, ts->wide_cap * sizeof *ts->wide);
    }
    ts->wide[ts->nwide++] = (struct tok_wide){.at = at, .t = t, .k = k, .bytes = bytes};
}

/* An event's tokens by a counting rule, NAN when the rule has none. */
static double counted_by(enum count_rule rule, const struct event_fact *e)
{
    return rule == COUNT_SERVER ? e->server : rule == COUNT_TOKENIZER ? e->tokenized : NAN;
}

/* Where a thread puts closed requests: its token store and its per-phase figure counts. */
struct tok_sink {
    struct tok_store *store;
    uint32_t index;
    const struct run_facts *f;                     /* the phases, read first */
    struct value_counts (*figures)[EVENT_FIGURES]; /* aligned with f->phases */
    int out_of_memory;
    struct pend_pool pool;
};

/* The request's token events inside its phase's window into that phase's figures. */
static void count_figures(struct tok_sink *sink, const struct req_facts *r, const struct pending *p)
{
    const struct run_facts *f = sink->f;
    size_t k;
    for (k = 0; k < f->nphases && f->phases[k].index != r->phase; k++) {
    }
    if (k == f->nphases) return;
    int64_t ws = f->phases[k].t_window_start, we = f->phases[k].t_window_end;
    struct value_counts *lag = &sink->figures[k][FIGURE_LAG],
                        *gap = &sink->figures[k][FIGURE_USER_GAP],
                        *pace = &sink->figures[k][FIGURE_PACING];
    int failed = 0;
    for (size_t i = 0; i < p->n; i++) {
        const struct event_fact *e = &p->e[i];
        if (e->t < ws || e->t >= we) continue;
        if (e->lag != INT64_MIN) failed |= value_counts_add(lag, (double)e->lag / 1e3, 1);
        if (e->gap != INT64_MIN) failed |= value_counts_add(gap, (double)e->gap / 1e3, 1);
        if (e->pace != INT64_MIN) failed |= value_counts_add(pace, (double)e->pace / 1e3, 1);
    }
    if (failed) sink->out_of_memory = 1;
}

/* Closes a request: its counting rule, token totals, failure verdict, and its token events
 * into its thread's token store. */
static void finish(struct tok_sink *sink, struct req_facts *r, struct pending *p,
                   int have_tokenizer)
{
    struct tok_store *ts = sink->store;
    double bytes = 0, tokenized = 0, server = 0;
    for (size_t i = 0; i < p->n; i++) {
        bytes += p->e[i].bytes;
        tokenized += p->e[i].tokenized;
        server += isnan(p->e[i].server) ? 0 : p->e[i].server;
    }
    r->count_rule = p->n && r->usage_per_chunk ? COUNT_SERVER
                    : have_tokenizer           ? COUNT_TOKENIZER
                                               : COUNT_NONE;
    int counts = r->count_rule != COUNT_NONE;
    double counted = r->count_rule == COUNT_SERVER ? server : tokenized;
    r->tokenizer_tokens = have_tokenizer ? (int64_t)tokenized : -1;
    r->output_source = OUT_USAGE;
    if (!r->usage_seen) {
        r->output_source = have_tokenizer ? OUT_TOKENIZER : OUT_BYTES;
        r->completion_tokens = have_tokenizer ? (int64_t)tokenized : (int64_t)((bytes + 3) / 4);
        r->output_estimated = r->completion_tokens > 0;
    }
    r->first_chunk_tokens = counts && p->n ? counted_by(r->count_rule, &p->e[0]) : 1;
    if (!r->failed && r->t_done && !r->transport_error && r->status >= 200 && r->status <= 299 &&
        !r->saw_done)
        set_failed(r, FAIL_NO_DONE, "stream ended without [DONE]");
    r->tok_store = sink->index;
    r->tok_first = ts->len;
    r->tok_count = p->n;
    store_grow(ts, p->n);
    /* shares of the request's total: by counted tokens when known, else by bytes */
    r->share_by_count = counts && counted > 0;
    r->share_weight_sum = r->share_by_count ? counted : bytes;
    r->share_total = (double)r->completion_tokens;
    for (size_t i = 0; i < p->n; i++) {
        const struct event_fact *e = &p->e[i];
        double k = counted_by(r->count_rule, e);
        uint32_t flags = 0;
        if (!isnan(k) && e->emu >= 0)
            flags = TOK_EMU_COMPARED | (k != (double)e->emu ? TOK_EMU_DIFFERS : 0);
        store_put(ts, e->t, i ? p->e[i - 1].t : r->t_first_token, k, e->bytes, flags);
    }
    count_figures(sink, r, p);
    pend_give(&sink->pool, p);
}

double req_output_speed(const struct req_facts *r)
{
    if (r->n_token_events < 2 || r->t_last_token <= r->t_first_token) return NAN;
    return ((double)r->completion_tokens - r->first_chunk_tokens) /
           ((double)(r->t_last_token - r->t_first_token) / 1e9);
}

const char *count_rule_name(enum count_rule r)
{
    return r == COUNT_SERVER      ? "server-usage-per-chunk"
           : r == COUNT_TOKENIZER ? "tokenizer"
                                  : "none";
}

/* What facts_load carries between records: the run's shared state (read-only while the
 * threads run, but for each request's own slots). */
struct loader {
    struct run_facts *f;
    int only_phase;
    struct eventlog_reader *lr;
    struct tap_join *tap;
    struct idmap ids;
    struct pending *pend; /* per request, aligned with f->reqs */
    size_t *sent_at;      /* per request: its REC_REQUEST_SENT's record index */
    size_t phase_cap;
    unsigned nthreads;
    /* one phase's analysis: its requests' records lie from `first` on, the run's records at
     * run[0..nrun) (log_index.h); NULL run: every record is read */
    size_t first, *run, nrun;
    _Atomic size_t *progress; /* per thread: the records it has read up to */
    _Atomic size_t dropped;   /* the records before this, and their bodies, are unmapped */
    /* the log's files, read (span_read.h) rather than through the mapping when they open:
     * -1 else; the records lie from records_off in events.bin */
    int events_fd, bodies_fd;
    uint64_t records_off;
};

#define LOG_WINDOW 65536 /* records read at once: 4 MiB */

/* One analysis thread: the requests whose id hashes to it, and everything it counts. */
struct analyser {
    struct loader *L;
    unsigned index;
    struct tokenizer *tok;
    struct chunk_reader rd;
    struct span_buf records_copy, bodies_copy;
    struct tok_sink sink;
    uint64_t ts_source_events[5];
    size_t torn_bodies, tap_matched, tap_fallback, tap_out_of_order;
    double *tap_minus_host_us;
    size_t ntap, tap_cap;
};

/* Which thread owns a request: by its id alone, so a thread skips others' records unread. */
static unsigned owner(uint64_t req_id, unsigned nthreads)
{
    /* the hash's top 32 bits scaled to [0, nthreads): no division per record */
    return (unsigned)((((req_id * 0x9e3779b97f4a7c15ULL) >> 32) * nthreads) >> 32);
}

/* A phase is written when it starts and again when it ends: the last one wins. */
static void take_phase(struct loader *L, const struct rec_phase *v)
{
    struct run_facts *f = L->f;
    size_t k;
    for (k = 0; k < f->nphases && f->phases[k].index != v->index; k++) {
    }
    if (k == f->nphases) {
        if (f->nphases == L->phase_cap) {
            L->phase_cap = L->phase_cap ? L->phase_cap * 2 : 16;
            f->phases = realloc(f->phases, L->phase_cap * sizeof *f->phases);
        }
        memset(&f->phases[k], 0, sizeof f->phases[k]);
        f->nphases++;
    }
    struct phase_info *ph = &f->phases[k];
    ph->index = v->index;
    ph->concurrency = v->concurrency;
    ph->t_start = v->t_start;
    ph->t_window_start = v->t_window_start;
    ph->t_window_end = v->t_window_end;
    ph->t_end = v->t_end;
    ph->flags = v->flags;
}

static void take_power(struct run_facts *f, const struct rec_power *v)
{
    if (v->device < 0) {
        f->power_failures++;
        return;
    }
    struct power_series *ps = NULL;
    for (size_t k = 0; k < f->npower; k++)
        if (f->power[k].source == v->source && f->power[k].device == v->device) ps = &f->power[k];
    if (!ps) {
        f->power = realloc(f->power, (f->npower + 1) * sizeof *f->power);
        ps = &f->power[f->npower++];
        memset(ps, 0, sizeof *ps);
        ps->source = v->source;
        ps->device = v->device;
    }
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 256;
        ps->t = realloc(ps->t, ps->cap * sizeof *ps->t);
        ps->watts = realloc(ps->watts, ps->cap * sizeof *ps->watts);
        ps->energy_j = realloc(ps->energy_j, ps->cap * sizeof *ps->energy_j);
    }
    ps->t[ps->n] = v->t;
    ps->watts[ps->n] = v->milliwatts == POWER_NONE ? NAN : (double)v->milliwatts / 1e3;
    ps->energy_j[ps->n] = v->microjoules == POWER_NONE ? NAN : (double)v->microjoules / 1e6;
    ps->n++;
}

static void take_trajectory(struct run_facts *f, const struct rec_trajectory_done *v)
{
    f->traj_t = realloc(f->traj_t, (f->ntraj + 1) * sizeof *f->traj_t);
    f->traj_phase = realloc(f->traj_phase, (f->ntraj + 1) * sizeof *f->traj_phase);
    f->traj_t[f->ntraj] = v->t;
    f->traj_phase[f->ntraj++] = v->phase;
}

static void take_mark(struct run_facts *f, const struct rec_mark *v)
{
    if (v->kind == MARK_INTERRUPTED) f->interrupted = 1;
    if (v->kind == MARK_RUN_END) f->run_ended = 1;
    if (v->kind == MARK_CLIENT_MEMORY)
        for (size_t k = 0; k < f->nphases; k++)
            if (f->phases[k].index == v->phase) f->phases[k].client_bytes = v->client_bytes;
    if (v->kind == MARK_ARRIVALS_UNSENT)
        for (size_t k = 0; k < f->nphases; k++)
            if (f->phases[k].index == v->phase) f->phases[k].arrivals_unsent = v->unsent;
}

static void take_sent(struct loader *L, const struct rec_request_sent *v, size_t at)
{
    struct run_facts *f = L->f;
    if (L->only_phase >= 0 && v->phase != L->only_phase) return; /* its events are skipped too */
    size_t *slot = idmap_slot(&L->ids, v->req_id, 1);
    *slot = f->nreqs;
    L->sent_at[f->nreqs] = at;
    struct req_facts *r = &f->reqs[f->nreqs++];
    r->req_id = v->req_id;
    r->phase = v->phase;
    r->t_sched = v->t_sched;
    r->t_written = v->t_written;
    r->held_by_cap = (v->tag & SOURCE_TAG_HELD_BY_CAP) != 0;
    r->finish_reason = "";
}

/* An event's stamp: the FPGA tap's when its record joins the event, else the host's own. */
static void stamp_from_tap(struct analyser *A, struct req_facts *r, struct rec_event *ev)
{
    int64_t t_tap;
    int64_t addr = (int64_t)ev->local_ip << 16 | ev->local_port;
    if (A->L->tap && ev->stream_offset >= 0 && addr) {
        if (tap_join_lookup(A->L->tap, ev->stream_offset, addr, &t_tap)) {
            if (A->ntap == A->tap_cap) {
                A->tap_cap = A->tap_cap ? A->tap_cap * 2 : 4096;
                A->tap_minus_host_us =
                    realloc(A->tap_minus_host_us, A->tap_cap * sizeof *A->tap_minus_host_us);
            }
            A->tap_minus_host_us[A->ntap++] = (double)(t_tap - ev->t_stamp) / 1e3;
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
        reason_from_body(r, body, len);
    } else if (r->transport_error) {
        /* older logs recorded the cut event too: its torn JSON is not the reason */
        if (r->transport_error == ERR_EVENT_TOO_LONG) r->failed = 0;
        char what[160];
        snprintf(what, sizeof what, "%.*s", (int)(len > 150 ? 150 : len), body ? body : "");
        set_failed(r, FAIL_TRANSPORT, "%s%s%s", req_error_name(v->error), what[0] ? ": " : "",
                   what);
    } else if (!r->status) {
        set_failed(r, FAIL_NO_STATUS, "no HTTP status: the response ended without a status line");
    }
    finish(&A->sink, r, p, A->tok != NULL);
}

/* A record about one request: its events, its retry, its end. */
static void take_request_record(struct analyser *A, const struct log_record *rec, size_t req,
                                const char *body)
{
    struct loader *L = A->L;
    struct req_facts *r = &L->f->reqs[req];
    struct pending *p = &L->pend[req];
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
        pend_take(&A->sink.pool, p);
        take_event(r, p, &ev, body, rec->len, A->ts_source_events, A->tok, &A->rd);
    } else if (rec->type == REC_REQUEST_END) {
        struct rec_request_end end = rec_request_end_decode(rec);
        take_end(A, r, p, &end, body, rec->len);
    }
}

/* What the analysis threads leave to the serial pass: the run's records and requests' starts. */
static int is_run_record(uint8_t type)
{
    return !log_type_is_request(type) || type == REC_REQUEST_SENT;
}

/* madvise over the whole pages of [p, p + len) */
static void advise(const void *p, size_t len, int advice)
{
    uintptr_t from = (uintptr_t)p & ~(uintptr_t)4095, to = (uintptr_t)p + len;
    if (len && to > from) madvise((void *)from, to - from, advice);
}

/* The records whose bodies are read at once: their span (about 0.5 MiB per thread) stays in
 * the cache between the copy and the parse. */
#define BODY_BATCH 2048

/* Points the bodies of records idx[0..n) of the window read from w (body[j]: in the mapping,
 * or NULL) at a copy of their span in the thread's buffer (the collector writes bodies in
 * record order); where that cannot be read, the mapping's span is populated instead. */
static void bodies_batch(struct analyser *A, const struct log_record *recs, size_t w,
                         const size_t *idx, const char **body, size_t n)
{
    const struct eventlog_reader *lr = A->L->lr;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t j = 0; j < n; j++) {
        const struct log_record *rec = &recs[idx[j] - w];
        if (!body[j] || !rec->len) continue;
        if (rec->off < lo) lo = rec->off;
        if (rec->off + rec->len > hi) hi = rec->off + rec->len;
    }
    if (hi <= lo) return;
    const char *copy = span_read(&A->bodies_copy, A->L->bodies_fd, lo, hi - lo);
    if (copy) {
        for (size_t j = 0; j < n; j++)
            if (body[j] && body[j] >= lr->bodies + lo && body[j] < lr->bodies + hi)
                body[j] = copy + (body[j] - (lr->bodies + lo));
    } else if (!lr->owned_records) {
        advise(lr->bodies + lo, hi - lo, MADV_POPULATE_READ);
    }
}

#define MAX_LEAD 2 /* windows a thread may run ahead of the slowest */

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

/* Each thread reads a window of the log's records at a time, then the bodies of the records
 * it will read (its requests', of the phase asked for) a batch at a time, into buffers it
 * reuses (span_read.h; page faults one by one, or even pages mapped in a call, cost more than
 * the parsing on a virtual machine). Where a read fails it maps them in instead: what every
 * thread has passed is then unmapped, and a thread waits rather than run more than MAX_LEAD
 * windows ahead of the slowest (a starved thread would otherwise keep the whole log mapped
 * between them). */
static void *analyse(void *arg)
{
    struct analyser *A = arg;
    struct loader *L = A->L;
    const struct eventlog_reader *lr = L->lr;
    unsigned nthreads = L->nthreads;
    size_t *idx = malloc(LOG_WINDOW * sizeof *idx), *req = malloc(LOG_WINDOW * sizeof *req);
    const char **body = malloc(LOG_WINDOW * sizeof *body);
    for (size_t w = L->first; w < lr->nrecords; w += LOG_WINDOW) {
        size_t end = w + LOG_WINDOW < lr->nrecords ? w + LOG_WINDOW : lr->nrecords, n = 0;
        const struct log_record *recs =
            lr->owned_records ? &lr->records[w]
                              : (const void *)span_read(&A->records_copy, L->events_fd,
                                                        L->records_off + w * sizeof *recs,
                                                        (end - w) * sizeof *recs);
        if (!recs) {
            recs = &lr->records[w];
            advise(recs, (end - w) * sizeof *recs, MADV_POPULATE_READ);
        }
        uint64_t lo = UINT64_MAX, hi = 0, bytes = 0;
        for (size_t i = w; i < end; i++) {
            const struct log_record *rec = &recs[i - w];
            /* unknown types find no request */
            if (is_run_record(rec->type) ||
                (nthreads > 1 && owner(rec->req_id, nthreads) != A->index))
                continue;
            size_t *slot = idmap_slot(&L->ids, rec->req_id, 0);
            /* another phase's, its start lost with a torn log, or written before its start */
            if (!slot || i < L->sent_at[*slot]) continue;
            /* eventlog_body's bounds */
            int inside = rec->off <= lr->bodies_len && rec->len <= lr->bodies_len - rec->off;
            body[n] = inside ? lr->bodies + rec->off : NULL;
            if (inside && rec->len) {
                if (rec->off < lo) lo = rec->off;
                if (rec->off + rec->len > hi) hi = rec->off + rec->len;
                bytes += rec->len;
            }
            idx[n] = i;
            req[n++] = *slot;
        }
        /* bodies in record order span about the threads' count times this thread's bytes; a
         * log whose records share bodies (strobe-log-replicate --share-bodies) spans far more:
         * it is mapped in, the window's span in one call, rather than read again per batch */
        int copy =
            L->bodies_fd >= 0 && hi > lo && hi - lo <= 2 * (uint64_t)nthreads * bytes + 65536;
        if (!copy && !lr->owned_records && hi > lo)
            advise(lr->bodies + lo, hi - lo, MADV_POPULATE_READ);
        for (size_t b = 0; b < n; b += BODY_BATCH) {
            size_t m = n - b < BODY_BATCH ? n - b : BODY_BATCH;
            if (copy) bodies_batch(A, recs, w, idx + b, body + b, m);
            for (size_t j = b; j < b + m; j++)
                take_request_record(A, &recs[idx[j] - w], req[j], body[j]);
        }
        atomic_store_explicit(&L->progress[A->index], end, memory_order_release);
        if (lr->owned_records) continue;
        drop_passed(L);
        while (end < lr->nrecords && end > slowest(L) + MAX_LEAD * LOG_WINDOW) {
            struct timespec nap = {0, 200000};
            nanosleep(&nap, NULL);
        }
    }
    atomic_store_explicit(&L->progress[A->index], lr->nrecords, memory_order_release);
    free(idx);
    free(req);
    free(body);
    return NULL;
}

/* Records [w, end) of a pass that began at `first`: a copy read into sb, else the mapping, a
 * window populated at a time, the one behind dropped (a serial pass reads no bodies). */
static const struct log_record *records_at(const struct loader *L, struct span_buf *sb, size_t w,
                                           size_t end, size_t first)
{
    const struct eventlog_reader *lr = L->lr;
    if (lr->owned_records) return &lr->records[w];
    const void *copy = span_read(sb, L->events_fd, L->records_off + w * sizeof *lr->records,
                                 (end - w) * sizeof *lr->records);
    if (copy) return copy;
    advise(&lr->records[w], (end - w) * sizeof *lr->records, MADV_POPULATE_READ);
    if (w >= first + LOG_WINDOW)
        advise(&lr->records[w - LOG_WINDOW], LOG_WINDOW * sizeof *lr->records, MADV_DONTNEED);
    return &lr->records[w];
}

static void take_run_record(struct loader *L, const struct log_record *rec, size_t i)
{
    struct run_facts *f = L->f;
    switch (rec->type) {
    case REC_PHASE: {
        struct rec_phase v = rec_phase_decode(rec);
        take_phase(L, &v);
        break;
    }
    case REC_POWER: {
        struct rec_power v = rec_power_decode(rec);
        take_power(f, &v);
        break;
    }
    case REC_SERVER_METRICS: {
        struct rec_server_metrics v = rec_server_metrics_decode(rec);
        const char *text = eventlog_body(L->lr, rec);
        if (v.status == 200 && text)
            server_metrics_take(&f->server, v.t, text, rec->len);
        else
            server_metrics_failed(&f->server);
        break;
    }
    case REC_CLOCK_OFFSET: {
        f->offsets = realloc(f->offsets, (f->noffsets + 1) * sizeof *f->offsets);
        f->offsets[f->noffsets++] = rec_clock_offset_decode(rec);
        break;
    }
    case REC_TRAJECTORY_DONE: {
        struct rec_trajectory_done v = rec_trajectory_done_decode(rec);
        take_trajectory(f, &v);
        break;
    }
    case REC_MARK: {
        struct rec_mark v = rec_mark_decode(rec);
        take_mark(f, &v);
        break;
    }
    case REC_REQUEST_SENT: {
        struct rec_request_sent v = rec_request_sent_decode(rec);
        take_sent(L, &v, i);
        break;
    }
    default: break;
    }
}

/* The records about the run as a whole, and every request's start, in log order (the run's
 * records from the index, when one phase is read, then its requests' starts). */
static void take_run_records(struct loader *L)
{
    const struct eventlog_reader *lr = L->lr;
    for (size_t k = 0; L->run && k < L->nrun; k++)
        take_run_record(L, &lr->records[L->run[k]], L->run[k]);
    struct span_buf sb = {0};
    for (size_t w = L->first; w < lr->nrecords; w += LOG_WINDOW) {
        size_t end = w + LOG_WINDOW < lr->nrecords ? w + LOG_WINDOW : lr->nrecords;
        const struct log_record *recs = records_at(L, &sb, w, end, L->first);
        for (size_t i = w; i < end; i++) {
            uint8_t type = recs[i - w].type;
            /* events and ends are the threads' (most records: no call for them) */
            if (type == REC_REQUEST_SENT || (!L->run && !log_type_is_request(type)))
                take_run_record(L, &recs[i - w], i);
        }
    }
    span_buf_free(&sb);
}

unsigned facts_default_threads(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set)) return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? (unsigned)n : 1;
}

/* Runs the analysers, the first on this thread; a thread that cannot start leaves its share
 * to this one. */
static void run_analysers(struct analyser *A, unsigned n)
{
    pthread_t *th = calloc(n, sizeof *th);
    int *started = calloc(n, sizeof *started);
    struct loader *L = A[0].L;
    for (unsigned t = 0; t < n; t++) atomic_init(&L->progress[t], L->first);
    atomic_init(&L->dropped, L->first);
    for (unsigned t = 1; t < n; t++) {
        started[t] = !pthread_create(&th[t], NULL, analyse, &A[t]);
        /* one that runs later, alone, holds no one back (its windows are mapped again) */
        if (!started[t]) atomic_store(&L->progress[t], L->lr->nrecords);
    }
    analyse(&A[0]);
    for (unsigned t = 1; t < n; t++)
        if (started[t])
            pthread_join(th[t], NULL);
        else
            analyse(&A[t]);
    free(th);
    free(started);
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
        eventlog_reader_close(L.lr);
        if (L.events_fd >= 0) close(L.events_fd);
        if (L.bodies_fd >= 0) close(L.bodies_fd);
        free(f->header_json);
        f->header_json = NULL;
        return -1;
    }
    f->tap_present = L.tap != NULL;
    if (!threads) threads = facts_default_threads();
    if (threads > FACTS_MAX_THREADS) threads = FACTS_MAX_THREADS;
    struct analyser *A = calloc(threads, sizeof *A);
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
    size_t nsent = 0, *events = calloc(threads, sizeof *events);
    struct span_buf sb = {0};
    for (size_t w = L.first; w < L.lr->nrecords; w += LOG_WINDOW) {
        size_t end = w + LOG_WINDOW < L.lr->nrecords ? w + LOG_WINDOW : L.lr->nrecords;
        const struct log_record *recs = records_at(&L, &sb, w, end, L.first);
        for (size_t i = w; i < end; i++) {
            const struct log_record *rec = &recs[i - w];
            nsent += rec->type == REC_REQUEST_SENT &&
                     (only_phase < 0 || rec_request_sent_decode(rec).phase == only_phase);
            if (rec->type == REC_EVENT) events[owner(rec->req_id, threads)]++;
        }
    }
    span_buf_free(&sb);
    L.ids.cap = 1024;
    while (L.ids.cap < nsent * 2 + 2) L.ids.cap <<= 1;
    L.ids.keys = calloc(L.ids.cap, sizeof *L.ids.keys);
    L.ids.vals = calloc(L.ids.cap, sizeof *L.ids.vals);
    f->reqs = calloc(nsent ? nsent : 1, sizeof *f->reqs);
    L.pend = calloc(nsent ? nsent : 1, sizeof *L.pend);
    L.sent_at = calloc(nsent ? nsent : 1, sizeof *L.sent_at);
    take_run_records(&L);

    f->tok = calloc(threads, sizeof *f->tok);
    f->ntok_stores = threads;
    for (unsigned t = 0; t < threads; t++) {
        A[t].L = &L;
        A[t].index = t;
        A[t].sink = (struct tok_sink){.store = &f->tok[t], .index = t, .f = f};
        A[t].sink.figures = calloc(f->nphases + 1, sizeof *A[t].sink.figures);
        store_grow(&f->tok[t], events[t]); /* pages are touched only as they fill */
    }
    free(events);
    run_analysers(A, threads);
    /* requests without an end record (the run was killed): failed, their tokens kept */
    for (size_t i = 0; i < f->nreqs; i++) {
        struct req_facts *r = &f->reqs[i];
        if (!r->t_done) {
            set_failed(r, FAIL_NO_END, "no end record: the run stopped before this request ended");
            r->transport_error = ERR_INTERRUPTED;
            finish(&A[owner(r->req_id, threads)].sink, r, &L.pend[i], tok != NULL);
        }
    }
    int out_of_memory = 0;
    f->phase_figures = calloc(f->nphases + 1, sizeof *f->phase_figures);
    for (unsigned t = 0; t < threads; t++) {
        for (int s = 0; s < 5; s++) f->ts_source_events[s] += A[t].ts_source_events[s];
        f->torn_bodies += A[t].torn_bodies;
        f->tap_matched += A[t].tap_matched;
        f->tap_fallback += A[t].tap_fallback;
        f->tap_out_of_order += A[t].tap_out_of_order;
        f->tap_minus_host_us = realloc(f->tap_minus_host_us, (f->ntap_minus_host + A[t].ntap + 1) *
                                                                 sizeof *f->tap_minus_host_us);
        if (A[t].ntap)
            memcpy(f->tap_minus_host_us + f->ntap_minus_host, A[t].tap_minus_host_us,
                   A[t].ntap * sizeof *f->tap_minus_host_us);
        f->ntap_minus_host += A[t].ntap;
        free(A[t].tap_minus_host_us);
        f->chunks_scanned += A[t].rd.scanned;
        f->chunks_parsed += A[t].rd.parsed;
        chunk_reader_free(&A[t].rd);
        if (A[t].tok != tok) tokenizer_free(A[t].tok);
        out_of_memory |= A[t].sink.out_of_memory;
        pend_pool_free(&A[t].sink.pool);
        span_buf_free(&A[t].records_copy);
        span_buf_free(&A[t].bodies_copy);
        for (size_t k = 0; k < f->nphases; k++)
            for (int w = 0; w < EVENT_FIGURES; w++) {
                out_of_memory |=
                    value_counts_merge(&f->phase_figures[k][w], &A[t].sink.figures[k][w]);
            }
        free(A[t].sink.figures);
    }
    for (size_t k = 0; k < f->nphases; k++)
        for (int w = 0; w < EVENT_FIGURES; w++) value_counts_sort(&f->phase_figures[k][w]);
    for (unsigned t = 0; t < threads; t++) f->ntok += f->tok[t].len;
    free(A);
    free(L.pend);
    free(L.sent_at);
    free(L.run);
    free(L.progress);
    if (L.tap) {
        tap_join_stats(L.tap, &f->tap_records, &f->tap_lost, &f->tap_drift_ppm,
                       &f->tap_uncertainty_ns);
        tap_join_close(L.tap);
    }
    free(L.ids.keys);
    free(L.ids.vals);
    eventlog_reader_close(L.lr);
    if (L.events_fd >= 0) close(L.events_fd);
    if (L.bodies_fd >= 0) close(L.bodies_fd);
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
