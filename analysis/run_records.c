/* The run's own records (phases, power, server metrics, clock offsets, trajectories, marks)
 * and every request's start, taken in log order before the analysis threads start, from a
 * pass over the log split over those threads (facts_loader.h). */
#include "facts_loader.h"

#include "must_alloc.h"
#include "span_read.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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
            f->phases =
                must_realloc(f->phases, L->phase_cap * sizeof *f->phases, "the run's phases");
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
        f->power =
            must_realloc(f->power, (f->npower + 1) * sizeof *f->power, "the run's power sources");
        ps = &f->power[f->npower++];
        memset(ps, 0, sizeof *ps);
        ps->source = v->source;
        ps->device = v->device;
    }
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 256;
        ps->t = must_realloc(ps->t, ps->cap * sizeof *ps->t, "a power source's readings");
        ps->watts =
            must_realloc(ps->watts, ps->cap * sizeof *ps->watts, "a power source's readings");
        ps->energy_j =
            must_realloc(ps->energy_j, ps->cap * sizeof *ps->energy_j, "a power source's readings");
    }
    ps->t[ps->n] = v->t;
    ps->watts[ps->n] = v->milliwatts == POWER_NONE ? NAN : (double)v->milliwatts / 1e3;
    ps->energy_j[ps->n] = v->microjoules == POWER_NONE ? NAN : (double)v->microjoules / 1e6;
    ps->n++;
}

static void take_trajectory(struct run_facts *f, const struct rec_trajectory_done *v)
{
    f->traj_t =
        must_realloc(f->traj_t, (f->ntraj + 1) * sizeof *f->traj_t, "the run's trajectories");
    f->traj_phase = must_realloc(f->traj_phase, (f->ntraj + 1) * sizeof *f->traj_phase,
                                 "the run's trajectories");
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
        char keyed[BODY_KEY_MAX];
        size_t len;
        const char *text = eventlog_body(L->lr, rec, keyed, &len);
        if (v.status == 200 && text)
            server_metrics_take(&f->server, v.t, text, len);
        else
            server_metrics_failed(&f->server);
        break;
    }
    case REC_CLOCK_OFFSET: {
        f->offsets = must_realloc(f->offsets, (f->noffsets + 1) * sizeof *f->offsets,
                                  "the run's clock offsets");
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

/* The pass before the analysis threads, split over them by contiguous ranges of the log:
 * each range's events per analysis thread (the token stores are sized from them), and a copy
 * of its records that the serial part takes in log order: the run's records and every
 * request's start (the requests' table is sized from them). */
struct kept_record {
    size_t at;
    struct log_record rec;
};

struct prepass {
    struct loader *L;
    size_t from, to;
    size_t events[FACTS_MAX_THREADS];
    struct kept_record *kept;
    size_t nkept, cap;
    int out_of_memory;
};

static void *prepass_range(void *arg)
{
    struct prepass *P = arg;
    struct loader *L = P->L;
    struct span_buf sb = {0};
    for (size_t w = P->from; w < P->to; w += LOG_WINDOW) {
        size_t end = w + LOG_WINDOW < P->to ? w + LOG_WINDOW : P->to;
        const struct log_record *recs = records_at(L, &sb, w, end, P->from);
        for (size_t i = w; i < end; i++) {
            const struct log_record *rec = &recs[i - w];
            if (rec->type == REC_EVENT) {
                P->events[owner(rec->req_id, L->nthreads)]++;
                continue;
            }
            /* events and ends are the threads' (most records: no call for them) */
            if (rec->type != REC_REQUEST_SENT && (L->run || log_type_is_request(rec->type)))
                continue;
            if (P->nkept == P->cap) {
                size_t cap = P->cap ? 2 * P->cap : 1024;
                struct kept_record *k = realloc(P->kept, cap * sizeof *k);
                if (!k) {
                    P->out_of_memory = 1;
                    break;
                }
                P->kept = k;
                P->cap = cap;
            }
            P->kept[P->nkept++] = (struct kept_record){.at = i, .rec = *rec};
        }
    }
    span_buf_free(&sb);
    return NULL;
}

/* Runs the pre-pass over L->nthreads ranges (a thread that cannot start leaves its range to
 * this one), sums the events per analysis thread into events[], and sizes the requests'
 * arrays. Returns the ranges (L->nthreads of them) with what they kept, or NULL out of
 * memory. */
struct prepass *run_records_prepass(struct loader *L, size_t *events)
{
    unsigned n = L->nthreads;
    size_t first = L->first, total = L->lr->nrecords > first ? L->lr->nrecords - first : 0;
    struct prepass *P = calloc(n, sizeof *P);
    pthread_t *th = calloc(n, sizeof *th);
    int *started = calloc(n, sizeof *started);
    if (!P || !th || !started) {
        free(P);
        free(th);
        free(started);
        return NULL;
    }
    /* whole windows each, so that a range's reads are the windows a single pass reads */
    size_t windows = (total + LOG_WINDOW - 1) / LOG_WINDOW;
    for (unsigned t = 0; t < n; t++) {
        P[t].L = L;
        P[t].from = first + windows * t / n * LOG_WINDOW;
        P[t].to = first + windows * (t + 1) / n * LOG_WINDOW;
        if (P[t].from > first + total) P[t].from = first + total;
        if (P[t].to > first + total) P[t].to = first + total;
    }
    for (unsigned t = 1; t < n; t++)
        started[t] = !pthread_create(&th[t], NULL, prepass_range, &P[t]);
    prepass_range(&P[0]);
    for (unsigned t = 1; t < n; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else
            prepass_range(&P[t]);
    }
    free(th);
    free(started);
    int out_of_memory = 0;
    size_t nsent = 0;
    for (unsigned t = 0; t < n; t++) {
        out_of_memory |= P[t].out_of_memory;
        for (unsigned a = 0; a < n; a++) events[a] += P[t].events[a];
        for (size_t k = 0; k < P[t].nkept; k++) {
            const struct log_record *rec = &P[t].kept[k].rec;
            nsent += rec->type == REC_REQUEST_SENT &&
                     (L->only_phase < 0 || rec_request_sent_decode(rec).phase == L->only_phase);
        }
    }
    L->ids.cap = 1024;
    while (L->ids.cap < nsent * 2 + 2) L->ids.cap <<= 1;
    L->ids.keys = calloc(L->ids.cap, sizeof *L->ids.keys);
    L->ids.vals = calloc(L->ids.cap, sizeof *L->ids.vals);
    L->f->reqs = calloc_lines(nsent, sizeof *L->f->reqs);
    L->pend = calloc_lines(nsent, sizeof *L->pend);
    L->sent_at = calloc(nsent ? nsent : 1, sizeof *L->sent_at);
    if (out_of_memory || !L->ids.keys || !L->ids.vals || !L->f->reqs || !L->pend || !L->sent_at) {
        for (unsigned t = 0; t < n; t++) free(P[t].kept);
        free(P);
        return NULL;
    }
    return P;
}

/* The records about the run as a whole, and every request's start, in log order (the run's
 * records from the index, when one phase is read, then its requests' starts); frees P. */
void run_records_take(struct loader *L, struct prepass *P)
{
    const struct eventlog_reader *lr = L->lr;
    for (size_t k = 0; L->run && k < L->nrun; k++)
        take_run_record(L, &lr->records[L->run[k]], L->run[k]);
    for (unsigned t = 0; t < L->nthreads; t++) {
        for (size_t k = 0; k < P[t].nkept; k++)
            take_run_record(L, &P[t].kept[k].rec, P[t].kept[k].at);
        free(P[t].kept);
    }
    free(P);
}
