#include "results.h"
#include "json_out.h"

#include "cost.h"
#include "json_num.h"
#include "ranks_merge.h"
#include "ranks_results.h"
#include "must_alloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The tokenizer for per-chunk counts, as results_compute's contract says. */
static int open_tokenizer(const char *dir, const char *spec, struct run_results *res, char *err,
                          size_t errlen)
{
    char path[1024] = "", sha[65] = "", header_path[4096], lerr[512];
    if (spec && !strcmp(spec, "none")) {
        snprintf(res->tokenizer_note, sizeof res->tokenizer_note, "none (--tokenizer none)");
        return 0;
    }
    if (spec) {
        snprintf(path, sizeof path, "%s", spec);
    } else {
        struct eventlog_reader *lr = eventlog_open(dir, err, errlen);
        if (!lr) return -1;
        cJSON *h = cJSON_Parse(lr->header_json);
        eventlog_reader_close(lr);
        const cJSON *tk = cJSON_GetObjectItemCaseSensitive(h, "tokenizer");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(tk, "path");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(tk, "sha256");
        const cJSON *chosen = cJSON_GetObjectItemCaseSensitive(tk, "chosen");
        if (cJSON_IsString(p)) snprintf(path, sizeof path, "%s", p->valuestring);
        if (cJSON_IsString(sh)) snprintf(sha, sizeof sha, "%s", sh->valuestring);
        if (!path[0])
            snprintf(res->tokenizer_note, sizeof res->tokenizer_note, "%s",
                     cJSON_IsString(chosen) ? chosen->valuestring
                                            : "none: the run named no tokenizer");
        cJSON_Delete(h);
        if (!path[0]) return 0;
    }
    snprintf(header_path, sizeof header_path, "%s", path);
    snprintf(res->tokenizer_path, sizeof res->tokenizer_path, "%s", path);
    res->tokenizer = tokenizer_load(path, lerr, sizeof lerr);
    if (!res->tokenizer) {
        if (spec) {
            snprintf(err, errlen, "--tokenizer: %s", lerr);
            return -1;
        }
        snprintf(res->tokenizer_note, sizeof res->tokenizer_note,
                 "none: the run's tokenizer cannot be loaded now (%.250s); give --tokenizer FILE",
                 lerr);
        return 0;
    }
    if (sha[0] && strcmp(sha, tokenizer_sha256(res->tokenizer))) {
        snprintf(res->tokenizer_note, sizeof res->tokenizer_note,
                 "none: %.300s changed since the run (sha256 differs); give --tokenizer FILE to "
                 "use it anyway",
                 header_path);
        tokenizer_free(res->tokenizer);
        res->tokenizer = NULL;
        return 0;
    }
    snprintf(res->tokenizer_note, sizeof res->tokenizer_note, "%s (%.300s)",
             tokenizer_name(res->tokenizer), header_path);
    return 0;
}

/* The tokenizer and the facts (of one phase, or all when only_phase < 0) into a zeroed res. */
static int load(const char *dir, const char *tokenizer, unsigned threads, int only_phase,
                struct run_results *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    if (open_tokenizer(dir, tokenizer, res, err, errlen) ||
        facts_load(dir, res->tokenizer, res->tokenizer_path, threads, only_phase, &res->facts, err,
                   errlen)) {
        tokenizer_free(res->tokenizer);
        return -1;
    }
    /* an MPI run: every rank's requests, on rank 0's timeline */
    if (ranks_merge(dir, res->tokenizer, res->tokenizer_path, threads, only_phase, &res->facts, err,
                    errlen)) {
        facts_free(&res->facts);
        tokenizer_free(res->tokenizer);
        return -1;
    }
    return 0;
}

int results_compute(const char *dir, const char *tokenizer, struct run_results *res, char *err,
                    size_t errlen)
{
    return results_compute_threads(dir, tokenizer, 0, res, err, errlen);
}

int results_compute_threads(const char *dir, const char *tokenizer, unsigned threads,
                            struct run_results *res, char *err, size_t errlen)
{
    if (load(dir, tokenizer, threads, -1, res, err, errlen)) return -1;
    res->nphases = res->facts.nphases;
    res->phases = must_calloc(res->nphases, sizeof *res->phases, "the phases' results");
    slt_phases_metrics(&res->facts, res->phases, threads ? threads : facts_default_threads());
    cJSON *h = cJSON_Parse(res->facts.header_json);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(h, "kind");
    res->is_agents = cJSON_IsString(kind) && !strcmp(kind->valuestring, "agents");
    res->open_loop = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(h, "config"),
                                                      "arrival") != NULL;
    /* power: which sources are accelerator-only, and the sampling period for the gap rule */
    const cJSON *pw = cJSON_GetObjectItemCaseSensitive(h, "power");
    const cJSON *srcs = cJSON_GetObjectItemCaseSensitive(pw, "sources");
    const cJSON *rate = cJSON_GetObjectItemCaseSensitive(pw, "rate_hz");
    double period = cJSON_IsNumber(rate) && rate->valuedouble > 0 ? 1 / rate->valuedouble : 0.1;
    res->npower_sources = cJSON_GetArraySize(srcs);
    int *accel = must_calloc((size_t)res->npower_sources + 1, sizeof *accel, "the power sources");
    for (int i = 0; i < res->npower_sources; i++)
        accel[i] = cJSON_IsTrue(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(srcs, i), "accelerator_only"));
    cJSON_Delete(h);
    res->power = must_calloc(res->nphases + 1, sizeof *res->power, "the phases' energy");
    for (size_t i = 0; i < res->nphases; i++) {
        const struct phase_info *ph = &res->facts.phases[i];
        energy_phase(&res->facts, ph->t_window_start, ph->t_window_end, period, accel,
                     res->npower_sources, res->phases[i].output_tokens_in_window, &res->power[i]);
    }
    free(accel);
    if (res->is_agents &&
        agent_results_compute(&res->facts, res->power, &res->agents, err, errlen)) {
        results_free(res);
        return -1;
    }
    validity_decide(res, &res->validity);
    return 0;
}

/* The facts of one phase's requests alone, and that phase's record; NULL with err set (and
 * nothing to free) when the log cannot be read or has no such phase. */
static const struct phase_info *load_phase(const char *dir, const char *tokenizer, int phase,
                                           struct run_results *res, char *err, size_t errlen)
{
    if (load(dir, tokenizer, 0, phase, res, err, errlen)) return NULL;
    for (size_t i = 0; i < res->facts.nphases; i++)
        if (res->facts.phases[i].index == phase) return &res->facts.phases[i];
    snprintf(err, errlen, "phase %d has no record in %s's event log", phase, dir);
    facts_free(&res->facts);
    tokenizer_free(res->tokenizer);
    return NULL;
}

int results_compute_phase(const char *dir, const char *tokenizer, int phase,
                          struct phase_metrics *m, char *err, size_t errlen)
{
    struct run_results res;
    const struct phase_info *ph = load_phase(dir, tokenizer, phase, &res, err, errlen);
    if (!ph) return -1;
    slt_phase_metrics(&res.facts, ph, m);
    facts_free(&res.facts);
    tokenizer_free(res.tokenizer);
    return 0;
}

int results_compute_iteration(const char *dir, const char *tokenizer, int phase,
                              struct iteration_metrics *m, char *err, size_t errlen)
{
    struct run_results res;
    const struct phase_info *ph = load_phase(dir, tokenizer, phase, &res, err, errlen);
    if (!ph) return -1;
    agent_iteration_metrics(&res.facts, ph, m);
    facts_free(&res.facts);
    tokenizer_free(res.tokenizer);
    return 0;
}

void results_free(struct run_results *res)
{
    if (res->is_agents) agent_results_free(&res->agents);
    facts_free(&res->facts);
    tokenizer_free(res->tokenizer);
    free(res->phases);
    free(res->power);
    memset(res, 0, sizeof *res);
}

/* An empty distribution has no percentiles: null, not 0. */
static cJSON *summary_json(const struct summary *s, double scale)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", (double)s->n);
    static const char *const names[] = {"p25", "p50",  "p75", "p90", "p95",
                                        "p99", "mean", "min", "max"};
    const double v[] = {s->p25, s->p50, s->p75, s->p90, s->p95, s->p99, s->mean, s->min, s->max};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        if (s->n)
            cJSON_AddNumberToObject(o, names[i], v[i] * scale);
        else
            cJSON_AddNullToObject(o, names[i]);
    }
    return o;
}

/* A phase's energy: accelerator and whole-system totals, and every series behind them. */
static cJSON *power_json(const struct phase_power *p, const struct run_facts *f)
{
    cJSON *o = cJSON_CreateObject();
    if (p->has_accel) {
        cJSON_AddNumberToObject(o, "accelerator_mean_w", p->accel_w);
        cJSON_AddNumberToObject(o, "accelerator_j", p->accel_j);
        cJSON_AddBoolToObject(o, "accelerator_complete", p->accel_complete);
    }
    if (p->has_system) {
        cJSON_AddNumberToObject(o, "system_mean_w", p->system_w);
        cJSON_AddNumberToObject(o, "system_j", p->system_j);
        cJSON_AddBoolToObject(o, "system_complete", p->system_complete);
    }
    json_add_num_or_null(o, "joules_per_output_token", p->joules_per_output_token);
    cJSON_AddStringToObject(o, "joules_per_output_token_basis",
                            p->has_accel    ? "accelerator"
                            : p->has_system ? "whole system"
                                            : "none");
    cJSON *series = cJSON_AddArrayToObject(o, "series");
    for (size_t i = 0; i < p->nseries; i++) {
        const struct energy_window *w = &p->series[i];
        cJSON *s = cJSON_CreateObject();
        cJSON_AddNumberToObject(s, "source", w->source);
        cJSON_AddNumberToObject(s, "device", w->device);
        cJSON_AddBoolToObject(s, "accelerator_only", p->accel[i]);
        cJSON_AddStringToObject(s, "method", w->method ? w->method : "none");
        cJSON_AddNumberToObject(s, "mean_w", w->mean_w);
        cJSON_AddNumberToObject(s, "joules", w->joules);
        cJSON_AddNumberToObject(s, "samples", (double)w->samples);
        cJSON_AddNumberToObject(s, "largest_gap_s", w->largest_gap_s);
        cJSON_AddNumberToObject(s, "coverage", w->coverage);
        cJSON_AddBoolToObject(s, "complete", w->complete);
        cJSON_AddItemToArray(series, s);
    }
    (void)f;
    return o;
}

static cJSON *chunk_json(const struct chunk_metrics *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "count_rule", count_rule_name(c->rule));
    cJSON *by = cJSON_AddObjectToObject(o, "requests_by_count_rule");
    for (int r = 0; r < 3; r++)
        cJSON_AddNumberToObject(by, count_rule_name((enum count_rule)r), (double)c->by_rule[r]);
    cJSON_AddNumberToObject(o, "chunks", (double)c->chunks);
    cJSON_AddItemToObject(o, "tokens_per_chunk", summary_json(&c->tokens_per_chunk, 1));
    cJSON *share = cJSON_AddObjectToObject(o, "share_of_chunks_by_tokens");
    static const char *const k[5] = {"1", "2", "3", "4", "5_or_more"};
    for (int i = 0; i < 5; i++) cJSON_AddNumberToObject(share, k[i], c->share_k[i]);
    cJSON_AddStringToObject(o, "flush_kind", c->flush_kind ? c->flush_kind : "unknown");
    cJSON_AddStringToObject(o, "flush_pattern", c->flush_pattern);
    cJSON_AddItemToObject(o, "chunk_interval_ms", summary_json(&c->chunk_interval_ms, 1));
    cJSON_AddItemToObject(o, "itl_per_token_zero_ms", summary_json(&c->itl_zero_ms, 1));
    cJSON_AddItemToObject(o, "itl_per_token_spread_ms", summary_json(&c->itl_spread_ms, 1));
    cJSON_AddStringToObject(
        o, "itl_rules",
        "zero: a chunk of k tokens gives one real gap and k-1 gaps of 0; spread: k gaps of "
        "interval/k; the first chunk gives k-1 zeros under both");
    cJSON_AddItemToObject(o, "ttft_first_reasoning_token_s", summary_json(&c->ttft_reasoning_s, 1));
    cJSON_AddItemToObject(o, "ttft_first_answer_token_s", summary_json(&c->ttft_answer_s, 1));
    cJSON *rec = cJSON_AddObjectToObject(o, "tokenizer_vs_usage");
    cJSON_AddNumberToObject(rec, "requests_compared", (double)c->usage_compared);
    cJSON_AddNumberToObject(rec, "tokenizer_output_tokens", c->tokenizer_total);
    cJSON_AddNumberToObject(rec, "usage_output_tokens", c->usage_total);
    json_add_num_or_null(rec, "relative_difference",
                         c->usage_total > 0 ? (c->tokenizer_total - c->usage_total) / c->usage_total
                                            : NAN);
    cJSON_AddNumberToObject(rec, "requests_differing_over_5_percent", (double)c->usage_differ_5pct);
    if (c->emu_compared) {
        cJSON *emu = cJSON_AddObjectToObject(o, "against_emulator_truth");
        cJSON_AddNumberToObject(emu, "chunks_compared", (double)c->emu_compared);
        cJSON_AddNumberToObject(emu, "chunks_differing", (double)c->emu_differ);
    }
    return o;
}

/* An open-loop phase: the process, the rate asked and the rate sent, and how late requests
 * left against when they were due. */
static cJSON *arrival_json(const struct phase_metrics *m, const cJSON *arrival)
{
    cJSON *o = cJSON_CreateObject();
    const cJSON *process = cJSON_GetObjectItemCaseSensitive(arrival, "process");
    cJSON_AddStringToObject(o, "process", cJSON_IsString(process) ? process->valuestring : "");
    const cJSON *rate =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(arrival, "rates_per_s"), m->info.index);
    if (cJSON_IsNumber(rate))
        cJSON_AddNumberToObject(o, "rate_per_s", rate->valuedouble);
    else
        cJSON_AddNullToObject(o, "rate_per_s");
    cJSON_AddNumberToObject(o, "requests_due_in_window_per_s",
                            m->window_s > 0 ? (double)m->sent / m->window_s : 0);
    cJSON_AddItemToObject(o, "dispatch_lag_s", summary_json(&m->dispatch_lag_s, 1));
    cJSON_AddNumberToObject(o, "requests_held_by_max_in_flight", (double)m->held_by_cap);
    cJSON_AddNumberToObject(o, "requests_due_never_sent", (double)m->info.arrivals_unsent);
    return o;
}

/* Failures by class, each with its count and an example reason, as the array `name` of o. */
static void failures_json(cJSON *o, const char *name, const struct reason_count *reasons, size_t n)
{
    cJSON *fails = cJSON_AddArrayToObject(o, name);
    for (size_t i = 0; i < n; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "class", reasons[i].cls);
        cJSON_AddNumberToObject(r, "requests", (double)reasons[i].count);
        cJSON_AddStringToObject(r, "example", reasons[i].example);
        cJSON_AddItemToArray(fails, r);
    }
}

static cJSON *phase_json(const struct phase_metrics *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "phase", m->info.index);
    cJSON_AddNumberToObject(o, "concurrency", m->info.concurrency);
    cJSON_AddNumberToObject(o, "window_s", m->window_s);
    cJSON_AddNumberToObject(o, "window_start_ns", (double)m->info.t_window_start);
    cJSON_AddNumberToObject(o, "window_end_ns", (double)m->info.t_window_end);
    cJSON_AddNumberToObject(o, "requests_sent", (double)m->sent);
    cJSON_AddNumberToObject(o, "requests_succeeded", (double)m->succeeded);
    cJSON_AddNumberToObject(o, "requests_failed", (double)m->failed);
    cJSON_AddNumberToObject(o, "requests_sent_whole_phase", (double)m->sent_all);
    cJSON_AddNumberToObject(o, "requests_succeeded_whole_phase", (double)m->succeeded_all);
    cJSON_AddNumberToObject(o, "requests_failed_whole_phase", (double)m->failed_all);
    cJSON_AddNumberToObject(o, "requests_retried_on_new_connection", (double)m->retried);
    cJSON_AddNumberToObject(o, "requests_retried_on_new_connection_whole_phase",
                            (double)m->retried_all);
    cJSON_AddNumberToObject(o, "response_rate", m->response_rate);
    cJSON_AddNumberToObject(o, "output_tokens_in_window", m->output_tokens_in_window);
    cJSON_AddNumberToObject(o, "system_output_tokens_per_s", m->system_output_tps);
    cJSON_AddNumberToObject(o, "system_input_output_tokens_per_s", m->system_io_tps);
    cJSON_AddItemToObject(o, "output_speed_tokens_per_s", summary_json(&m->speed, 1));
    cJSON_AddItemToObject(o, "e2e_speed_tokens_per_s", summary_json(&m->e2e_speed, 1));
    cJSON_AddItemToObject(o, "ttft_s", summary_json(&m->ttft, 1));
    cJSON_AddItemToObject(o, "ttfb_s", summary_json(&m->ttfb, 1));
    cJSON_AddItemToObject(o, "e2e_latency_s", summary_json(&m->e2e, 1));
    cJSON_AddItemToObject(o, "output_tokens", summary_json(&m->output_tokens, 1));
    cJSON_AddItemToObject(o, "input_tokens", summary_json(&m->input_tokens, 1));
    cJSON_AddItemToObject(o, "cached_input_tokens", summary_json(&m->cached_tokens, 1));
    cJSON_AddNumberToObject(o, "requests_output_estimated", (double)m->estimated_outputs);
    cJSON_AddNumberToObject(o, "requests_finished_by_length", (double)m->forced_length);
    cJSON_AddNumberToObject(o, "requests_left_out_of_speed", (double)m->speed_excluded);
    cJSON_AddItemToObject(o, "client_lag_vs_emulator_send_us", summary_json(&m->client_lag_us, 1));
    cJSON_AddItemToObject(o, "emulator_send_minus_schedule_us", summary_json(&m->emu_pacing_us, 1));
    cJSON_AddItemToObject(o, "kernel_stamp_to_userspace_read_us",
                          summary_json(&m->kernel_to_user_us, 1));
    cJSON_AddItemToObject(o, "tokens_per_chunk", chunk_json(&m->chunks));
    failures_json(o, "failures", m->reasons, m->nreasons);
    failures_json(o, "failures_whole_phase", m->reasons_all, m->nreasons_all);
    return o;
}

/* The header's cost section (the SLT's --accelerator-type) at its reference speed: the
 * throughput there and the cost per million output and input+output tokens; -1 when the
 * measured phases' median speeds do not bracket the reference speed, -2 when the section
 * lacks its speed or price (a damaged or edited header). */
struct cost_at_reference {
    double ref, price, out_tps, io_tps, usd, usd_io;
    int accelerators;
};

static int cost_at_reference(const struct run_results *res, const cJSON *cfg,
                             struct cost_at_reference *c)
{
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(cfg, "reference_speed_tokens_per_s");
    const cJSON *price = cJSON_GetObjectItemCaseSensitive(cfg, "usd_per_accelerator_hour");
    c->ref = cJSON_IsNumber(ref) ? ref->valuedouble : NAN;
    c->price = cJSON_IsNumber(price) ? price->valuedouble : NAN;
    if (!isfinite(c->ref) || !isfinite(c->price)) return -2;
    int64_t accelerators = 0;
    json_int64(cJSON_GetObjectItemCaseSensitive(cfg, "accelerators"), &accelerators);
    c->accelerators = accelerators > 0 && accelerators <= INT32_MAX ? (int)accelerators : 0;
    if (throughput_at_speed(res->phases, res->nphases, c->ref, &c->out_tps, &c->io_tps)) return -1;
    c->usd = cost_per_million_tokens(c->accelerators, c->price, c->out_tps);
    c->usd_io = cost_per_million_tokens(c->accelerators, c->price, c->io_tps);
    return 0;
}

/* Cost per million tokens at the reference speed, from the header's price and the curve. */
static cJSON *cost_json(const struct run_results *res, const cJSON *cfg)
{
    cJSON *o = cJSON_Duplicate(cfg, 1);
    cJSON_AddStringToObject(o, "formula",
                            "accelerators x usd_per_accelerator_hour / (T_ref x 3600) x 1e6; T_ref "
                            "interpolated where median output speed per query = reference speed");
    struct cost_at_reference c;
    int rc = cost_at_reference(res, cfg, &c);
    if (rc == 0) {
        cJSON_AddNumberToObject(o, "system_output_tokens_per_s_at_reference", c.out_tps);
        cJSON_AddNumberToObject(o, "system_input_output_tokens_per_s_at_reference", c.io_tps);
        cJSON_AddNumberToObject(o, "usd_per_million_tokens", c.usd);
        cJSON_AddStringToObject(o, "usd_per_million_tokens_basis",
                                "system output throughput (headline, the seed formula)");
        json_add_num_or_null(o, "usd_per_million_input_output_tokens", c.usd_io);
    } else {
        cJSON_AddNullToObject(o, "usd_per_million_tokens");
        cJSON_AddStringToObject(o, "note",
                                rc == -2 ? "the run's header lacks the reference speed or the price"
                                         : "the measured phases' median speeds do not bracket the "
                                           "reference speed; run more concurrency levels");
    }
    return o;
}

static cJSON *build_json(const struct run_results *res)
{
    const struct run_facts *f = &res->facts;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema_version", RESULTS_SCHEMA);
    cJSON *header = cJSON_Parse(f->header_json);
    cJSON *kind = cJSON_GetObjectItemCaseSensitive(header, "kind");
    cJSON_AddStringToObject(root, "kind", cJSON_IsString(kind) ? kind->valuestring : "slt");
    int complete = f->run_ended && !f->interrupted;
    cJSON_AddBoolToObject(root, "complete", complete);
    cJSON_AddBoolToObject(root, "interrupted", f->interrupted);

    /* validity first, figures after (MLPerf LoadGen's habit) */
    const struct run_validity *rv = &res->validity;
    cJSON *validity = cJSON_AddObjectToObject(root, "validity");
    cJSON_AddBoolToObject(validity, "valid", rv->valid);
    cJSON_AddBoolToObject(validity, "comparable", rv->comparable);
    if (!rv->valid) cJSON_AddStringToObject(validity, "why_not_valid", rv->why);
    cJSON_AddStringToObject(validity, "rule", rv->rule);
    cJSON *notes = cJSON_AddArrayToObject(validity, "notes");
    for (size_t i = 0; i < rv->nnotes; i++)
        cJSON_AddItemToArray(notes, cJSON_CreateString(rv->notes[i]));

    cJSON *units = cJSON_AddObjectToObject(root, "units");
    cJSON_AddStringToObject(units, "*_s", "seconds");
    cJSON_AddStringToObject(units, "*_ns", "nanoseconds, CLOCK_REALTIME");
    cJSON_AddStringToObject(units, "*_us", "microseconds");
    cJSON_AddStringToObject(units, "*_tokens_per_s", "tokens per second");
    cJSON_AddStringToObject(units, "*_tokens", "tokens");
    cJSON_AddStringToObject(units, "requests_*", "requests");
    cJSON_AddStringToObject(units, "response_rate",
                            "fraction of requests sent in the window (0..1)");

    cJSON *tc = cJSON_AddObjectToObject(root, "token_counting");
    cJSON_AddStringToObject(tc, "tokenizer", res->tokenizer_note);
    if (res->tokenizer)
        cJSON_AddStringToObject(tc, "tokenizer_sha256", tokenizer_sha256(res->tokenizer));
    cJSON_AddStringToObject(
        tc, "rules",
        "per chunk: the server's per-chunk usage when every token chunk carries it, else the "
        "tokenizer on the chunk's content, reasoning and tool-call text, else unknown (each chunk "
        "then counts 1 for speed); output tokens: usage, else the tokenizer, else bytes/4");

    cJSON *ts = cJSON_AddObjectToObject(root, "timestamps");
    cJSON_AddStringToObject(ts, "timeline", "CLOCK_REALTIME nanoseconds");
    cJSON *src = cJSON_AddObjectToObject(ts, "events_by_source");
    static const char *const names[5] = {"none", "userspace", "kernel", "nic", "fpga"};
    for (int i = 1; i < 5; i++)
        cJSON_AddNumberToObject(src, names[i], (double)f->ts_source_events[i]);
    if (f->tap_present) {
        cJSON *tap = cJSON_AddObjectToObject(ts, "fpga_tap");
        cJSON_AddNumberToObject(tap, "records", (double)f->tap_records);
        cJSON_AddNumberToObject(tap, "records_lost", (double)f->tap_lost);
        cJSON_AddNumberToObject(tap, "events_stamped", (double)f->tap_matched);
        cJSON_AddNumberToObject(tap, "events_fallback_to_host_stamp", (double)f->tap_fallback);
        cJSON_AddNumberToObject(tap, "events_out_of_order", (double)f->tap_out_of_order);
        cJSON_AddNumberToObject(tap, "tap_clock_drift_ppm", f->tap_drift_ppm);
        cJSON_AddNumberToObject(tap, "tap_clock_uncertainty_ns", f->tap_uncertainty_ns);
        struct summary d;
        double *copy = must_calloc(f->ntap_minus_host + 1, sizeof *copy, "the tap's stamps");
        memcpy(copy, f->tap_minus_host_us, f->ntap_minus_host * sizeof *copy);
        summarise(copy, f->ntap_minus_host, &d);
        free(copy);
        cJSON_AddItemToObject(tap, "tap_minus_host_stamp_us", summary_json(&d, 1));
    }

    double best = 0, best_speed = 0;
    int best_c = 0;
    double *tps = must_calloc(res->nphases + 1, sizeof *tps, "the phases' throughput");
    for (size_t i = 0; i < res->nphases; i++) {
        tps[i] = res->phases[i].system_output_tps;
        if (tps[i] > best) best = tps[i], best_c = res->phases[i].info.concurrency;
        if (res->phases[i].speed.p50 > best_speed) best_speed = res->phases[i].speed.p50;
    }
    cJSON *peak = cJSON_AddObjectToObject(root, "peak");
    cJSON_AddNumberToObject(peak, "system_output_tokens_per_s", best);
    cJSON_AddNumberToObject(peak, "at_concurrency", best_c);
    cJSON_AddNumberToObject(peak, "output_speed_tokens_per_s_p50", best_speed);
    cJSON *plateau = cJSON_AddObjectToObject(root, "plateau");
    cJSON_AddStringToObject(plateau, "rule",
                            "stop after 2 consecutive phases below 1.02 x the best system output "
                            "throughput so far, or at --max-concurrency");
    cJSON_AddBoolToObject(plateau, "reached", slt_plateau_reached(tps, res->nphases, 1.02, 2));
    free(tps);

    if (res->is_agents) agent_results_json(root, &res->agents);
    const cJSON *cost = cJSON_GetObjectItemCaseSensitive(header, "cost");
    if (cost && !res->is_agents) cJSON_AddItemToObject(root, "cost", cost_json(res, cost));
    cJSON *phases = cJSON_AddArrayToObject(root, "phases");
    for (size_t i = 0; i < res->nphases; i++) {
        cJSON *pj = phase_json(&res->phases[i]);
        if (res->npower_sources) cJSON_AddItemToObject(pj, "power", power_json(&res->power[i], f));
        if (f->nranks > 1)
            cJSON_AddNumberToObject(pj, "latency_offset_uncertainty_s",
                                    (double)f->offset_uncertainty_ns / 1e9);
        const struct phase_metrics *pm = &res->phases[i];
        if (pm->server_prompt_ms.n) {
            cJSON *st = cJSON_AddObjectToObject(pj, "server_timings");
            cJSON_AddItemToObject(st, "server_prompt_ms", summary_json(&pm->server_prompt_ms, 1));
            cJSON_AddItemToObject(st, "server_predicted_ms",
                                  summary_json(&pm->server_predicted_ms, 1));
            cJSON_AddItemToObject(st, "ttft_from_sent_minus_server_prompt_ms",
                                  summary_json(&pm->ttft_minus_server_prompt_ms, 1));
            cJSON_AddItemToObject(st, "decode_window_minus_server_predicted_ms",
                                  summary_json(&pm->decode_window_minus_server_predicted_ms, 1));
        }
        const cJSON *arrival = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(header, "config"), "arrival");
        if (arrival) cJSON_AddItemToObject(pj, "arrival", arrival_json(&res->phases[i], arrival));
        if (cJSON_GetObjectItemCaseSensitive(header, "server_metrics")) {
            struct server_window w;
            server_metrics_window(&f->server, res->phases[i].info.t_window_start,
                                  res->phases[i].info.t_window_end, &w);
            cJSON_AddItemToObject(pj, "server", server_window_json(&f->server, &w));
        }
        cJSON_AddItemToArray(phases, pj);
    }
    ranks_results_json(root, f);
    if (header) cJSON_AddItemToObject(root, "run", header);
    return root;
}

static int write_file_atomic(const char *dir, const char *name, const char *text, char *err,
                             size_t errlen)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int failed = !f || fputs(text, f) < 0;
    if (f && fclose(f)) failed = 1;
    if (failed) {
        int e = errno;
        unlink(tmp); /* a half-written file left behind would look like a result */
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(e));
        return -1;
    }
    if (rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(e));
        return -1;
    }
    return 0;
}

static void csv_summary(char **buf, size_t *len, size_t *cap, const struct summary *s)
{
    char tmp[256];
    int n = s->n ? snprintf(tmp, sizeof tmp, ",%.6f,%.6f,%.6f,%.6f,%.6f,%.6f", s->p25, s->p50,
                            s->p75, s->p90, s->p99, s->mean)
                 : snprintf(tmp, sizeof tmp, ",,,,,,"); /* empty: no percentiles */
    if (*len + (size_t)n + 1 > *cap) {
        *cap = (*len + (size_t)n + 1) * 2;
        *buf = must_realloc(*buf, *cap, "results.csv");
    }
    memcpy(*buf + *len, tmp, (size_t)n + 1);
    *len += (size_t)n;
}

int results_write(const char *dir, const struct run_results *res, char *err, size_t errlen)
{
    cJSON *root = build_json(res);
    char *text = must_have(cJSON_Print(root), "results.json");
    cJSON_Delete(root);
    size_t tl = strlen(text);
    char *withnl = must_malloc(tl + 2, "results.json");
    memcpy(withnl, text, tl);
    memcpy(withnl + tl, "\n", 2);
    free(text);
    int rc = write_file_atomic(dir, "results.json", withnl, err, errlen);
    free(withnl);
    if (rc) return rc;

    if (res->is_agents) {
        char *acsv = agent_results_csv(&res->agents);
        rc = write_file_atomic(dir, "results.csv", acsv, err, errlen);
        free(acsv);
        return rc;
    }
    size_t cap = 4096, len = 0;
    char *csv = must_malloc(cap, "results.csv");
    const char *metrics[] = {"output_speed_tokens_per_s", "e2e_speed_tokens_per_s", "ttft_s",
                             "e2e_latency_s"};
    len = (size_t)snprintf(csv, cap,
                           "phase,concurrency,window_s,requests_sent,requests_succeeded,"
                           "requests_failed,response_rate,system_output_tokens_per_s");
    for (int k = 0; k < 4; k++) {
        char h[400];
        int n = snprintf(h, sizeof h, ",%s_p25,%s_p50,%s_p75,%s_p90,%s_p99,%s_mean", metrics[k],
                         metrics[k], metrics[k], metrics[k], metrics[k], metrics[k]);
        memcpy(csv + len, h, (size_t)n + 1);
        len += (size_t)n;
    }
    csv[len++] = '\n';
    for (size_t i = 0; i < res->nphases; i++) {
        const struct phase_metrics *m = &res->phases[i];
        char row[512];
        int n = snprintf(row, sizeof row, "%d,%d,%.3f,%zu,%zu,%zu,%.6f,%.3f", m->info.index,
                         m->info.concurrency, m->window_s, m->sent, m->succeeded, m->failed,
                         m->response_rate, m->system_output_tps);
        if (len + (size_t)n + 1 > cap)
            cap = (len + (size_t)n + 1) * 2, csv = must_realloc(csv, cap, "results.csv");
        memcpy(csv + len, row, (size_t)n + 1);
        len += (size_t)n;
        csv_summary(&csv, &len, &cap, &m->speed);
        csv_summary(&csv, &len, &cap, &m->e2e_speed);
        csv_summary(&csv, &len, &cap, &m->ttft);
        csv_summary(&csv, &len, &cap, &m->e2e);
        if (len + 2 > cap) cap *= 2, csv = must_realloc(csv, cap, "results.csv");
        csv[len++] = '\n';
        csv[len] = 0;
    }
    csv[len] = 0;
    rc = write_file_atomic(dir, "results.csv", csv, err, errlen);
    free(csv);
    return rc;
}

/* One figure of the table, or n/a when its distribution is empty. */
static void cell(char *buf, size_t len, const struct summary *s, double v, int decimals)
{
    if (s->n)
        snprintf(buf, len, "%.*f", decimals, v);
    else
        snprintf(buf, len, "n/a");
}

/* "412.3 W mean over 1234.5 J" or "n/a" (no reading in the window) */
static void watts(char *buf, size_t n, double w, double j, int complete)
{
    if (isfinite(w) && isfinite(j))
        snprintf(buf, n, "%.1f W mean, %.1f J%s", w, j, complete ? "" : " (readings missing)");
    else
        snprintf(buf, n, "n/a (no reading in the window)");
}

/* A phase's power, when the run read any: results.json has every series behind it. */
static void power_line(FILE *out, const struct phase_power *p)
{
    if (!p->has_accel && !p->has_system) return;
    char accel[96] = "", system[96] = "", per[64] = "n/a";
    if (p->has_accel) watts(accel, sizeof accel, p->accel_w, p->accel_j, p->accel_complete);
    if (p->has_system) watts(system, sizeof system, p->system_w, p->system_j, p->system_complete);
    if (isfinite(p->joules_per_output_token))
        snprintf(per, sizeof per, "%.4f J", p->joules_per_output_token);
    fprintf(out, "      power: %s%s%s%s%s; per output token %s (%s)\n",
            p->has_accel ? "accelerators " : "", accel, p->has_accel && p->has_system ? "; " : "",
            p->has_system ? "whole system " : "", system, per,
            p->has_accel ? "accelerator" : "whole system");
}

/* The SLT's cost per million tokens, when --accelerator-type gave one. */
static void cost_line(FILE *out, const struct run_results *res)
{
    cJSON *h = cJSON_Parse(res->facts.header_json);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(h, "cost");
    struct cost_at_reference c;
    if (!cfg) {
        cJSON_Delete(h);
        return;
    }
    int rc = cost_at_reference(res, cfg, &c);
    if (rc == 0 && isfinite(c.usd))
        fprintf(out,
                "cost: $%.2f per million output tokens ($%.2f per million input+output) at %.1f "
                "tokens/s/query, where the system gives %.1f output tokens/s; %d accelerator%s "
                "at $%.2f per hour\n",
                c.usd, c.usd_io, c.ref, c.out_tps, c.accelerators, c.accelerators == 1 ? "" : "s",
                c.price);
    else if (rc == -1)
        fprintf(out,
                "cost: n/a: the phases' median speeds do not bracket the reference speed of %.1f "
                "tokens/s/query; run more concurrency levels\n",
                c.ref);
    else if (rc == -2)
        fprintf(out, "cost: n/a: the run's header lacks the reference speed or the price\n");
    else
        fprintf(out, "cost: n/a: the throughput at the reference speed is 0 tokens/s\n");
    cJSON_Delete(h);
}

void results_print_table(FILE *out, const struct run_results *res)
{
    if (res->validity.valid)
        fprintf(out, "valid: yes%s\n",
                res->validity.comparable ? ", comparable with published figures"
                                         : " (not comparable with published figures: shorter "
                                           "than the published method; see results.json)");
    else
        fprintf(out, "valid: NO: %s\n", res->validity.why);
    if (res->is_agents) {
        agent_results_print(out, &res->agents);
        fprintf(out, "\nload per iteration:\n");
    }
    fprintf(out, "%5s %6s %7s %7s %6s %8s %14s %16s %12s %12s %12s\n", "phase", "conc", "sent",
            "ok", "failed", "resp", "system", "speed p50", "TTFT p50", "TTFT p99", "E2E p50");
    fprintf(out, "%5s %6s %7s %7s %6s %8s %14s %16s %12s %12s %12s\n", "", "", "", "", "", "%",
            "tokens/s", "tokens/s/query", "s", "s", "s");
    for (size_t i = 0; i < res->nphases; i++) {
        const struct phase_metrics *m = &res->phases[i];
        char speed[32], ttft50[32], ttft99[32], e2e[32];
        cell(speed, sizeof speed, &m->speed, m->speed.p50, 2);
        cell(ttft50, sizeof ttft50, &m->ttft, m->ttft.p50, 4);
        cell(ttft99, sizeof ttft99, &m->ttft, m->ttft.p99, 4);
        cell(e2e, sizeof e2e, &m->e2e, m->e2e.p50, 3);
        fprintf(out, "%5d %6d %7zu %7zu %6zu %8.2f %14.1f %16s %12s %12s %12s\n", m->info.index,
                m->info.concurrency, m->sent, m->succeeded, m->failed, 100 * m->response_rate,
                m->system_output_tps, speed, ttft50, ttft99, e2e);
        if (m->chunks.chunks && m->chunks.rule != COUNT_NONE)
            fprintf(out,
                    "      chunks: %.2f tokens/chunk mean (%s), ITL per token p50 %.3f ms "
                    "(zero rule) / %.3f ms (spread), chunk interval p50 %.3f ms; %s\n",
                    m->chunks.tokens_per_chunk.mean, count_rule_name(m->chunks.rule),
                    m->chunks.itl_zero_ms.p50, m->chunks.itl_spread_ms.p50,
                    m->chunks.chunk_interval_ms.p50, m->chunks.flush_pattern);
        if (res->open_loop)
            fprintf(out,
                    "      arrivals: %.2f requests/s due in the window and sent, dispatch lag p50 "
                    "%.3f ms p99 %.3f ms, %zu held by --max-in-flight, %lld due but never "
                    "sent\n",
                    m->window_s > 0 ? (double)m->sent / m->window_s : 0,
                    1e3 * m->dispatch_lag_s.p50, 1e3 * m->dispatch_lag_s.p99, m->held_by_cap,
                    (long long)m->info.arrivals_unsent);
        if (m->server_prompt_ms.n)
            fprintf(out,
                    "      server timings (%zu requests): prompt p50 %.2f ms, generation p50 "
                    "%.2f ms; strobe's TTFT from the send minus the server's prompt time p50 "
                    "%.2f ms\n",
                    m->server_prompt_ms.n, m->server_prompt_ms.p50, m->server_predicted_ms.p50,
                    m->ttft_minus_server_prompt_ms.p50);
        if (res->facts.server.n || res->facts.server.failed) {
            struct server_window w;
            server_metrics_window(&res->facts.server, m->info.t_window_start, m->info.t_window_end,
                                  &w);
            server_window_print(out, &res->facts.server, &w, m->ttft.n ? m->ttft.p50 : NAN);
        }
        if (res->power) power_line(out, &res->power[i]);
        for (size_t k = 0; k < m->nreasons; k++)
            fprintf(out, "      failures: %zu %s (e.g. %s)\n", m->reasons[k].count,
                    m->reasons[k].cls, m->reasons[k].example);
        /* failures in the ramp or drain too: a phase whose requests all failed there is not
         * valid, and the verdict's class must be on a line */
        for (size_t k = 0; m->failed_all > m->failed && k < m->nreasons_all; k++)
            fprintf(out, "      failures, whole phase (ramp and drain too): %zu %s (e.g. %s)\n",
                    m->reasons_all[k].count, m->reasons_all[k].cls, m->reasons_all[k].example);
    }
    if (!res->is_agents) cost_line(out, res);
    ranks_results_print(out, &res->facts);
}
