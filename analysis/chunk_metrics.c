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

/* Counts a value; memory running out here leaves no figure to give. */
static void count_value(struct value_counts *c, double v, uint64_t times)
{
    if (value_counts_add(c, v, times)) out_of_memory();
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
                if (prev) count_value(&v, (double)(t - prev) / 1e6, 1);
                prev = t;
                continue;
            }
            multi = 1;
            size_t zeros = (size_t)kt - 1;
            if (prev) {
                double d = (double)(t - prev) / 1e6;
                if (spread)
                    count_value(&v, d / kt, (size_t)kt);
                else
                    count_value(&v, d, 1);
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

void chunk_metrics_compute(const struct run_facts *f, const struct phase_info *ph,
                           struct chunk_metrics *m)
{
    memset(m, 0, sizeof *m);
    struct value_counts k = {0}, interval = {0};
    struct dvec ttft_r = {0}, ttft_a = {0};
    size_t exactly_one = 0; /* chunks of one token, not "1 to 2" as share_k[0] */
    for (size_t i = 0; i < f->nreqs; i++) {
        const struct req_facts *r = &f->reqs[i];
        if (!counted_request(r, ph)) continue;
        m->requests++;
        m->by_rule[r->count_rule]++;
        if (r->t_first_reasoning)
            dvec_push(&ttft_r, (double)(r->t_first_reasoning - r->t_sched) / 1e9);
        if (r->t_first_answer) dvec_push(&ttft_a, (double)(r->t_first_answer - r->t_sched) / 1e9);
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
            count_value(&k, kt, 1);
            m->chunks++;
            m->share_k[kt < 2 ? 0 : kt >= 5 ? 4 : (size_t)kt - 1]++; /* (0, 2): one */
            exactly_one += kt == 1;
            if (prev) count_value(&interval, (double)(t - prev) / 1e6, 1);
            prev = t;
        }
    }
    size_t most = 0;
    for (int r = 0; r < 3; r++)
        if (m->by_rule[r] > most) most = m->by_rule[r], m->rule = (enum count_rule)r;
    /* every chunk carried one token (always so without per-chunk counts): each token's gap is
     * its chunk's interval under both ITL rules, the same values in the same order */
    int one_token_each = exactly_one == m->chunks;
    for (int i = 0; i < 5; i++) m->share_k[i] = m->chunks ? m->share_k[i] / (double)m->chunks : 0;
    value_counts_sort(&interval);
    value_counts_sort(&k);
    value_counts_summarise(&interval, &m->chunk_interval_ms);
    value_counts_summarise(&k, &m->tokens_per_chunk);
    classify(m, &k, &interval);
    value_counts_free(&k);
    value_counts_free(&interval);
    if (one_token_each)
        m->itl_zero_ms = m->itl_spread_ms = m->chunk_interval_ms;
    else if (chunk_metrics_itl(f, ph, 0, &m->itl_zero_ms))
        chunk_metrics_itl(f, ph, 1, &m->itl_spread_ms);
    else
        m->itl_spread_ms = m->itl_zero_ms;
    summarise(ttft_r.v, ttft_r.n, &m->ttft_reasoning_s);
    summarise(ttft_a.v, ttft_a.n, &m->ttft_answer_s);
    dvec_free(&ttft_r);
    dvec_free(&ttft_a);
}
