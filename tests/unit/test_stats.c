/* Percentiles (type 7) and the SLT metric math on a synthetic event log whose answers are
 * known in closed form. */
#include "check.h"
#include "clock.h"
#include "eventlog.h"
#include "results.h"
#include "stats.h"
#include "value_counts.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NEAR(a, b) (fabs((double)(a) - (double)(b)) < 1e-9 * (1 + fabs((double)(b))))

static void percentiles(void)
{
    double v[] = {4, 1, 3, 2, 5};
    struct summary s;
    summarise(v, 5, &s);
    CHECK(NEAR(s.p50, 3) && NEAR(s.p25, 2) && NEAR(s.p75, 4) && NEAR(s.mean, 3),
          "1..5: p25/p50/p75/mean = 2/3/4/3, got %g/%g/%g/%g", s.p25, s.p50, s.p75, s.mean);
    CHECK(NEAR(s.p90, 4.6) && NEAR(s.p99, 4.96), "1..5: p90 4.6 p99 4.96 (numpy), got %g %g", s.p90,
          s.p99);
    double w[] = {10, 20};
    summarise(w, 2, &s);
    CHECK(NEAR(s.p25, 12.5), "two values: p25 interpolates to 12.5, got %g", s.p25);
    summarise(NULL, 0, &s);
    CHECK(s.n == 0 && s.p50 == 0, "empty distribution is all zero");
    double tp[] = {100, 200, 300, 301, 302};
    CHECK(slt_plateau_reached(tp, 5, 1.02, 2), "300, 301, 302: two phases under 1.02 x best");
    CHECK(!slt_plateau_reached(tp, 4, 1.02, 2), "one flat phase is not a plateau yet");
}

static void ev(struct eventlog *l, uint64_t id, int64_t t, const char *json)
{
    struct log_record r = {
        .type = REC_EVENT, .ts_source = TS_KERNEL, .req_id = id, .t = t, .t2 = t + 1000};
    eventlog_put(l, 0, &r, json, strlen(json));
}

/* Phase window [10 s, 20 s). Request A: sent at 9 s, first token at 10.5 s, 11 tokens one
 * per event until 11.5 s, usage 11. Request B: sent 12 s, 5 tokens at 12.2..12.6 s, no usage
 * (estimated). Request C: HTTP 500 at 13 s. Request D: sent at 25 s (after the window). */
static void synthetic(const char *dir)
{
    const int64_t S = 1000000000LL;
    struct eventlog *l;
    char err[256];
    l = eventlog_create(dir, "{\"kind\":\"slt\",\"config\":{\"phase_s\":10,\"ramp_s\":1}}", 1, err,
                        sizeof err);
    CHECK(l != NULL, "create log: %s", err);
    struct log_record ph = {
        .type = REC_PHASE, .a = 0, .b = 4, .t = 5 * S, .t2 = 10 * S, .c = 20 * S, .req_id = 30 * S};
    eventlog_put(l, 0, &ph, NULL, 0);
    struct log_record sent = {.type = REC_REQUEST_SENT, .req_id = 1, .t = 9 * S, .t2 = 9 * S + 10};
    eventlog_put(l, 0, &sent, NULL, 0);
    ev(l, 1, 10 * S, "{\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}");
    for (int i = 0; i < 11; i++)
        ev(l, 1, 10 * S + S / 2 + i * S / 10, "{\"choices\":[{\"delta\":{\"content\":\"abcd\"}}]}");
    ev(l, 1, 11 * S + S / 2,
       "{\"choices\":[],\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":11}}");
    ev(l, 1, 11 * S + S / 2, "[DONE]");
    struct log_record end = {
        .type = REC_REQUEST_END, .req_id = 1, .t = 12 * S, .t2 = 10 * S, .a = 200};
    eventlog_put(l, 0, &end, NULL, 0);
    sent.req_id = 2;
    sent.t = 12 * S;
    eventlog_put(l, 0, &sent, NULL, 0);
    for (int i = 0; i < 5; i++)
        ev(l, 2, 12 * S + S / 5 + i * S / 10,
           "{\"choices\":[{\"delta\":{\"reasoning_content\":\"wxyz\"}}]}");
    ev(l, 2, 12 * S + 7 * S / 10, "[DONE]");
    end.req_id = 2;
    end.t = 13 * S;
    end.t2 = 12 * S;
    eventlog_put(l, 0, &end, NULL, 0);
    sent.req_id = 3;
    sent.t = 13 * S;
    eventlog_put(l, 0, &sent, NULL, 0);
    end.req_id = 3;
    end.a = 500;
    const char *body = "{\"error\":{\"message\":\"overloaded\"}}";
    eventlog_put(l, 0, &end, body, strlen(body));
    sent.req_id = 4;
    sent.t = 25 * S;
    eventlog_put(l, 0, &sent, NULL, 0);
    end.req_id = 4;
    end.a = 200;
    end.b = ERR_RESET;
    eventlog_put(l, 0, &end, "gone", 4);
    struct log_record mark = {.type = REC_MARK, .a = MARK_RUN_END};
    eventlog_put(l, 0, &mark, NULL, 0);
    CHECK(eventlog_close(l) == 0, "log closes cleanly");

    struct run_results res;
    CHECK(results_compute(dir, "none", &res, err, sizeof err) == 0, "compute: %s", err);
    CHECK(res.nphases == 1, "one phase, got %zu", res.nphases);
    const struct phase_metrics *m = &res.phases[0];
    CHECK(m->sent == 2 && m->succeeded == 1 && m->failed == 1,
          "window: B and C sent, B ok, C failed; got %zu/%zu/%zu", m->sent, m->succeeded,
          m->failed);
    CHECK(m->sent_all == 4 && m->failed_all == 2, "whole phase: 4 sent, 2 failed; got %zu/%zu",
          m->sent_all, m->failed_all);
    CHECK(NEAR(m->response_rate, 0.5), "response rate 1 of 2, got %g", m->response_rate);
    /* tokens in window: A's 11 + B's 5 (estimated 20 bytes / 4 = 5) = 16 over 10 s */
    CHECK(NEAR(m->system_output_tps, 1.6), "throughput 16 tokens / 10 s, got %g",
          m->system_output_tps);
    CHECK(m->speed.n == 2, "speed samples from A and B, got %zu", m->speed.n);
    /* A: (11-1)/1.0 s = 10; B: (5-1)/0.4 s = 10 */
    CHECK(NEAR(m->speed.p50, 10), "speed p50 10 tokens/s, got %g", m->speed.p50);
    /* TTFT A: 10.5 - 9 = 1.5 s (the role-only event at 10 s does not count); B: 0.2 s */
    CHECK(NEAR(m->ttft.max, 1.5) && NEAR(m->ttft.min, 0.2), "TTFT 0.2 and 1.5 s, got %g %g",
          m->ttft.min, m->ttft.max);
    CHECK(m->estimated_outputs == 1, "B's output is flagged estimated");
    CHECK(m->nreasons == 1 && !strcmp(m->reasons[0].cls, "http-500") &&
              strstr(m->reasons[0].example, "overloaded"),
          "C's failure: http-500 with its message");
    results_free(&res);
}

/* Token events more than 2.1 s apart (their stamps do not fit the token store's 32-bit
 * deltas and take its wide list): one request, tokens at 2 s, 5 s and 5.1 s, no usage. */
static void wide_gaps(const char *dir)
{
    const int64_t S = 1000000000LL;
    char err[256];
    struct eventlog *l = eventlog_create(
        dir, "{\"kind\":\"slt\",\"config\":{\"phase_s\":50,\"ramp_s\":1}}", 1, err, sizeof err);
    CHECK(l != NULL, "create log: %s", err);
    struct log_record ph = {
        .type = REC_PHASE, .a = 0, .b = 1, .t = 0, .t2 = S / 2, .c = 50 * S, .req_id = 60 * S};
    eventlog_put(l, 0, &ph, NULL, 0);
    struct log_record sent = {.type = REC_REQUEST_SENT, .req_id = 1, .t = S, .t2 = S + 10};
    eventlog_put(l, 0, &sent, NULL, 0);
    ev(l, 1, 2 * S, "{\"choices\":[{\"delta\":{\"content\":\"abcd\"}}]}");
    ev(l, 1, 5 * S, "{\"choices\":[{\"delta\":{\"content\":\"abcd\"}}]}");
    ev(l, 1, 5 * S + S / 10, "{\"choices\":[{\"delta\":{\"content\":\"abcd\"}}]}");
    ev(l, 1, 5 * S + S / 5, "[DONE]");
    struct log_record end = {
        .type = REC_REQUEST_END, .req_id = 1, .t = 6 * S, .t2 = 2 * S, .a = 200};
    eventlog_put(l, 0, &end, NULL, 0);
    CHECK(eventlog_close(l) == 0, "log closes cleanly");
    struct run_results res;
    CHECK(results_compute(dir, "none", &res, err, sizeof err) == 0, "compute: %s", err);
    const struct phase_metrics *m = &res.phases[0];
    CHECK(m->chunks.chunk_interval_ms.n == 2 && NEAR(m->chunks.chunk_interval_ms.max, 3000) &&
              NEAR(m->chunks.chunk_interval_ms.min, 100),
          "chunk intervals 3000 and 100 ms, got %zu: %g..%g", m->chunks.chunk_interval_ms.n,
          m->chunks.chunk_interval_ms.min, m->chunks.chunk_interval_ms.max);
    /* 12 bytes / 4 = 3 tokens, all three events inside the window [0.5 s, 50 s) */
    CHECK(NEAR(m->output_tokens_in_window, 3), "3 tokens in the window, got %g",
          m->output_tokens_in_window);
    results_free(&res);
}

/* A log of one phase, window [window_start, 50 s), for the requests a test puts in it. */
static struct eventlog *one_phase_log(const char *dir, const char *header, int64_t window_start)
{
    const int64_t S = 1000000000LL;
    char err[256];
    struct eventlog *l = eventlog_create(dir, header, 1, err, sizeof err);
    CHECK(l != NULL, "create log: %s", err);
    struct log_record ph = {.type = REC_PHASE,
                            .a = 0,
                            .b = 2,
                            .t = 0,
                            .t2 = window_start,
                            .c = 50 * S,
                            .req_id = 60 * S};
    eventlog_put(l, 0, &ph, NULL, 0);
    return l;
}

/* One request sent at `sent`: `first` (an event, or NULL) at 1.5 s, three content events 100 ms
 * apart from 2 s, `last` (or NULL), [DONE], and its end at 3 s with HTTP 200; with `error`, no
 * event and that transport error instead. */
static void request(struct eventlog *l, uint64_t id, int64_t sent, const char *first,
                    const char *last, int error)
{
    const int64_t S = 1000000000LL;
    struct log_record r = {.type = REC_REQUEST_SENT, .req_id = id, .t = sent, .t2 = sent + 10};
    eventlog_put(l, 0, &r, NULL, 0);
    if (!error) {
        if (first) ev(l, id, S + S / 2, first);
        for (int i = 0; i < 3; i++)
            ev(l, id, 2 * S + i * S / 10, "{\"choices\":[{\"delta\":{\"content\":\"abcd\"}}]}");
        if (last) ev(l, id, 2 * S + S / 2, last);
        ev(l, id, 2 * S + S / 2, "[DONE]");
    }
    struct log_record end = {.type = REC_REQUEST_END,
                             .req_id = id,
                             .t = 3 * S,
                             .t2 = error ? 0 : 2 * S,
                             .a = error ? 0 : 200,
                             .b = error};
    eventlog_put(l, 0, &end, NULL, 0);
}

static int run_end(struct eventlog *l)
{
    struct log_record mark = {.type = REC_MARK, .a = MARK_RUN_END};
    eventlog_put(l, 0, &mark, NULL, 0);
    return eventlog_close(l);
}

/* 1 when one of res's validity notes holds `what` */
static int has_note(const struct run_results *res, const char *what)
{
    for (size_t i = 0; i < res->validity.nnotes; i++)
        if (strstr(res->validity.notes[i], what)) return 1;
    return 0;
}

/* A final usage no stream can have (negative, past INT32_MAX, fewer tokens than the first
 * token event is counted as) fails its request with a reason; vLLM's completion_tokens 0 on an
 * early chunk before the real count does not. Never a negative speed or throughput. */
static void impossible_usage(const char *dir)
{
    const int64_t S = 1000000000LL;
    char err[256];
    struct eventlog *l = one_phase_log(dir, "{\"kind\":\"slt\",\"config\":{}}", S / 2);
    const char *usage[] = {"\"prompt_tokens\":9,\"completion_tokens\":-5",
                           "\"prompt_tokens\":9,\"completion_tokens\":4611686018427387904",
                           "\"prompt_tokens\":9,\"completion_tokens\":2147483648",
                           "\"prompt_tokens\":9,\"completion_tokens\":0",
                           "\"prompt_tokens\":-9,\"completion_tokens\":3"};
    char last[160];
    for (int i = 0; i < 5; i++) {
        snprintf(last, sizeof last, "{\"choices\":[],\"usage\":{%s}}", usage[i]);
        request(l, (uint64_t)i + 1, S, NULL, last, 0);
    }
    request(l, 6, S,
            "{\"choices\":[{\"delta\":{\"role\":\"assistant\"}}],\"usage\":{\"prompt_tokens\":9,"
            "\"completion_tokens\":0}}",
            "{\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3}}", 0);
    CHECK(run_end(l) == 0, "log closes cleanly");
    struct run_results res;
    CHECK(results_compute(dir, "none", &res, err, sizeof err) == 0, "compute: %s", err);
    const struct phase_metrics *m = &res.phases[0];
    CHECK(
        m->sent == 6 && m->failed == 5 && m->succeeded == 1,
        "impossible usage: 5 of 6 requests failed, the vLLM-shaped one ok; got %zu of %zu (%zu ok)",
        m->failed, m->sent, m->succeeded);
    CHECK(m->nreasons == 1 && !strcmp(m->reasons[0].cls, "bad-usage") && m->reasons[0].count == 5 &&
              strstr(m->reasons[0].example, "usage.completion_tokens"),
          "their class is bad-usage, their reason names the count; got %s (%zu): %s",
          m->nreasons ? m->reasons[0].cls : "none", m->nreasons ? m->reasons[0].count : 0,
          m->nreasons ? m->reasons[0].example : "");
    /* the vLLM-shaped one: (3 - 1) tokens / 0.2 s */
    CHECK(m->speed.n == 1 && NEAR(m->speed.p50, 10) && m->system_output_tps >= 0,
          "only the good request has a speed (10 tokens/s), throughput not negative; got %zu "
          "speeds, p50 %g, %g tokens/s",
          m->speed.n, m->speed.p50, m->system_output_tps);
    CHECK(!res.validity.valid, "a run with impossible usage is not valid");
    for (size_t i = 0; i < res.facts.nreqs; i++) {
        const struct req_facts *r = &res.facts.reqs[i];
        if (r->req_id == 4)
            CHECK(r->failed && strstr(r->reason, "is 0 although 3 events carried visible output"),
                  "usage 0 with visible output: the reason says why; got %s", r->reason);
        if (r->req_id == 3)
            CHECK(r->failed && strstr(r->reason, "2147483648"),
                  "2^31 output tokens: the reason gives the count; got %s", r->reason);
        if (r->req_id == 6)
            CHECK(!r->failed && r->completion_tokens == 3, "vLLM's early 0: the final 3 counts");
    }
    results_free(&res);
}

/* A server that counts fewer tokens in all than a local tokenizer counts in the first chunk
 * ("Hello, world": 3 in o200k; the server says 2, for that chunk and request()'s three
 * more): a difference of tokenizers, so the request
 * succeeds with the same verdict as without the tokenizer, and is left out of the speed
 * instead of giving a negative one. */
static void tokenizer_disagrees(const char *dir, const char *o200k)
{
    const int64_t S = 1000000000LL;
    char err[256];
    struct eventlog *l = one_phase_log(dir, "{\"kind\":\"slt\",\"config\":{}}", S / 2);
    request(l, 1, S, "{\"choices\":[{\"delta\":{\"content\":\"Hello, world\"}}]}",
            "{\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2}}", 0);
    CHECK(run_end(l) == 0, "log closes cleanly");
    const char *toks[2] = {"none", o200k};
    for (int k = 0; k < 2; k++) {
        struct run_results res;
        CHECK(results_compute(dir, toks[k], &res, err, sizeof err) == 0, "compute: %s", err);
        const struct phase_metrics *m = &res.phases[0];
        CHECK(m->sent == 1 && m->failed == 0 && (k == 0 ? m->speed.n == 1 : m->speed.n == 0),
              "tokenizer %s: the request succeeds (%zu failed), %s a speed (%zu)", toks[k],
              m->failed, k ? "without" : "with", m->speed.n);
        results_free(&res);
    }
}

/* A phase whose requests all failed outside its window (sent in the ramp, never answered): the
 * verdict names their class, and the failure lines list them (the whole phase's). */
static void failures_outside_window(const char *dir)
{
    const int64_t S = 1000000000LL;
    char err[256];
    struct eventlog *l = one_phase_log(dir, "{\"kind\":\"slt\",\"config\":{}}", 10 * S);
    request(l, 1, S, NULL, NULL, ERR_IDLE_TIMEOUT);
    request(l, 2, S, NULL, NULL, ERR_IDLE_TIMEOUT);
    CHECK(run_end(l) == 0, "log closes cleanly");
    struct run_results res;
    CHECK(results_compute(dir, "none", &res, err, sizeof err) == 0, "compute: %s", err);
    const struct phase_metrics *m = &res.phases[0];
    CHECK(m->sent == 0 && m->failed_all == 2 && m->nreasons_all == 1 &&
              m->reasons_all[0].count == 2 && !strcmp(m->reasons_all[0].cls, "idle-timeout"),
          "two failures in the ramp, none in the window: the whole phase's list has them; got "
          "%zu sent, %zu failed, %zu classes",
          m->sent, m->failed_all, m->nreasons_all);
    CHECK(!res.validity.valid && strstr(res.validity.why, "all 2 of its requests failed") &&
              strstr(res.validity.why, "idle-timeout"),
          "the verdict names the class; got %s", res.validity.why);
    char *table = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&table, &len);
    results_print_table(out, &res);
    fclose(out);
    CHECK(table && strstr(table, "failures, whole phase (ramp and drain too): 2 idle-timeout"),
          "the table has the failure line the verdict points at; got\n%s", table ? table : "");
    free(table);
    results_free(&res);
}

/* A damaged log whose stamps lie too far apart for int64 (the extremes, a sign flipped): the
 * analysis gives figures for the sane pairs and leaves the others out, without signed overflow
 * (the ASan+UBSan suite halts on one). */
static void damaged_stamps(const char *dir)
{
    const int64_t S = 1000000000LL;
    char err[256];
    struct eventlog *l =
        eventlog_create(dir, "{\"kind\":\"slt\",\"config\":{}}", 1, err, sizeof err);
    CHECK(l != NULL, "create log: %s", err);
    struct log_record ph = {
        .type = REC_PHASE, .a = 0, .b = 2, .t = 0, .t2 = S / 2, .c = 50 * S, .req_id = 60 * S};
    eventlog_put(l, 0, &ph, NULL, 0);
    /* phase 1's window spans every int64 */
    struct log_record ph1 = {.type = REC_PHASE,
                             .a = 1,
                             .b = 2,
                             .t = INT64_MIN,
                             .t2 = INT64_MIN,
                             .c = INT64_MAX,
                             .req_id = INT64_MAX};
    eventlog_put(l, 0, &ph1, NULL, 0);
    const char *tok = "{\"choices\":[{\"delta\":{\"content\":\"abcd\"}}]}";
    /* 1: sent at INT64_MIN + 1, written at 1 s (ttft, ttfb, e2e, e2e speed) */
    struct log_record sent = {.type = REC_REQUEST_SENT, .req_id = 1, .t = INT64_MIN + 1, .t2 = S};
    eventlog_put(l, 0, &sent, NULL, 0);
    /* 2: written at INT64_MIN (the dispatch lag) */
    sent = (struct log_record){.type = REC_REQUEST_SENT, .req_id = 2, .t = S, .t2 = INT64_MIN};
    eventlog_put(l, 0, &sent, NULL, 0);
    /* 3: per-chunk usage (so ITL is counted), a 2-token event at INT64_MIN between sane ones,
     * one read at INT64_MIN (intervals, ITL, the kernel-to-user gap) */
    sent = (struct log_record){.type = REC_REQUEST_SENT, .req_id = 3, .t = S, .t2 = S};
    eventlog_put(l, 0, &sent, NULL, 0);
    for (uint64_t id = 1; id <= 3; id++) {
        if (id < 3) {
            ev(l, id, 2 * S, tok);
            ev(l, id, 2 * S + S / 5, tok);
        } else {
            const char *cum = "{\"choices\":[{\"delta\":{\"content\":\"abcd\"}}],\"usage\":{"
                              "\"completion_tokens\":%d}}";
            char body[160];
            int64_t t[] = {2 * S, INT64_MIN, 2 * S + S / 10, 2 * S + S / 5};
            int tokens[] = {1, 3, 4, 5};
            for (int i = 0; i < 4; i++) {
                snprintf(body, sizeof body, cum, tokens[i]);
                struct log_record r = {.type = REC_EVENT,
                                       .ts_source = TS_KERNEL,
                                       .req_id = id,
                                       .t = t[i],
                                       .t2 = i == 2 ? INT64_MIN : t[i]};
                eventlog_put(l, 0, &r, body, strlen(body));
            }
        }
        ev(l, id, 2 * S + S / 5, "[DONE]");
        struct log_record end = {
            .type = REC_REQUEST_END, .req_id = id, .t = 3 * S, .t2 = 2 * S, .a = 200};
        eventlog_put(l, 0, &end, NULL, 0);
    }
    /* 4, in phase 1: its first token at -2^62 - 1 s, its last at 2^62 + 1 s (its speed) */
    sent = (struct log_record){
        .type = REC_REQUEST_SENT, .req_id = 4, .a = 1, .t = INT64_MIN + 1, .t2 = INT64_MIN + 1};
    eventlog_put(l, 0, &sent, NULL, 0);
    ev(l, 4, -(INT64_C(1) << 62) - S, tok);
    ev(l, 4, (INT64_C(1) << 62) + S, tok);
    ev(l, 4, (INT64_C(1) << 62) + S, "[DONE]");
    struct log_record end = {
        .type = REC_REQUEST_END, .req_id = 4, .t = INT64_MAX, .t2 = INT64_MIN, .a = 200};
    eventlog_put(l, 0, &end, NULL, 0);
    CHECK(run_end(l) == 0, "log closes cleanly");
    struct run_results res;
    CHECK(results_compute(dir, "none", &res, err, sizeof err) == 0, "compute: %s", err);
    for (size_t k = 0; k < res.nphases; k++) {
        const struct phase_metrics *m = &res.phases[k];
        CHECK(m->sent_all == m->succeeded_all + m->failed_all, "phase %zu: sent = ok + failed", k);
        const struct summary *s[] = {&m->ttft,
                                     &m->ttfb,
                                     &m->e2e,
                                     &m->speed,
                                     &m->e2e_speed,
                                     &m->dispatch_lag_s,
                                     &m->chunks.chunk_interval_ms,
                                     &m->chunks.itl_zero_ms,
                                     &m->kernel_to_user_us};
        for (size_t i = 0; i < sizeof s / sizeof *s; i++)
            CHECK(!s[i]->n || (isfinite(s[i]->min) && isfinite(s[i]->max)),
                  "phase %zu, figure %zu: only known values, got %g..%g", k, i, s[i]->min,
                  s[i]->max);
    }
    const struct phase_metrics *m = &res.phases[0];
    CHECK(m->ttft.n == 2 && m->e2e.n == 2,
          "phase 0: request 1's TTFT and E2E from a stamp 2^63 away are left out; got %zu, %zu",
          m->ttft.n, m->e2e.n);
    CHECK(m->dispatch_lag_s.n == 1, "phase 0: request 2's dispatch lag is left out; got %zu",
          m->dispatch_lag_s.n);
    results_free(&res);
}

/* An FPGA tap whose tap_clock.csv is missing: the results' notes say why its drift and
 * uncertainty are unknown (not only stderr); with the file there, no note. */
static void tap_clock_missing(const char *dir)
{
    const int64_t S = 1000000000LL;
    char err[256], path[512];
    struct eventlog *l = one_phase_log(
        dir,
        "{\"kind\":\"slt\",\"config\":{\"url\":\"http://127.0.0.1:8000\",\"resolved_address\":"
        "\"127.0.0.1\"}}",
        S / 2);
    request(l, 1, S, NULL, NULL, 0);
    CHECK(run_end(l) == 0, "log closes cleanly");
    snprintf(path, sizeof path, "%s/tap_records.bin", dir);
    FILE *f = fopen(path, "w"); /* a tap that saw no record: the join still opens */
    CHECK(f && fclose(f) == 0, "write %s", path);
    struct run_results res;
    CHECK(results_compute(dir, "none", &res, err, sizeof err) == 0, "compute: %s", err);
    CHECK(res.facts.tap_present && isnan(res.facts.tap_uncertainty_ns) &&
              strstr(res.facts.tap_clock_note, "tap_clock.csv") &&
              has_note(&res, "tap_clock.csv") && has_note(&res, "unknown"),
          "tap_clock.csv missing: the uncertainty is unknown and a validity note says why; note "
          "'%s'",
          res.facts.tap_clock_note);
    results_free(&res);
    snprintf(path, sizeof path, "%s/tap_clock.csv", dir);
    f = fopen(path, "w");
    CHECK(f && fprintf(f, "1000,1000\n2000000000,2000000000\n") > 0 && fclose(f) == 0, "write %s",
          path);
    CHECK(results_compute(dir, "none", &res, err, sizeof err) == 0, "compute: %s", err);
    CHECK(!res.facts.tap_clock_note[0] && !has_note(&res, "tap_clock.csv"),
          "tap_clock.csv there: no note; got '%s'", res.facts.tap_clock_note);
    results_free(&res);
}

static int cmp_ref(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* summarise sorts large arrays by radix: it must give qsort's array and figures exactly */
static void radix_equals_qsort(void)
{
    size_t n = 100000;
    double *v = malloc(n * sizeof *v), *ref = malloc(n * sizeof *ref);
    srand(7);
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < n; i++) {
            int r = rand();
            v[i] = round == 0   ? (double)(r % 1000) / 7.0 - 50 /* repeats, negatives */
                   : round == 1 ? (double)r * 1e-9 * (r % 2 ? 1 : -1e12)
                                : (r % 100 == 0   ? INFINITY
                                   : r % 101 == 0 ? -INFINITY
                                                  : r % 3);
        }
        memcpy(ref, v, n * sizeof *v);
        qsort(ref, n, sizeof *ref, cmp_ref);
        double sum = 0;
        for (size_t i = 0; i < n; i++) sum += ref[i];
        struct summary s;
        summarise(v, n, &s);
        CHECK(!memcmp(v, ref, n * sizeof *v), "round %d: the radix-sorted array is qsort's", round);
        CHECK(s.mean == sum / (double)n || (isnan(s.mean) && isnan(sum)),
              "round %d: mean %.17g, expected %.17g", round, s.mean, sum / (double)n);
        CHECK(s.p99 == percentile_sorted(ref, n, 0.99), "round %d: p99 %.17g", round, s.p99);
    }
    free(v);
    free(ref);
}

/* The count-per-distinct-value summary is summarise()'s to the bit: few and many distinct
 * values, negatives, zeros of both signs, ∞, one value, none. */
static void counts_equal_summarise(void)
{
    size_t sizes[] = {0, 1, 2, 7, 1000, 50000};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int spread = 0; spread < 3; spread++) {
            size_t n = sizes[s];
            double *v = malloc((n + 1) * sizeof *v);
            struct value_counts c = {0};
            srand((unsigned)(n * 3 + (size_t)spread));
            for (size_t i = 0; i < n; i++) {
                int r = rand();
                v[i] = spread == 0   ? (double)(r % 5)
                       : spread == 1 ? (double)(r % 2000001 - 1000000) / 1e6 / 3
                                     : (r % 97 == 0   ? INFINITY
                                        : r % 89 == 0 ? -0.0
                                                      : r / 7.0);
                CHECK(!value_counts_add(&c, v[i], 1), "value_counts_add");
            }
            value_counts_sort(&c);
            struct summary a, b;
            summarise(v, n, &a);
            value_counts_summarise(&c, &b);
            double fields_a[] = {a.mean, a.min, a.max, a.p25, a.p50, a.p75, a.p90, a.p95, a.p99};
            double fields_b[] = {b.mean, b.min, b.max, b.p25, b.p50, b.p75, b.p90, b.p95, b.p99};
            for (int f = 0; f < 9; f++)
                CHECK(fields_a[f] == fields_b[f] || (isnan(fields_a[f]) && isnan(fields_b[f])),
                      "counts: %zu values (spread %d), field %d: %.17g, summarise %.17g", n, spread,
                      f, fields_b[f], fields_a[f]);
            value_counts_free(&c);
            free(v);
        }
}

int main(int argc, char **argv)
{
    counts_equal_summarise();
    radix_equals_qsort();
    percentiles();
    char dir[] = "/tmp/strobe-test-stats-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    synthetic(dir);
    char cmd0[256];
    snprintf(cmd0, sizeof cmd0, "rm -rf %s/*", dir);
    CHECK(system(cmd0) == 0, "the folder is emptied");
    wide_gaps(dir);
    void (*logs[])(const char *) = {impossible_usage, failures_outside_window, damaged_stamps,
                                    tap_clock_missing};
    for (size_t i = 0; i < sizeof logs / sizeof *logs; i++) {
        CHECK(system(cmd0) == 0, "the folder is emptied");
        logs[i](dir);
    }
    char o200k[4096];
    snprintf(o200k, sizeof o200k, "%s/o200k_base.tiktoken", argc > 1 ? argv[1] : "tokenizers");
    if (access(o200k, R_OK) == 0) {
        CHECK(system(cmd0) == 0, "the folder is emptied");
        tokenizer_disagrees(dir, o200k);
    } else {
        CHECK(0, "%s is missing: run scripts/fetch_tokenizers.sh", o200k);
    }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) printf("could not remove %s\n", dir);
    return check_done("test_stats");
}
