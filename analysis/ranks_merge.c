#include "ranks_merge.h"

#include "slt_metrics.h"
#include "value_counts.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rank k's offset measurements in time order, and the header's when rank 0 logged none. */
struct offset_series {
    const struct rec_clock_offset **at;
    size_t n;
    int64_t fallback;
};

/* Rank k's clock minus rank 0's at t (rank k's clock): linear between the measurements around
 * t, the nearer one outside them. */
static int64_t offset_at(const struct offset_series *s, int64_t t)
{
    if (!s->n) return s->fallback;
    if (t - s->at[0]->offset_ns <= s->at[0]->t_ref) return s->at[0]->offset_ns;
    for (size_t i = 1; i < s->n; i++) {
        const struct rec_clock_offset *a = s->at[i - 1], *b = s->at[i];
        int64_t t0 = t - b->offset_ns; /* on rank 0's clock, near enough to place it */
        if (t0 > b->t_ref) continue;
        if (b->t_ref == a->t_ref) return b->offset_ns;
        double w = (double)(t0 - a->t_ref) / (double)(b->t_ref - a->t_ref);
        return a->offset_ns + (int64_t)llround(w * (double)(b->offset_ns - a->offset_ns));
    }
    return s->at[s->n - 1]->offset_ns;
}

static void map_stamp(const struct offset_series *s, int64_t *t)
{
    if (*t > 0) *t -= offset_at(s, *t);
}

/* Every stamp of rank k's facts onto rank 0's timeline. A request's token events are stored
 * as gaps from its first token (facts.h), so the whole request moves by the offset at its
 * first token: the offset drifts by far less than a stamp's uncertainty over one request.
 * Events kept in full (a gap too wide for the store) move by the same. */
static void map_facts(const struct offset_series *s, struct run_facts *rf)
{
    for (size_t i = 0; i < rf->nreqs; i++) {
        struct req_facts *r = &rf->reqs[i];
        if (r->tok_count) {
            struct tok_store *ts = &rf->tok[r->tok_store];
            int64_t off = offset_at(s, r->t_first_token);
            for (size_t k = r->tok_first; k < r->tok_first + r->tok_count; k++)
                if (ts->ev[k].dt == TOK_DT_WIDE)
                    ((struct tok_wide *)tok_wide_find(ts, k))->t -= off;
        }
        int64_t *stamps[] = {&r->t_sched,       &r->t_written,      &r->t_first_byte,
                             &r->t_first_token, &r->t_first_answer, &r->t_first_reasoning,
                             &r->t_last_token,  &r->t_done,         &r->t_prev_event};
        for (size_t k = 0; k < sizeof stamps / sizeof stamps[0]; k++) map_stamp(s, stamps[k]);
    }
    for (size_t i = 0; i < rf->ntraj; i++) map_stamp(s, &rf->traj_t[i]);
}

/* Adds every value of a sorted src, less `shift`, to c: 0, or -1 out of memory. */
static int add_shifted(struct value_counts *c, const struct value_counts *src, double shift)
{
    struct value_counts_cursor cur;
    double v;
    uint64_t times;
    value_counts_cursor_start(&cur, src);
    while (value_counts_next(&cur, &v, &times))
        if (value_counts_add(c, v - shift, times)) return -1;
    return 0;
}

/* Rank k's per-event figures of each phase joined to rank 0's. Its lag (receive stamp - the
 * emulator's send) moves by its offset in the phase: the emulator is taken to share rank 0's
 * clock; the kernel-to-user gap and the emulator's pacing are differences of one clock. 0, or
 * -1 out of memory. */
static int merge_figures(const struct offset_series *s, struct run_facts *f,
                         const struct run_facts *rf)
{
    for (size_t i = 0; f->phase_figures && i < f->nphases; i++)
        for (size_t j = 0; rf->phase_figures && j < rf->nphases; j++) {
            if (rf->phases[j].index != f->phases[i].index) continue;
            int64_t mid = rf->phases[j].t_window_start +
                          (rf->phases[j].t_window_end - rf->phases[j].t_window_start) / 2;
            double lag_shift_us = (double)offset_at(s, mid) / 1e3;
            for (int w = 0; w < EVENT_FIGURES; w++) {
                struct value_counts joined = {0};
                if (add_shifted(&joined, &f->phase_figures[i][w], 0) ||
                    add_shifted(&joined, &rf->phase_figures[j][w],
                                w == FIGURE_LAG ? lag_shift_us : 0)) {
                    value_counts_free(&joined);
                    return -1;
                }
                value_counts_sort(&joined);
                value_counts_free(&f->phase_figures[i][w]);
                f->phase_figures[i][w] = joined;
            }
        }
    return 0;
}

/* A rank's load in each of rank 0's phases: 0, or -1 out of memory (L as it was). */
static int take_load(struct rank_load *L, const struct run_facts *rf, const struct run_facts *f)
{
    size_t n = f->nphases ? f->nphases : 1;
    struct rank_load l = *L;
    l.sent = calloc(n, sizeof *l.sent);
    l.failed = calloc(n, sizeof *l.failed);
    l.output_tps = calloc(n, sizeof *l.output_tps);
    l.ttft_p50_s = calloc(n, sizeof *l.ttft_p50_s);
    l.start_s = calloc(n, sizeof *l.start_s);
    struct phase_metrics *m = malloc(sizeof *m);
    if (!l.sent || !l.failed || !l.output_tps || !l.ttft_p50_s || !l.start_s || !m) {
        free(l.sent);
        free(l.failed);
        free(l.output_tps);
        free(l.ttft_p50_s);
        free(l.start_s);
        free(m);
        return -1;
    }
    *L = l;
    for (size_t i = 0; i < f->nphases; i++) {
        slt_phase_metrics(rf, &f->phases[i], m);
        L->sent[i] = m->sent_all;
        L->failed[i] = m->failed_all;
        L->output_tps[i] = m->system_output_tps;
        L->ttft_p50_s[i] = m->ttft.n ? m->ttft.p50 : NAN;
        /* when this rank began the phase, on rank 0's timeline: a shifted clock left
         * uncorrected, or a rank that started late, shows here */
        int64_t first = INT64_MAX;
        for (size_t r = 0; r < rf->nreqs; r++)
            if (rf->reqs[r].phase == f->phases[i].index && rf->reqs[r].t_sched < first)
                first = rf->reqs[r].t_sched;
        L->start_s[i] = first == INT64_MAX ? NAN : stamps_apart(f->phases[i].t_start, first, 1e9);
    }
    free(m);
    return 0;
}

/* Moves rank k's requests and token events into f (rf keeps nothing to free but its own): 0,
 * or -1 out of memory (f and rf as they were, their arrays perhaps larger). */
static int append(struct run_facts *f, struct run_facts *rf)
{
    struct req_facts *reqs = calloc_lines(f->nreqs + rf->nreqs, sizeof *reqs);
    struct tok_store *tok = calloc_lines(f->ntok_stores + rf->ntok_stores, sizeof *tok);
    int64_t *traj_t = realloc(f->traj_t, (f->ntraj + rf->ntraj + 1) * sizeof *f->traj_t);
    if (traj_t) f->traj_t = traj_t;
    int *traj_phase = realloc(f->traj_phase, (f->ntraj + rf->ntraj + 1) * sizeof *f->traj_phase);
    if (traj_phase) f->traj_phase = traj_phase;
    if (!reqs || !tok || !traj_t || !traj_phase) {
        free(reqs);
        free(tok);
        return -1;
    }
    if (f->nreqs) memcpy(reqs, f->reqs, f->nreqs * sizeof *reqs);
    free(f->reqs);
    f->reqs = reqs;
    for (size_t i = 0; i < rf->nreqs; i++) {
        struct req_facts r = rf->reqs[i];
        r.tok_store += (uint32_t)f->ntok_stores;
        f->reqs[f->nreqs++] = r;
    }
    if (f->ntok_stores) memcpy(tok, f->tok, f->ntok_stores * sizeof *tok);
    free(f->tok);
    f->tok = tok;
    if (rf->ntok_stores) memcpy(f->tok + f->ntok_stores, rf->tok, rf->ntok_stores * sizeof *f->tok);
    f->ntok_stores += rf->ntok_stores;
    f->ntok += rf->ntok;
    rf->ntok_stores = 0;
    if (rf->ntraj) { /* memcpy from NULL is undefined even for 0 bytes */
        memcpy(f->traj_t + f->ntraj, rf->traj_t, rf->ntraj * sizeof *f->traj_t);
        memcpy(f->traj_phase + f->ntraj, rf->traj_phase, rf->ntraj * sizeof *f->traj_phase);
    }
    f->ntraj += rf->ntraj;
    f->chunks_scanned += rf->chunks_scanned;
    f->chunks_parsed += rf->chunks_parsed;
    for (size_t i = 0; i < sizeof f->ts_source_events / sizeof f->ts_source_events[0]; i++)
        f->ts_source_events[i] += rf->ts_source_events[i];
    f->torn_bodies += rf->torn_bodies;
    f->damaged_bodies += rf->damaged_bodies;
    f->interrupted |= rf->interrupted;
    return 0;
}

static void name_rank(struct rank_load *L, int k, const cJSON *entry)
{
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(entry, "host");
    L->rank = k;
    snprintf(L->host, sizeof L->host, "%s", cJSON_IsString(host) ? host->valuestring : "?");
}

int ranks_merge(const char *dir, struct tokenizer *tok, const char *tokenizer_path,
                unsigned threads, int only_phase, struct run_facts *f, char *err, size_t errlen)
{
    cJSON *h = cJSON_Parse(f->header_json);
    const cJSON *table = cJSON_GetObjectItemCaseSensitive(h, "ranks");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(table, "ranks");
    const cJSON *own = cJSON_GetObjectItemCaseSensitive(h, "rank");
    int n = cJSON_GetArraySize(list);
    /* rank k's own folder is analysed alone (its stamps on its own clock) */
    if (n < 2 || (cJSON_IsNumber(own) && own->valueint != 0)) {
        cJSON_Delete(h);
        return 0;
    }
    int with_load = only_phase < 0;
    f->ranks = calloc((size_t)n, sizeof *f->ranks);
    struct offset_series s = {calloc(f->noffsets + 1, sizeof *s.at), 0, 0};
    if (!f->ranks || !s.at) {
        snprintf(err, errlen,
                 "out of memory merging the ranks of this MPI run: analyse it on a machine with "
                 "more memory");
        free(s.at);
        cJSON_Delete(h);
        return -1;
    }
    f->nranks = (size_t)n;
    name_rank(&f->ranks[0], 0, cJSON_GetArrayItem(list, 0));
    if (with_load && take_load(&f->ranks[0], f, f)) {
        snprintf(err, errlen,
                 "out of memory measuring rank 0's load (host %s) in this MPI run: analyse it on "
                 "a machine with more memory",
                 f->ranks[0].host);
        free(s.at);
        cJSON_Delete(h);
        return -1;
    }
    for (size_t i = 0; i < f->noffsets; i++)
        if (f->offsets[i].uncertainty_ns > f->offset_uncertainty_ns)
            f->offset_uncertainty_ns = f->offsets[i].uncertainty_ns;
    int rc = 0;
    for (int k = 1; k < n && !rc; k++) {
        const cJSON *entry = cJSON_GetArrayItem(list, k);
        const cJSON *sub = cJSON_GetObjectItemCaseSensitive(entry, "dir");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(entry, "offset_ns");
        const cJSON *unc = cJSON_GetObjectItemCaseSensitive(entry, "offset_uncertainty_ns");
        name_rank(&f->ranks[k], k, entry);
        s.n = 0;
        s.fallback = cJSON_IsNumber(off) ? (int64_t)off->valuedouble : 0;
        if (cJSON_IsNumber(unc) && (int64_t)unc->valuedouble > f->offset_uncertainty_ns)
            f->offset_uncertainty_ns = (int64_t)unc->valuedouble;
        for (size_t i = 0; i < f->noffsets; i++)
            if (f->offsets[i].rank == k) s.at[s.n++] = &f->offsets[i];
        char path[4200], lerr[512];
        snprintf(path, sizeof path, "%s/%s", dir,
                 cJSON_IsString(sub) ? sub->valuestring : "rank-?");
        struct run_facts rf;
        if (facts_load(path, tok, tokenizer_path, threads, only_phase, &rf, lerr, sizeof lerr)) {
            snprintf(err, errlen, "rank %d (host %s) of this MPI run: %.400s", k, f->ranks[k].host,
                     lerr);
            rc = -1;
            break;
        }
        map_facts(&s, &rf);
        if (merge_figures(&s, f, &rf) || (with_load && take_load(&f->ranks[k], &rf, f)) ||
            append(f, &rf)) {
            snprintf(err, errlen,
                     "out of memory merging rank %d (host %s) of this MPI run: analyse it on a "
                     "machine with more memory",
                     k, f->ranks[k].host);
            rc = -1;
        }
        facts_free(&rf);
    }
    free(s.at);
    cJSON_Delete(h);
    return rc;
}
