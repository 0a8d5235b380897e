#include "chunk_metrics.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static double cv(const double *v, size_t n)
{
    if (n < 2) return 0;
    double mean = 0, var = 0;
    for (size_t i = 0; i < n; i++) mean += v[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) var += (v[i] - mean) * (v[i] - mean);
    return mean > 0 ? sqrt(var / (double)(n - 1)) / mean : 0;
}

static void classify(struct chunk_metrics *m, const struct dvec *k, const struct dvec *interval)
{
    size_t count[65] = {0};
    for (size_t i = 0; i < k->n; i++) count[k->v[i] < 64 ? (size_t)k->v[i] : 64]++;
    size_t mode = 1;
    for (size_t i = 2; i < 64; i++)
        if (count[i] > count[mode]) mode = i;
    double mode_share = k->n ? (double)count[mode] / (double)k->n : 0;
    double cv_interval = cv(interval->v, interval->n), cv_k = cv(k->v, k->n);
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
    return isnan(ts->k[e]) ? 1 : ts->k[e];
}

/* The ITL per token of the population, by one rule: "zero" (spread == 0) or "spread". Built
 * one rule at a time, after the other figures are freed: these arrays hold a value per token. */
static void itl(const struct run_facts *f, const struct phase_info *ph, int spread,
                struct summary *out)
{
    struct dvec v = {0};
    dvec_reserve(&v, f->ntok);
    for (size_t i = 0; i < f->nreqs; i++) {
        const struct req_facts *r = &f->reqs[i];
        if (!counted_request(r, ph)) continue;
        int64_t prev = 0;
        const struct tok_store *ts = req_tokens(f, r);
        for (size_t e = r->tok_first; e < r->tok_first + r->tok_count; e++) {
            double kt = chunk_tokens(ts, e);
            if (kt <= 0) continue; /* merged into the next chunk, as below */
            size_t zeros = (size_t)kt - 1;
            if (prev) {
                double d = (double)(ts->t[e] - prev) / 1e6;
                if (spread)
                    for (size_t z = 0; z < (size_t)kt; z++) dvec_push(&v, d / kt);
                else
                    dvec_push(&v, d);
            } else if (spread) {
                for (size_t z = 0; z < zeros; z++) dvec_push(&v, 0);
            }
            if (!spread)
                for (size_t z = 0; z < zeros; z++) dvec_push(&v, 0);
            prev = ts->t[e];
        }
    }
    summarise(v.v, v.n, out);
    dvec_free(&v);
}

void chunk_metrics_compute(const struct run_facts *f, const struct phase_info *ph,
                           struct chunk_metrics *m)
{
    memset(m, 0, sizeof *m);
    struct dvec k = {0}, interval = {0}, ttft_r = {0}, ttft_a = {0};
    dvec_reserve(&k, f->ntok);
    dvec_reserve(&interval, f->ntok);
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
        int64_t prev = 0;
        const struct tok_store *ts = req_tokens(f, r);
        for (size_t e = r->tok_first; e < r->tok_first + r->tok_count; e++) {
            double kt = chunk_tokens(ts, e);
            if (!isnan(ts->k[e]) && ts->emu_k[e] >= 0) {
                m->emu_compared++;
                m->emu_differ += ts->k[e] != (double)ts->emu_k[e];
            }
            /* a chunk that carried no token (whitespace a server flushed alone) merges its
             * time into the next one */
            if (kt <= 0) continue;
            dvec_push(&k, kt);
            m->chunks++;
            m->share_k[kt >= 5 ? 4 : (size_t)kt - 1]++;
            if (prev) dvec_push(&interval, (double)(ts->t[e] - prev) / 1e6);
            prev = ts->t[e];
        }
    }
    size_t most = 0;
    for (int r = 0; r < 3; r++)
        if (m->by_rule[r] > most) most = m->by_rule[r], m->rule = (enum count_rule)r;
    for (int i = 0; i < 5; i++) m->share_k[i] = m->chunks ? m->share_k[i] / (double)m->chunks : 0;
    /* summarise sorts in place, which the CVs of classify do not mind */
    summarise(interval.v, interval.n, &m->chunk_interval_ms);
    summarise(k.v, k.n, &m->tokens_per_chunk);
    classify(m, &k, &interval);
    dvec_free(&k);
    dvec_free(&interval);
    itl(f, ph, 0, &m->itl_zero_ms);
    itl(f, ph, 1, &m->itl_spread_ms);
    summarise(ttft_r.v, ttft_r.n, &m->ttft_reasoning_s);
    summarise(ttft_a.v, ttft_a.n, &m->ttft_answer_s);
    dvec_free(&ttft_r);
    dvec_free(&ttft_a);
}
