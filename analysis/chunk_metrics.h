/* Per-token truth of a phase (issue 7): how many tokens each streamed chunk carried, the
 * inter-token latency per token, and the server's flush pattern. Population: successful
 * requests whose first token arrived inside the window (as for output speed). Rules:
 *  - a chunk of k tokens arriving d after the previous token chunk gives, per token,
 *    "zero" ITL: one gap d and k-1 gaps of 0 (tokens that arrived together);
 *    "spread" ITL: k gaps of d/k (as if the server had sent them evenly);
 *    the first chunk's k tokens give k-1 zero gaps under both; both sum to the same time;
 *  - chunk interval: d itself, what a chunk-counting client calls ITL;
 *  - flush pattern: per-token when >= 95 % of chunks carry one token; fixed batches of k
 *    when >= 90 % carry the same k > 1; time-based (a buffer flushed on a timer) when
 *    neither intervals nor tokens per chunk vary much (both CV < 0.3); otherwise variable
 *    (speculative decoding, multi-token prediction: a steady step, a varying count);
 *  - without per-chunk counts (no tokenizer, no per-chunk usage) each chunk counts as one
 *    token, and the pattern is "unknown". */
#ifndef STROBE_CHUNK_METRICS_H
#define STROBE_CHUNK_METRICS_H
#include "facts.h"
#include "stats.h"
#include "value_counts.h"

struct chunk_metrics {
    size_t requests, by_rule[3]; /* indexed by enum count_rule */
    enum count_rule rule;        /* the rule most requests used */
    size_t chunks;
    struct summary tokens_per_chunk, chunk_interval_ms, itl_zero_ms, itl_spread_ms;
    struct summary ttft_reasoning_s, ttft_answer_s;
    double share_k[5]; /* chunks carrying 1, 2, 3, 4, 5 or more tokens */
    char flush_pattern[200];
    const char *flush_kind; /* "per-token", "fixed", "time-based", "variable", "unknown" */
    /* tokenizer against the server's usage totals, requests that have both */
    size_t usage_compared, usage_differ_5pct;
    double tokenizer_total, usage_total;
    /* counts against the emulator's own (x_emu_tokens), chunks that have both */
    size_t emu_compared, emu_differ;
};

void chunk_metrics_compute(const struct run_facts *f, const struct phase_info *ph,
                           struct chunk_metrics *m);

/* chunk_metrics_compute in parts, so that threads can share a phase: passes over ranges of
 * the requests, added together in the ranges' order, then finished; the same figures, to the
 * bit, as chunk_metrics_compute. */
struct chunk_pass {
    struct chunk_metrics m; /* its counts; share_k as counts until finished */
    struct value_counts k, interval;
    struct dvec ttft_r, ttft_a;
    size_t exactly_one; /* chunks of one token, not "1 to 2" as share_k[0] */
};
/* The pass over requests [from, to) into a p it zeroes first. */
void chunk_pass_run(const struct run_facts *f, const struct phase_info *ph, size_t from, size_t to,
                    struct chunk_pass *p);
/* Adds p (the pass over the range after into's) into `into`, and frees p. */
void chunk_pass_add(struct chunk_pass *into, struct chunk_pass *p);
/* The figures of the passes over every request, added into p; frees p. */
void chunk_metrics_finish(const struct run_facts *f, const struct phase_info *ph,
                          struct chunk_pass *p, struct chunk_metrics *m);
/* The ITL per token by one rule ("zero": spread 0, "spread": 1), always by a pass over the
 * tokens (chunk_metrics_compute skips it when every chunk carried one token: the chunk
 * interval is then both); 1 when a chunk carried other than one token. */
int chunk_metrics_itl(const struct run_facts *f, const struct phase_info *ph, int spread,
                      struct summary *out);

#endif
