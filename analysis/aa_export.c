#include "aa_export.h"

#include "json_out.h"
#include "must_alloc.h"
#include "stats.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AA_REPORT_VERSION 1

/* a count or a sum of counts (doubles: exact to 2^53); a negative one, unknown, as null */
static void add_count_or_null(cJSON *o, const char *key, double v)
{
    if (v >= 0)
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

/* nanoseconds as an exact integer (a double keeps only 16 digits of 19) */
static void add_ns(cJSON *o, const char *key, int64_t ns)
{
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)ns);
    cJSON_AddRawToObject(o, key, text);
}

static void add_str_or_null(cJSON *o, const char *key, const char *s)
{
    if (s && s[0])
        cJSON_AddStringToObject(o, key, s);
    else
        cJSON_AddNullToObject(o, key);
}

static int by_key(const void *a, const void *b)
{
    return strcmp((*(cJSON *const *)a)->string, (*(cJSON *const *)b)->string);
}

/* AA writes turns.jsonl with sorted keys; so does this, at every depth (o NULL: cJSON ran out
 * of memory, which the printer's NULL reports). */
static void sort_keys(cJSON *o)
{
    if (!o) return;
    size_t n = 0;
    for (cJSON *c = o->child; c; c = c->next) {
        n++;
        if (cJSON_IsObject(c) || cJSON_IsArray(c)) sort_keys(c);
    }
    if (!cJSON_IsObject(o) || n < 2) return;
    cJSON **v = must_calloc(n, sizeof *v, "a turn record's keys");
    n = 0;
    for (cJSON *c = o->child; c; c = c->next) v[n++] = c;
    qsort(v, n, sizeof *v, by_key);
    for (size_t i = 0; i < n; i++) {
        v[i]->prev = i ? v[i - 1] : v[n - 1]; /* cJSON: the first's prev is the last */
        v[i]->next = i + 1 < n ? v[i + 1] : NULL;
    }
    o->child = v[0];
    free(v);
}

/* Every record AA's tool writes starts with its report version and kind. */
static cJSON *aa_record(const char *kind)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "version", AA_REPORT_VERSION);
    cJSON_AddStringToObject(o, "kind", kind);
    return o;
}

static cJSON *turn_json(const struct aa_turn *t)
{
    cJSON *o = aa_record("turn");
    cJSON_AddStringToObject(o, "turn_id", t->turn_id);
    cJSON_AddStringToObject(o, "task_id", t->task_id);
    cJSON_AddNumberToObject(o, "conversation_idx", t->conversation_idx);
    cJSON_AddBoolToObject(o, "success", t->success);
    add_str_or_null(o, "error", t->error);
    cJSON_AddNumberToObject(o, "requested_max_output_tokens", t->requested_max_output_tokens);
    cJSON *tm = cJSON_AddObjectToObject(o, "timing");
    json_add_num_or_null(tm, "e2e_latency_ms", t->e2e_ms);
    json_add_num_or_null(tm, "time_to_first_byte_ms", t->ttfb_ms);
    json_add_num_or_null(tm, "time_to_first_token_ms", t->ttft_ms);
    json_add_num_or_null(tm, "generation_ms", t->generation_ms);
    cJSON *tk = cJSON_AddObjectToObject(o, "tokens");
    add_count_or_null(tk, "server_prompt_tokens", t->server_prompt_tokens);
    add_count_or_null(tk, "server_output_tokens", t->server_output_tokens);
    add_count_or_null(tk, "local_output_tokens", t->local_output_tokens);
    cJSON_AddNullToObject(tk, "recorded_prompt_tokens");
    cJSON_AddNullToObject(tk, "recorded_completion_tokens");
    add_count_or_null(tk, "target_output_tokens",
                      t->target_output_tokens > 0 ? t->target_output_tokens : -1);
    add_count_or_null(tk, "server_cached_prompt_tokens", t->server_cached_prompt_tokens);
    add_count_or_null(tk, "server_uncached_prompt_tokens",
                      t->server_prompt_tokens >= 0 && t->server_cached_prompt_tokens >= 0
                          ? t->server_prompt_tokens - t->server_cached_prompt_tokens
                          : -1);
    cJSON *nm = cJSON_AddObjectToObject(o, "normalization");
    add_count_or_null(nm, "observed_output_tokens", t->reported_output_tokens);
    add_count_or_null(nm, "target_output_tokens",
                      t->norm_target_tokens >= 0    ? t->norm_target_tokens
                      : t->target_output_tokens > 0 ? t->target_output_tokens
                                                    : -1);
    add_count_or_null(nm, "normalized_decode_tokens",
                      t->norm_target_tokens > 0    ? t->norm_target_tokens - 1
                      : t->norm_target_tokens == 0 ? 0
                                                   : -1);
    json_add_num_or_null(nm, "generation_ms_per_token", t->generation_ms_per_token);
    json_add_num_or_null(nm, "normalized_generation_ms", t->normalized_generation_ms);
    json_add_num_or_null(nm, "normalized_e2e_latency_ms", t->normalized_e2e_ms);
    if (t->warning) {
        cJSON *w = cJSON_AddObjectToObject(nm, "warning");
        int unmeasurable = !strcmp(t->warning, "decode_window_unmeasurable");
        cJSON_AddStringToObject(w, "code", t->warning);
        cJSON_AddStringToObject(w, "message",
                                unmeasurable
                                    ? "the turn has no measurable first-to-last output token window"
                                    : "observed output is below half of the normalization target");
        add_count_or_null(w, "observed_output_tokens", t->reported_output_tokens);
        add_count_or_null(w, "target_output_tokens",
                          t->target_output_tokens > 0 ? t->target_output_tokens
                                                      : t->reported_output_tokens);
        json_add_num_or_null(w, "observed_to_target_ratio", t->observed_to_target_ratio);
        cJSON_AddNumberToObject(w, "threshold", AA_SHORT_OUTPUT_RATIO);
    } else {
        cJSON_AddNullToObject(nm, "warning");
    }
    cJSON_AddNumberToObject(o, "recorded_tool_delay_ms", t->recorded_tool_delay_ms);
    cJSON_AddNumberToObject(o, "replayed_tool_delay_ms", t->replayed_tool_delay_ms);
    cJSON_AddArrayToObject(o, "tool_calls"); /* strobe waits the delay; it runs no tool */
    cJSON_AddNumberToObject(o, "response_chunks", t->response_chunks);
    cJSON_AddNumberToObject(o, "response_tool_calls", t->response_tool_calls);
    add_str_or_null(o, "finish_reason", t->finish_reason);
    cJSON_AddBoolToObject(o, "aborted", t->aborted);
    sort_keys(o);
    return o;
}

static double nz(double v) { return isnan(v) ? 0 : v; }

/* AA's totals over a set of turns: latencies and server tokens over the successful ones. */
static cJSON *totals_json(const struct aa_turn *const *v, size_t n)
{
    size_t ok = 0, warnings = 0;
    double infer = 0, rec_tool = 0, rep_tool = 0, ok_rep_tool = 0, ngen = 0, ninfer = 0,
           nagentic = 0;
    /* token sums in doubles: a damaged log's counts (each within 2^62) could overflow int64 */
    double prompt = 0, out = 0, local = 0, cached = 0, uncached = 0;
    int cached_all = n > 0;
    for (size_t i = 0; i < n; i++) {
        const struct aa_turn *t = v[i];
        rec_tool += t->recorded_tool_delay_ms;
        rep_tool += t->replayed_tool_delay_ms;
        warnings += t->warning != NULL;
        if (!t->success) continue;
        ok++;
        infer += nz(t->e2e_ms);
        ok_rep_tool += t->replayed_tool_delay_ms;
        ngen += nz(t->normalized_generation_ms);
        ninfer += nz(t->normalized_e2e_ms);
        if (!isnan(t->normalized_e2e_ms))
            nagentic += t->normalized_e2e_ms + t->replayed_tool_delay_ms;
        prompt += t->server_prompt_tokens > 0 ? (double)t->server_prompt_tokens : 0;
        out += t->server_output_tokens > 0 ? (double)t->server_output_tokens : 0;
        local += t->local_output_tokens > 0 ? (double)t->local_output_tokens : 0;
        if (t->server_cached_prompt_tokens < 0 || t->server_prompt_tokens < 0)
            cached_all = 0;
        else {
            cached += (double)t->server_cached_prompt_tokens;
            uncached += (double)t->server_prompt_tokens - (double)t->server_cached_prompt_tokens;
        }
    }
    cached_all = cached_all && ok == n;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "turns", (double)n);
    cJSON_AddNumberToObject(o, "successful_turns", (double)ok);
    cJSON_AddNumberToObject(o, "failed_turns", (double)(n - ok));
    cJSON_AddNumberToObject(o, "short_output_warnings", (double)warnings);
    cJSON_AddNumberToObject(o, "tool_calls", 0);
    cJSON_AddNumberToObject(o, "total_inference_latency_ms", infer);
    cJSON_AddNumberToObject(o, "total_recorded_tool_delay_ms", rec_tool);
    cJSON_AddNumberToObject(o, "total_replayed_tool_delay_ms", rep_tool);
    cJSON_AddNumberToObject(o, "total_agentic_replay_ms", infer + ok_rep_tool);
    cJSON_AddNumberToObject(o, "total_normalized_generation_ms", ngen);
    cJSON_AddNumberToObject(o, "total_normalized_inference_latency_ms", ninfer);
    cJSON_AddNumberToObject(o, "total_normalized_agentic_replay_ms", nagentic);
    cJSON_AddNumberToObject(o, "total_server_prompt_tokens", prompt);
    cJSON_AddNumberToObject(o, "total_server_output_tokens", out);
    cJSON_AddNumberToObject(o, "total_local_output_tokens", local);
    cJSON_AddNumberToObject(o, "total_recorded_prompt_tokens", 0);
    cJSON_AddNumberToObject(o, "total_recorded_completion_tokens", 0);
    add_count_or_null(o, "total_server_cached_prompt_tokens", cached_all ? cached : -1);
    add_count_or_null(o, "total_server_uncached_prompt_tokens", cached_all ? uncached : -1);
    return o;
}

/* count, mean, p50, p95 (linear interpolation, as AA's and strobe's percentiles) */
static cJSON *distribution_json(struct dvec *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "count", (double)d->n);
    if (!d->n) {
        cJSON_AddNullToObject(o, "mean");
        cJSON_AddNullToObject(o, "p50");
        cJSON_AddNullToObject(o, "p95");
        return o;
    }
    struct summary s;
    summarise(d->v, d->n, &s);
    cJSON_AddNumberToObject(o, "mean", s.mean);
    cJSON_AddNumberToObject(o, "p50", s.p50);
    cJSON_AddNumberToObject(o, "p95", s.p95);
    return o;
}

const char *aa_export_validity(const struct aa_turns *t, char *why, size_t len)
{
    /* a stop during the iteration: turns it would have sent never were, whatever those sent
     * show (a stop in a later iteration leaves this one whole) */
    if (t->cut_short && t->run_interrupted)
        return snprintf(why, len, "the run was interrupted during the iteration"), why;
    if (t->cut_short)
        return snprintf(why, len,
                        "the run's log has no end: strobe was killed or crashed during the "
                        "iteration, or the run is still going (export it once it has ended)"),
               why;
    for (size_t i = 0; i < t->n; i++) {
        const struct aa_turn *x = &t->t[i];
        if (!x->success)
            snprintf(why, len, "turn %s failed: %s", x->turn_id, x->error);
        else if (x->warning)
            snprintf(why, len, "turn %s has a short-output warning (%s)", x->turn_id, x->warning);
        else if (!(x->ttfb_ms <= x->ttft_ms && x->ttft_ms <= x->e2e_ms))
            snprintf(why, len, "turn %s breaks TTFB <= TTFT <= E2E", x->turn_id);
        else if (!(x->generation_ms <= x->e2e_ms))
            snprintf(why, len, "turn %s has a decode window longer than its E2E", x->turn_id);
        else
            continue;
        return why;
    }
    if (!t->n) return snprintf(why, len, "the iteration sent no request"), why;
    return NULL;
}

static const cJSON *header_field(const cJSON *h, const char *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(h, obj), key);
}

static const char *header_str(const cJSON *h, const char *obj, const char *key)
{
    const cJSON *v = header_field(h, obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *config_json(const cJSON *h)
{
    cJSON *c = cJSON_CreateObject();
    add_str_or_null(c, "base_url", header_str(h, "config", "url"));
    add_str_or_null(c, "model", header_str(h, "config", "model"));
    cJSON_AddStringToObject(c, "client_backend", "strobe");
    cJSON_AddNullToObject(c, "transport_policy_id");
    cJSON_AddNullToObject(c, "context");
    cJSON_AddNullToObject(c, "request_timeout_seconds");
    cJSON *ot = cJSON_AddObjectToObject(c, "output_tokens");
    const char *policy = header_str(h, "config", "output_policy");
    add_str_or_null(ot, "policy", policy);
    cJSON_AddNumberToObject(ot, "fallback", 16384);
    cJSON_AddNumberToObject(ot, "margin", 0);
    cJSON *sm = cJSON_AddObjectToObject(c, "sampling");
    cJSON_AddNullToObject(sm, "preset");
    cJSON_AddNullToObject(sm, "temperature");
    cJSON_AddNullToObject(sm, "top_p");
    const char *extra = header_str(h, "config", "extra_body");
    cJSON *eb = extra && extra[0] ? cJSON_Parse(extra) : NULL;
    cJSON_AddItemToObject(sm, "extra_body", eb ? eb : cJSON_CreateObject());
    cJSON_AddNullToObject(c, "reasoning_effort");
    cJSON *ci = cJSON_AddObjectToObject(c, "cache_isolation");
    cJSON_AddBoolToObject(ci, "enabled", 1);
    cJSON_AddStringToObject(ci, "scope", "per task replay: a new 32-digit nonce each time");
    cJSON *tr = cJSON_AddObjectToObject(c, "tool_replay");
    const cJSON *tool = header_field(h, "config", "tool_time_s");
    cJSON_AddStringToObject(tr, "mode", cJSON_IsNumber(tool) ? "fixed" : "recorded");
    cJSON_AddNumberToObject(tr, "delay_scale", 1);
    cJSON_AddNullToObject(tr, "profile");
    cJSON_AddNullToObject(tr, "profile_statistic");
    cJSON_AddNullToObject(tr, "live_image_override");
    cJSON_AddNullToObject(tr, "live_network_override");
    return c;
}

static cJSON *turn_ids(const struct aa_turns *t, int (*pick)(const struct aa_turn *))
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < t->n; i++)
        if (pick(&t->t[i])) cJSON_AddItemToArray(a, cJSON_CreateString(t->t[i].turn_id));
    return a;
}
static int warned(const struct aa_turn *t) { return t->warning != NULL; }
static int length_finished(const struct aa_turn *t)
{
    return t->finish_reason && !strcmp(t->finish_reason, "length");
}
static int failed(const struct aa_turn *t) { return !t->success; }

/* NULL out of memory (write_json says so) */
static cJSON *summary_json(const struct aa_turns *t, const struct aa_export_source *src,
                           const cJSON *h)
{
    int64_t t0 = 0, t1 = 0;
    struct dvec e2e = {0}, ttft = {0}, norm = {0};
    const struct aa_turn **all = malloc((t->n ? t->n : 1) * sizeof *all);
    if (!all) return NULL;
    int success = t->n > 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct aa_turn *x = &t->t[i];
        all[i] = x;
        if (!t0 || x->r->t_sched < t0) t0 = x->r->t_sched;
        if (x->r->t_done > t1) t1 = x->r->t_done;
        success = success && x->success && !x->task_incomplete;
        if (!x->success) continue;
        if (!isnan(x->e2e_ms)) dvec_push(&e2e, x->e2e_ms);
        if (!isnan(x->ttft_ms)) dvec_push(&ttft, x->ttft_ms);
        if (!isnan(x->normalized_e2e_ms)) dvec_push(&norm, x->normalized_e2e_ms);
    }
    if (t1 < t0) t1 = t0;
    const char *slash = strrchr(src->run_dir, '/');
    char run_id[300];
    snprintf(run_id, sizeof run_id, "strobe-%s-phase-%d",
             slash && slash[1] ? slash + 1 : src->run_dir, t->phase->index);
    cJSON *s = aa_record("run_summary");
    cJSON_AddStringToObject(s, "run_id", run_id);
    cJSON_AddStringToObject(s, "manifest", src->manifest);
    cJSON_AddNumberToObject(s, "started_at", (double)t0 / 1e9);
    cJSON_AddNumberToObject(s, "ended_at", (double)t1 / 1e9);
    cJSON_AddNumberToObject(s, "wall_duration_ms", stamps_apart(t0, t1, 1e6));
    cJSON_AddNumberToObject(s, "measured_duration_ms", stamps_apart(t0, t1, 1e6));
    cJSON *ob = cJSON_AddObjectToObject(s, "observer");
    cJSON_AddBoolToObject(ob, "enabled", 0);
    cJSON_AddNumberToObject(ob, "duration_ms", 0);
    cJSON_AddBoolToObject(ob, "ranked_eligible", 0);
    cJSON_AddBoolToObject(s, "success", success);
    json_add_num_or_null(s, "output_tokens_per_second", aa_pooled_decode_tokens_per_s(t));
    json_add_num_or_null(s, "end_to_end_output_tokens_per_second", aa_end_to_end_tokens_per_s(t));
    cJSON_AddItemToObject(s, "config", config_json(h));
    cJSON_AddItemToObject(s, "totals", totals_json(all, t->n));
    cJSON *ld = cJSON_AddObjectToObject(s, "latency_distributions_ms");
    cJSON_AddItemToObject(ld, "e2e", distribution_json(&e2e));
    cJSON_AddItemToObject(ld, "time_to_first_token", distribution_json(&ttft));
    cJSON_AddItemToObject(ld, "normalized_e2e", distribution_json(&norm));
    cJSON_AddItemToObject(s, "short_output_warning_turn_ids", turn_ids(t, warned));
    cJSON_AddItemToObject(s, "length_finished_turn_ids", turn_ids(t, length_finished));
    cJSON_AddItemToObject(s, "failed_turn_ids", turn_ids(t, failed));
    cJSON *ar = cJSON_AddObjectToObject(s, "artifacts");
    cJSON_AddStringToObject(ar, "turns", "turns.jsonl");
    cJSON_AddStringToObject(ar, "tasks", "tasks.json");
    cJSON_AddStringToObject(ar, "tools", "tools.json");
    cJSON_AddStringToObject(ar, "failures", "failures.json");
    dvec_free(&e2e);
    dvec_free(&ttft);
    dvec_free(&norm);
    free(all);
    return s;
}

/* NULL out of memory (write_json says so) */
static cJSON *tasks_json(const struct aa_turns *t)
{
    const struct aa_turn **v = malloc((t->n ? t->n : 1) * sizeof *v);
    if (!v) return NULL;
    cJSON *o = aa_record("task_summaries");
    cJSON *a = cJSON_AddArrayToObject(o, "tasks");
    for (size_t i = 0; i < t->n;) {
        size_t n = 0, j = i;
        for (; j < t->n && t->t[j].task == t->t[i].task; j++) v[n++] = &t->t[j];
        cJSON *task = cJSON_CreateObject();
        cJSON_AddStringToObject(task, "task_id", t->t[i].task_id);
        cJSON_AddItemToObject(task, "totals", totals_json(v, n));
        cJSON *f = cJSON_AddArrayToObject(task, "failed_turn_ids");
        for (size_t k = 0; k < n; k++)
            if (!v[k]->success) cJSON_AddItemToArray(f, cJSON_CreateString(v[k]->turn_id));
        cJSON_AddItemToArray(a, task);
        i = j;
    }
    free(v);
    return o;
}

static cJSON *tool_group(const char *key)
{
    cJSON *g = cJSON_CreateObject();
    cJSON_AddStringToObject(g, "key", key);
    const char *zero[] = {"calls",
                          "recorded_duration_ms",
                          "replayed_duration_ms",
                          "returncode_comparisons",
                          "returncode_matches",
                          "returncode_mismatches",
                          "failures"};
    for (size_t i = 0; i < sizeof zero / sizeof *zero; i++) cJSON_AddNumberToObject(g, zero[i], 0);
    return g;
}

static cJSON *tools_json(void)
{
    cJSON *o = aa_record("tool_summary");
    cJSON_AddItemToObject(o, "overall", tool_group("all"));
    cJSON_AddArrayToObject(o, "by_delay_source");
    cJSON_AddArrayToObject(o, "by_tool");
    cJSON_AddArrayToObject(o, "by_command");
    return o;
}

static cJSON *failures_json(const struct aa_turns *t)
{
    cJSON *o = aa_record("failures");
    cJSON *a = cJSON_AddArrayToObject(o, "failures");
    for (size_t i = 0; i < t->n; i++) {
        if (t->t[i].success) continue;
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "task_id", t->t[i].task_id);
        cJSON_AddStringToObject(f, "turn_id", t->t[i].turn_id);
        add_str_or_null(f, "request_error", t->t[i].error);
        cJSON_AddArrayToObject(f, "tool_errors");
        cJSON_AddItemToArray(a, f);
    }
    return o;
}

/* strobe's own file: where each turn came from, and the verdict by methodology.md §8. */
static cJSON *strobe_json(const struct aa_turns *t, const struct aa_export_source *src)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "schema_version", "strobe.export-aa.v1");
    cJSON_AddStringToObject(o, "run_dir", src->run_dir);
    cJSON_AddNumberToObject(o, "phase", t->phase->index);
    add_ns(o, "window_start_ns", t->phase->t_window_start);
    add_ns(o, "window_end_ns", t->phase->t_window_end);
    char why[400];
    const char *bad = aa_export_validity(t, why, sizeof why);
    cJSON *v = cJSON_AddObjectToObject(o, "validity");
    cJSON_AddBoolToObject(v, "valid", !bad);
    add_str_or_null(v, "why_not_valid", bad);
    cJSON_AddStringToObject(
        v, "rule",
        "an iteration the run's stop did not cut short; no failed turn, no short-output "
        "warning, TTFB <= TTFT <= E2E and decode window <= E2E for every "
        "turn (methodology.md section 8)");
    cJSON_AddNumberToObject(o, "repeated_task_turns_left_out", (double)t->repeats_left_out);
    cJSON *inc = cJSON_AddArrayToObject(o, "incomplete_task_ids");
    for (size_t i = 0; i < t->n; i++)
        if (aa_turn_starts_cut_task(t, i))
            cJSON_AddItemToArray(inc, cJSON_CreateString(t->t[i].task_id));
    /* every request of the iteration, by the same rules, for joining with results.json */
    cJSON *a = cJSON_AddArrayToObject(o, "requests");
    for (size_t i = 0; i < t->nall; i++) {
        const struct aa_turn *x = &t->all[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "turn_id", x->turn_id);
        cJSON_AddNumberToObject(j, "req_id", (double)x->r->req_id);
        add_ns(j, "scheduled_ns", x->r->t_sched);
        cJSON_AddBoolToObject(j, "in_window", x->in_window);
        cJSON_AddBoolToObject(j, "exported", x->exported);
        cJSON_AddBoolToObject(j, "success", x->success);
        json_add_num_or_null(j, "time_to_first_byte_ms", x->ttfb_ms);
        json_add_num_or_null(j, "time_to_first_token_ms", x->ttft_ms);
        json_add_num_or_null(j, "e2e_latency_ms", x->e2e_ms);
        json_add_num_or_null(j, "generation_ms", x->generation_ms);
        add_count_or_null(j, "output_tokens", x->reported_output_tokens);
        json_add_num_or_null(j, "decode_tokens_per_s", x->decode_tokens_per_s);
        json_add_num_or_null(j, "strobe_output_speed_tokens_per_s", req_output_speed(x->r));
        cJSON_AddItemToArray(a, j);
    }
    return o;
}

/* Creates dir/name (never over anything, never through a link) with text, synced. */
static int write_new(const char *dir, const char *name, const char *text, size_t len, char *err,
                     size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s; give a new output directory", path,
                 strerror(errno));
        return -1;
    }
    size_t at = 0;
    while (at < len) {
        ssize_t w = write(fd, text + at, len - at);
        if (w <= 0) break;
        at += (size_t)w;
    }
    int bad = at < len || fsync(fd);
    if (close(fd)) bad = 1;
    if (bad) snprintf(err, errlen, "cannot write %s: %s; check the disk", path, strerror(errno));
    return bad ? -1 : 0;
}

/* Writes o (NULL: out of memory making it) and deletes it. */
static int write_json(const char *dir, const char *name, cJSON *o, char *err, size_t errlen)
{
    char *text = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    size_t len = text ? strlen(text) : 0;
    char *withnl = text ? realloc(text, len + 2) : NULL;
    if (!withnl) {
        free(text);
        snprintf(err, errlen, "out of memory writing %s/%s", dir, name);
        return -1;
    }
    text = withnl;
    text[len++] = '\n';
    text[len] = 0;
    int rc = write_new(dir, name, text, len, err, errlen);
    free(text);
    return rc;
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int aa_export_out_free(const char *out_dir, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(out_dir, &st)) return 0;
    snprintf(err, errlen,
             "%s already exists%s; give a new output directory (an export never replaces or "
             "adds to another)",
             out_dir, S_ISLNK(st.st_mode) ? " (a symbolic link)" : "");
    return -1;
}

/* A failed export's files and OUT_DIR, which it made: a rerun then needs no cleaning up. */
static void remove_export(const char *out_dir)
{
    static const char *const names[] = {"turns.jsonl",   "tasks.json",         "tools.json",
                                        "failures.json", "strobe_export.json", ".summary.json.tmp",
                                        "summary.json"};
    char path[4200];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", out_dir, names[i]);
        unlink(path);
    }
    rmdir(out_dir);
}

int aa_export_write(const char *out_dir, const struct aa_turns *t,
                    const struct aa_export_source *src, char *err, size_t errlen)
{
    if (aa_export_out_free(out_dir, err, errlen)) return -1;
    if (mkdir(out_dir, 0755)) {
        snprintf(err, errlen, "cannot create %s: %s; check its parent directory", out_dir,
                 strerror(errno));
        return -1;
    }
    cJSON *h = cJSON_Parse(src->header_json);
    size_t cap = 4096, len = 0;
    char *lines = malloc(cap);
    for (size_t i = 0; i < t->n && lines; i++) {
        cJSON *o = turn_json(&t->t[i]);
        char *line = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        size_t n = line ? strlen(line) : 0;
        if (line && len + n + 2 > cap) {
            char *more = realloc(lines, cap = 2 * (len + n + 2));
            if (!more) free(lines);
            lines = more;
        }
        if (lines && line) {
            memcpy(lines + len, line, n);
            len += n;
            lines[len++] = '\n';
        }
        if (!line) { /* out of memory: no partial turns.jsonl */
            free(lines);
            lines = NULL;
        }
        free(line);
    }
    int rc = -1;
    if (lines)
        rc = write_new(out_dir, "turns.jsonl", lines, len, err, errlen);
    else
        snprintf(err, errlen, "out of memory writing %s/turns.jsonl", out_dir);
    free(lines);
    if (!rc) rc = write_json(out_dir, "tasks.json", tasks_json(t), err, errlen);
    if (!rc) rc = write_json(out_dir, "tools.json", tools_json(), err, errlen);
    if (!rc) rc = write_json(out_dir, "failures.json", failures_json(t), err, errlen);
    if (!rc) rc = write_json(out_dir, "strobe_export.json", strobe_json(t, src), err, errlen);
    if (!rc) {
        /* the completion marker: whole under a hidden name, then renamed into place */
        sync_dir(out_dir);
        rc = write_json(out_dir, ".summary.json.tmp", summary_json(t, src, h), err, errlen);
        char from[4096], to[4096];
        snprintf(from, sizeof from, "%s/.summary.json.tmp", out_dir);
        snprintf(to, sizeof to, "%s/summary.json", out_dir);
        if (!rc && rename(from, to)) {
            snprintf(err, errlen, "cannot rename %s to %s: %s", from, to, strerror(errno));
            rc = -1;
        }
        sync_dir(out_dir);
    }
    cJSON_Delete(h);
    if (rc) remove_export(out_dir);
    return rc;
}
