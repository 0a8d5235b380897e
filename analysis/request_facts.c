/* One request's facts from its own records (request_facts.h). */
#include "request_facts.h"
#include "clock.h"
#include "server_timings.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void pend_push(struct pending *p, const struct event_fact *e)
{
    if (p->out_of_memory) return; /* the request's facts are lost already */
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 32;
        struct event_fact *grown = realloc(p->e, cap * sizeof *grown);
        if (!grown) {
            p->out_of_memory = 1;
            return;
        }
        p->e = grown;
        p->cap = cap;
    }
    p->e[p->n++] = *e;
    /* the request's next event comes after other requests' (dozens of streams interleave in
     * the log): its slot's line is asked for now, so that store does not wait for memory */
    if (p->n < p->cap) __builtin_prefetch(&p->e[p->n], 1);
}

/* Gives an empty request a spare buffer, when there is one. */
void pending_take(struct pend_pool *pool, struct pending *p)
{
    if (!p->cap && pool->n) {
        int lost = p->out_of_memory; /* an event this request could not keep stays lost */
        *p = pool->spare[--pool->n];
        p->n = 0;
        p->out_of_memory = lost;
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
        pool->spare[pool->n++] = (struct pending){.e = p->e, .cap = p->cap};
    else
        free(p->e);
    memset(p, 0, sizeof *p);
}

void pending_pool_free(struct pend_pool *pool)
{
    for (size_t i = 0; i < pool->n; i++) free(pool->spare[i].e);
    free(pool->spare);
    memset(pool, 0, sizeof *pool);
}

/* The first failure of a request wins: its class and its reason, one line. */
void request_set_failed(struct req_facts *r, enum fail_class cls, const char *fmt, ...)
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
void request_take_event(struct req_facts *r, struct pending *p, const struct rec_event *ev,
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
        request_set_failed(r, FAIL_MALFORMED_CHUNK, "malformed chunk JSON at event %ld",
                           (long)ev->index);
        return;
    }
    if (cf.has_error)
        request_set_failed(r, FAIL_ERROR_EVENT, "error event in stream: %s", cf.error_message);
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
    int64_t lag = INT64_MIN, pace = INT64_MIN, gap = INT64_MIN;
    if (cf.has_sent_ns) {
        if (__builtin_sub_overflow(ev->t_stamp, cf.sent_ns, &lag)) lag = INT64_MIN;
        if (cf.has_sched_ns) pace = cf.sent_ns - cf.sched_ns; /* both within 2^62 */
    }
    /* a damaged log's stamps too far apart for int64 give no gap, as other sources give none */
    if (ev->ts_source == TS_KERNEL && __builtin_sub_overflow(ev->t_read, ev->t_stamp, &gap))
        gap = INT64_MIN;
    struct event_fact e = {
        .t = ev->t_stamp,
        .lag = lag,
        .gap = gap,
        .pace = pace,
        .bytes = (double)cf.visible_bytes,
        .tokenized = tokenized,
        /* in doubles: a damaged stream's counts (each within 2^62) may differ by more than int64 */
        .server = usage_here ? (double)r->completion_tokens - (double)cumulative_before : NAN,
        .emu = cf.has_emu_tokens && cf.emu_tokens >= 0 && cf.emu_tokens <= INT32_MAX
                   ? (int32_t)cf.emu_tokens
                   : -1,
    };
    if (!usage_here) r->usage_per_chunk = 0;
    pend_push(p, &e);
}

void request_reason_from_body(struct req_facts *r, const char *body, size_t len)
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

int tok_store_grow(struct tok_store *ts, size_t need)
{
    if (ts->len + need <= ts->cap) return 0;
    size_t cap = ts->cap;
    while (ts->len + need > cap) cap = cap ? cap * 2 : 4096;
    struct tok_event *ev = big_realloc(ts->ev, cap * sizeof *ev);
    if (!ev) return -1;
    ts->ev = ev;
    ts->cap = cap;
    return 0;
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
 * token's), all its values in the wide list when one does not fit: 0, or -1 when the wide
 * list cannot grow. */
static int store_put(struct tok_store *ts, int64_t t, int64_t prev, double k, double bytes,
                     uint32_t flags)
{
    size_t at = ts->len++;
    struct tok_event *ev = &ts->ev[at];
    int64_t dt;
    int dt_fits = !__builtin_sub_overflow(t, prev, &dt) && dt > INT32_MIN && dt <= INT32_MAX;
    int k_fits =
        isnan(k) || (k > (double)TOK_K_WIDE && k <= (double)INT16_MAX && k == (double)(int16_t)k);
    int bytes_fit =
        bytes >= 0 && bytes < (double)TOK_BYTES_WIDE && bytes == (double)(uint16_t)bytes;
    ev->dt = dt_fits ? (int32_t)dt : TOK_DT_WIDE;
    ev->k = isnan(k) ? TOK_K_UNKNOWN : k_fits ? (int16_t)k : TOK_K_WIDE;
    ev->bytes_flags = (uint16_t)((bytes_fit ? (uint32_t)bytes : TOK_BYTES_WIDE) | flags);
    if (dt_fits && k_fits && bytes_fit) return 0;
    if (ts->nwide == ts->wide_cap) {
        size_t cap = ts->wide_cap ? ts->wide_cap * 2 : 64;
        struct tok_wide *wide = realloc(ts->wide, cap * sizeof *wide);
        if (!wide) return -1;
        ts->wide = wide;
        ts->wide_cap = cap;
    }
    ts->wide[ts->nwide++] = (struct tok_wide){.at = at, .t = t, .k = k, .bytes = bytes};
    return 0;
}

/* An event's tokens by a counting rule, NAN when the rule has none. */
static double counted_by(enum count_rule rule, const struct event_fact *e)
{
    return rule == COUNT_SERVER ? e->server : rule == COUNT_TOKENIZER ? e->tokenized : NAN;
}

/* The events ahead whose figures' counts are asked for while one event's are counted. */
#define FIGURES_AHEAD 8

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
        if (i + FIGURES_AHEAD < p->n) {
            const struct event_fact *ahead = &p->e[i + FIGURES_AHEAD];
            value_counts_prefetch_ticks(lag, ahead->lag);
            value_counts_prefetch_ticks(gap, ahead->gap);
            value_counts_prefetch_ticks(pace, ahead->pace);
        }
        if (e->t < ws || e->t >= we) continue;
        /* microseconds, from nanoseconds */
        if (e->lag != INT64_MIN) failed |= value_counts_add_ticks(lag, e->lag, 1e3, 1);
        if (e->gap != INT64_MIN) failed |= value_counts_add_ticks(gap, e->gap, 1e3, 1);
        if (e->pace != INT64_MIN) failed |= value_counts_add_ticks(pace, e->pace, 1e3, 1);
    }
    if (failed) sink->out_of_memory = 1;
}

/* Fails a request whose final usage no stream can have: a count below zero or over INT32_MAX
 * (no request generates 2^31 tokens), no output token for visible output, or, counted by the
 * server's own per-chunk usage, fewer output tokens than its first token event, which would
 * make its speed negative. Its figures would be false, so it counts as
 * a failure, the server's to explain. Only the final count is judged: vLLM sends
 * completion_tokens 0 on early chunks before the real count. */
static void check_usage(struct req_facts *r)
{
    if (!r->usage_seen) return;
    if (r->completion_tokens < 0 || r->completion_tokens > INT32_MAX)
        request_set_failed(r, FAIL_BAD_USAGE,
                           "usage.completion_tokens is %lld, not 0 to 2^31-1: the server's usage "
                           "cannot be right; check how it counts tokens",
                           (long long)r->completion_tokens);
    else if (r->prompt_tokens < 0 || r->prompt_tokens > INT32_MAX)
        request_set_failed(r, FAIL_BAD_USAGE,
                           "usage.prompt_tokens is %lld, not 0 to 2^31-1: the server's usage "
                           "cannot be right; check how it counts tokens",
                           (long long)r->prompt_tokens);
    else if (r->n_token_events && r->completion_tokens == 0)
        request_set_failed(r, FAIL_BAD_USAGE,
                           "usage.completion_tokens is 0 although %u events carried visible "
                           "output (count rule %s): check how the server counts tokens",
                           r->n_token_events, count_rule_name(r->count_rule));
    else if (r->n_token_events && r->count_rule == COUNT_SERVER &&
             (double)r->completion_tokens < r->first_chunk_tokens)
        request_set_failed(r, FAIL_BAD_USAGE,
                           "usage.completion_tokens is %lld, fewer than its first token "
                           "event's %g by the server's own per-chunk counts: its speed would be "
                           "negative; check how the server counts tokens",
                           (long long)r->completion_tokens, r->first_chunk_tokens);
    /* a local tokenizer counting the first chunk above the server's total is a difference
     * of tokenizers (reported as such, not a failure: methodology.md's token counting):
     * req_output_speed leaves such a request out of the speed */
}

/* Closes a request: its counting rule, token totals, failure verdict, and its token events
 * into its thread's token store. */
void request_finish(struct tok_sink *sink, struct req_facts *r, struct pending *p,
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
    check_usage(r);
    if (!r->failed && r->t_done && !r->transport_error && r->status >= 200 && r->status <= 299 &&
        !r->saw_done)
        request_set_failed(r, FAIL_NO_DONE, "stream ended without [DONE]");
    r->tok_store = sink->index;
    r->tok_first = ts->len;
    r->tok_count = p->n;
    if (p->out_of_memory || tok_store_grow(ts, p->n)) {
        /* the analysis then fails, saying so (facts_load) */
        sink->out_of_memory = 1;
        r->tok_count = 0;
        pend_give(&sink->pool, p);
        return;
    }
    /* shares of the request's total: by counted tokens when known, else by bytes */
    r->share_by_count = counts && counted > 0;
    r->share_weight_sum = r->share_by_count ? counted : bytes;
    r->share_total = (double)r->completion_tokens;
    int lost = 0;
    for (size_t i = 0; i < p->n; i++) {
        const struct event_fact *e = &p->e[i];
        double k = counted_by(r->count_rule, e);
        uint32_t flags = 0;
        if (!isnan(k) && e->emu >= 0)
            flags = TOK_EMU_COMPARED | (k != (double)e->emu ? TOK_EMU_DIFFERS : 0);
        lost |= store_put(ts, e->t, i ? p->e[i - 1].t : r->t_first_token, k, e->bytes, flags);
    }
    if (lost) sink->out_of_memory = 1;
    count_figures(sink, r, p);
    pend_give(&sink->pool, p);
}

double req_output_speed(const struct req_facts *r)
{
    if (r->n_token_events < 2 || r->t_last_token <= r->t_first_token) return NAN;
    double after_first = (double)r->completion_tokens - r->first_chunk_tokens;
    if (after_first < 0) return NAN; /* tokenizers that disagree (check_usage) */
    return after_first / stamps_apart(r->t_first_token, r->t_last_token, 1e9);
}

const char *count_rule_name(enum count_rule r)
{
    return r == COUNT_SERVER      ? "server-usage-per-chunk"
           : r == COUNT_TOKENIZER ? "tokenizer"
                                  : "none";
}
