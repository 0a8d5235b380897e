#include "chunk_metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void out_of_memory(void)
{
    fprintf(stderr, "strobe: out of memory while counting the per-token figures: analyse the run "
                    "on a machine with more memory\n");
    exit(1);
}

/* Counts a value; memory running out here leaves no figure to give. NAN, an interval between
 * a damaged log's stamps too far apart to know (stamps_apart), is left out. */
static void count_value(struct value_counts *c, double v, uint64_t times)
{
    if (isnan(v)) return;
    if (value_counts_add(c, v, times)) out_of_memory();
}

/* Counts stamps_apart(from, to, 1e6), the milliseconds between two stamps, as its whole
 * nanoseconds (value_counts_add_ticks: the same value, mostly without hashing). */
static void count_ms_between(struct value_counts *c, int64_t from, int64_t to, uint64_t times)
{
    int64_t ns;
    if (__builtin_sub_overflow(to, from, &ns)) return; /* stamps_apart's NAN: left out */
    if (value_counts_add_ticks(c, ns, 1e6, times)) out_of_memory();
}

static void classify(struct chunk_metrics *m, const struct value_counts *k,
                     const struct value_counts *interval)
{
    size_t count[65] = {0};
    struct value_counts_cursor cur;
    value_counts_cursor_start(&cur, k);
    double v;
    uint64_t times;
    while (value_counts_next(&cur, &v, &times)) count[v < 64 ? (size_t)v : 64] += times;
    size_t mode = 1;
    for (size_t i = 2; i < 64; i++)
        if (count[i] > count[mode]) mode = i;
    double mode_share = k->n ? (double)count[mode] / (double)k->n : 0;
    double cv_interval = value_counts_cv(interval), cv_k = value_counts_cv(k);
    if (m->rule == COUNT_NONE) {
        m->flush_kind = "unknown";
        snprintf(m->flush_pattern, sizeof m->flush_pattern,
                 "unknown: no per-chunk token counts (give --tokenizer, or a server that sends "
                 "per-chunk usage)");
    } else if (!k->n) {
        m->flush_kind = "unknown";
        snprintf(m->flush_pattern, sizeof m->flush_pattern, "unknown: no chunks");
    } else if (m->share_k[0] >= 0.95) {
        m->flush_kind = "per-token";
        snprintf(m->flush_pattern, sizeof m->flush_pattern,
                 "per-token: %.1f %% of chunks carry one token", 100 * m->share_k[0]);
    } else if (mode > 1 && mode_share >= 0.9) {
        m->flush_kind = "fixed";
        snprintf(m->flush_pattern, sizeof m->flush_pattern,
                 "fixed batches of %zu tokens (%.1f %% of chunks)", mode, 100 * mode_share);
    } else if (cv_interval < 0.3 && cv_k < 0.3) {
        m->flush_kind = "time-based";
        snprintf(m->flush_pattern, sizeof m->flush_pattern,
                 "time-based: a chunk every %.3f ms (median) carrying %.2f tokens on average "
                 "(interval CV %.2f, tokens CV %.2f)",
                 m->chunk_interval_ms.p50, m->tokens_per_chunk.mean, cv_interval, cv_k);
    } else {
        m->flush_kind = "variable";
        snprintf(m->flush_pattern, sizeof m->flush_pattern,
                 "variable: %.2f tokens per chunk on average (CV %.2f), %.1f %% of chunks carry "
                 "one, a chunk every %.3f ms (median): speculative decoding or multi-token "
                 "prediction",
                 m->tokens_per_chunk.mean, cv_k, 100 * m->share_k[0], m->chunk_interval_ms.p50);
    }
}

/* The population: successful requests of the phase whose first token is inside its window. */
static int counted_request(const struct req_facts *r, const struct phase_info *ph)
{
    return r->phase == ph->index && !r->failed && r->t_first_token &&
           r->t_first_token >= ph->t_window_start && r->t_first_token < ph->t_window_end;
}

/* A chunk's tokens: its count, 1 when unknown. */
static double chunk_tokens(const struct tok_store *ts, size_t e)
{
    double k = tok_k(ts, e);
    return isnan(k) ? 1 : k;
}

/* The ITL per token of the population, by one rule: "zero" (spread == 0) or "spread". Returns
 * whether a chunk carried other than one token (when none did, both rules count the same). */
int chunk_metrics_itl(const struct run_facts *f, const struct phase_info *ph, int spread,
                      struct summary *out)
{
    struct value_counts v = {0};
    int multi = 0;
    for (size_t i = 0; i < f->nreqs; i++) {
        const struct req_facts *r = &f->reqs[i];
        if (!counted_request(r, ph)) continue;
        int64_t prev = 0, t = r->t_first_token;
        const struct tok_store *ts = req_tokens(f, r);
        for (size_t e = r->tok_first; e < r->tok_first + r->tok_count; e++) {
            t = tok_time(ts, e, t);
            double kt = chunk_tokens(ts, e);
            if (kt <= 0) continue; /* merged into the next chunk, as below */
            if (kt == 1) {
                /* zeros == 0 and d / 1 == d: both rules count d alone */
                if (prev) count_ms_between(&v, prev, t, 1);
                prev = t;
                continue;
            }
            multi = 1;
            size_t zeros = (size_t)kt - 1;
            if (prev) {
                double d = stamps_apart(prev, t, 1e6);
                if (spread)
                    count_value(&v, d / kt, (size_t)kt);
                else
                    count_ms_between(&v, prev, t, 1);
            } else if (spread) {
                count_value(&v, 0, zeros);
            }
            if (!spread) count_value(&v, 0, zeros);
            prev = t;
        }
    }
    value_counts_sort(&v);
    value_counts_summarise(&v, out);
    value_counts_free(&v);
    return multi;
}

void chunk_pass_run(const struct run_facts *f, const struct phase_info *ph, size_t from, size_t to,
                    struct chunk_pass *p)
{
    memset(p, 0, sizeof *p);
    struct chunk_metrics *m = &p->m;
    for (size_t i = from; i < to; i++) {
        const struct req_facts *r = &f->reqs[i];
        if (!counted_request(r, ph)) continue;
        m->requests++;
        m->by_rule[r->count_rule]++;
        if (r->t_first_reasoning)
            dvec_push_known(&p->ttft_r, stamps_apart(r->t_sched, r->t_first_reasoning, 1e9));
        if (r->t_first_answer)
            dvec_push_known(&p->ttft_a, stamps_apart(r->t_sched, r->t_first_answer, 1e9));
        if (r->usage_seen && r->tokenizer_tokens >= 0) {
            m->usage_compared++;
            m->tokenizer_total += (double)r->tokenizer_tokens;
            m->usage_total += (double)r->completion_tokens;
            if (fabs((double)(r->tokenizer_tokens - r->completion_tokens)) >
                0.05 * (double)r->completion_tokens)
                m->usage_differ_5pct++;
        }
        int64_t prev = 0, t = r->t_first_token;
        const struct tok_store *ts = req_tokens(f, r);
        for (size_t e = r->tok_first; e < r->tok_first + r->tok_count; e++) {
            t = tok_time(ts, e, t);
            double kt = chunk_tokens(ts, e);
            uint32_t flags = ts->ev[e].bytes_flags;
            m->emu_compared += !!(flags & TOK_EMU_COMPARED);
            m->emu_differ += !!(flags & TOK_EMU_DIFFERS);
            /* a chunk that carried no token (whitespace a server flushed alone) merges its
             * time into the next one */
            if (kt <= 0) continue;
            count_value(&p->k, kt, 1);
            m->chunks++;
            m->share_k[kt < 2 ? 0 : kt >= 5 ? 4 : (size_t)kt - 1]++; /* (0, 2): one */
            p->exactly_one += kt == 1;
            if (prev) count_ms_between(&p->interval, prev, t, 1);
            prev = t;
        }
    }
}

/* Appends src's values to d (d's first, so that passes over ranges taken in order give the
 * order one pass gives). */
static void dvec_append(struct dvec *d, const struct dvec *src)
{
    dvec_reserve(d, d->n + src->n);
    if (d->cap < d->n + src->n) out_of_memory();
    if (src->n) memcpy(d->v + d->n, src->v, src->n * sizeof *src->v);
    d->n += src->n;
}

void chunk_pass_add(struct chunk_pass *into, struct chunk_pass *p)
{
    struct chunk_metrics *m = &into->m;
    const struct chunk_metrics *o = &p->m;
    m->requests += o->requests;
    for (int r = 0; r < 3; r++) m->by_rule[r] += o->by_rule[r];
    m->chunks += o->chunks;
    /* counts below 2^53: exact in any order */
    for (int i = 0; i < 5; i++) m->share_k[i] += o->share_k[i];
    m->usage_compared += o->usage_compared;
    m->usage_differ_5pct += o->usage_differ_5pct;
    m->tokenizer_total += o->tokenizer_total;
    m->usage_total += o->usage_total;
    m->emu_compared += o->emu_compared;
    m->emu_differ += o->emu_differ;
    into->exactly_one += p->exactly_one;
    if (value_counts_merge(&into->k, &p->k) || value_counts_merge(&into->interval, &p->interval))
        out_of_memory();
    dvec_append(&into->ttft_r, &p->ttft_r);
    dvec_append(&into->ttft_a, &p->ttft_a);
    dvec_free(&p->ttft_r);
    dvec_free(&p->ttft_a);
}

void chunk_metrics_finish(const struct run_facts *f, const struct phase_info *ph,
                          struct chunk_pass *p, struct chunk_metrics *m)
{
    *m = p->m;
    size_t most = 0;
    for (int r = 0; r < 3; r++)
        if (m->by_rule[r] > most) most = m->by_rule[r], m->rule = (enum count_rule)r;
    /* every chunk carried one token (always so without per-chunk counts): each token's gap is
     * its chunk's interval under both ITL rules, the same values in the same order */
    int one_token_each = p->exactly_one == m->chunks;
    for (int i = 0; i < 5; i++) m->share_k[i] = m->chunks ? m->share_k[i] / (double)m->chunks : 0;
    value_counts_sort(&p->interval);
    value_counts_sort(&p->k);
    value_counts_summarise(&p->interval, &m->chunk_interval_ms);
    value_counts_summarise(&p->k, &m->tokens_per_chunk);
    classify(m, &p->k, &p->interval);
    value_counts_free(&p->k);
    value_counts_free(&p->interval);
    if (one_token_each)
        m->itl_zero_ms = m->itl_spread_ms = m->chunk_interval_ms;
    else if (chunk_metrics_itl(f, ph, 0, &m->itl_zero_ms))
        chunk_metrics_itl(f, ph, 1, &m->itl_spread_ms);
    else
        m->itl_spread_ms = m->itl_zero_ms;
    summarise(p->ttft_r.v, p->ttft_r.n, &m->ttft_reasoning_s);
    summarise(p->ttft_a.v, p->ttft_a.n, &m->ttft_answer_s);
    dvec_free(&p->ttft_r);
    dvec_free(&p->ttft_a);
}

void chunk_metrics_compute(const struct run_facts *f, const struct phase_info *ph,
                           struct chunk_metrics *m)
{
    struct chunk_pass p;
    chunk_pass_run(f, ph, 0, f->nreqs, &p);
    chunk_metrics_finish(f, ph, &p, m);
}
