#include "aa_turns.h"

#include "agent_results.h"

#include "eventlog.h"
#include "tool_calls.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The agents source's tag: agent << 40 | task << 16 | turn (control/workload/agent_source.h) */
#define TAG_TASK(tag) ((int)(((tag) >> 16) & 0xffffff))
#define TAG_TURN(tag) ((int)((tag)&0xffff))

struct sent {
    uint64_t req_id, tag;
    const struct req_facts *r;
    struct tool_calls calls;
};

static int by_req_id(const void *a, const void *b)
{
    uint64_t x = ((const struct sent *)a)->req_id, y = ((const struct sent *)b)->req_id;
    return x < y ? -1 : x > y;
}

static int by_sched(const void *a, const void *b)
{
    const struct sent *x = a, *y = b;
    if (x->r->t_sched != y->r->t_sched) return x->r->t_sched < y->r->t_sched ? -1 : 1;
    return x->req_id < y->req_id ? -1 : x->req_id > y->req_id;
}

static int facts_by_id(const void *a, const void *b)
{
    uint64_t x = (*(const struct req_facts *const *)a)->req_id;
    uint64_t y = (*(const struct req_facts *const *)b)->req_id;
    return x < y ? -1 : x > y;
}

static const struct phase_info *first_single_agent(const struct run_facts *f)
{
    const struct phase_info *best = NULL;
    for (size_t i = 0; i < f->nphases; i++)
        if (f->phases[i].concurrency == 1 && (!best || f->phases[i].index < best->index))
            best = &f->phases[i];
    return best;
}

/* The phase's requests with their tags and tool calls, from a second pass over the log:
 * the facts keep neither. */
static struct sent *read_sent(const char *run_dir, const struct run_facts *f, int phase, size_t *n,
                              char *err, size_t errlen)
{
    size_t nf = 0;
    const struct req_facts **fs = malloc((f->nreqs ? f->nreqs : 1) * sizeof *fs);
    if (!fs) {
        snprintf(err, errlen,
                 "out of memory reading the requests of %s: export it on a machine "
                 "with more memory",
                 run_dir);
        return NULL;
    }
    for (size_t i = 0; i < f->nreqs; i++)
        if (f->reqs[i].phase == phase) fs[nf++] = &f->reqs[i];
    qsort(fs, nf, sizeof *fs, facts_by_id);
    struct eventlog_reader *lr = eventlog_open(run_dir, err, errlen);
    if (!lr) {
        free(fs);
        return NULL;
    }
    struct sent *s = calloc(nf ? nf : 1, sizeof *s);
    if (!s) {
        snprintf(err, errlen,
                 "out of memory reading the requests of %s: export it on a machine "
                 "with more memory",
                 run_dir);
        eventlog_reader_close(lr);
        free(fs);
        return NULL;
    }
    size_t ns = 0;
    for (size_t i = 0; i < lr->nrecords; i++) {
        const struct log_record *rec = &lr->records[i];
        if (rec->type != REC_REQUEST_SENT) continue;
        struct rec_request_sent v = rec_request_sent_decode(rec);
        if (v.phase != phase) continue;
        struct req_facts key = {.req_id = v.req_id};
        const struct req_facts *kp = &key;
        const struct req_facts **hit = bsearch(&kp, fs, nf, sizeof *fs, facts_by_id);
        if (hit && ns < nf) s[ns++] = (struct sent){v.req_id, v.tag, *hit, {0}};
    }
    qsort(s, ns, sizeof *s, by_req_id);
    for (size_t i = 0; i < lr->nrecords; i++) {
        const struct log_record *rec = &lr->records[i];
        if (rec->type != REC_EVENT || !rec->len) continue;
        struct sent key = {.req_id = rec->req_id};
        struct sent *hit = bsearch(&key, s, ns, sizeof *s, by_req_id);
        char keyed[BODY_KEY_MAX];
        size_t len;
        const char *body = hit ? eventlog_body(lr, rec, keyed, &len) : NULL;
        if (body) tool_calls_feed(&hit->calls, body, len);
    }
    eventlog_reader_close(lr);
    free(fs);
    qsort(s, ns, sizeof *s, by_sched);
    *n = ns;
    return s;
}

static double ms_between(int64_t from, int64_t to)
{
    return from && to ? stamps_apart(from, to, 1e6) : NAN;
}

/* AA's output-length normalisation of one measured turn (the header's rule). */
static void normalise(struct aa_turn *t)
{
    int64_t obs = t->reported_output_tokens;
    int target = t->target_output_tokens;
    t->norm_target_tokens = -1;
    t->generation_ms_per_token = t->normalized_generation_ms = t->normalized_e2e_ms = NAN;
    t->warning = NULL;
    t->observed_to_target_ratio = NAN;
    if (obs >= 0 && target > 0) t->observed_to_target_ratio = (double)obs / target;
    if (obs < 0 || isnan(t->e2e_ms)) {
        if (obs >= 0 && target > 0 && t->observed_to_target_ratio < AA_SHORT_OUTPUT_RATIO)
            t->warning = "observed_output_below_target";
        return;
    }
    if (isnan(t->generation_ms) || t->generation_ms <= 0 || obs < 2) {
        int64_t resolved = target > 0 ? target : obs;
        t->observed_to_target_ratio = resolved > 0 ? (double)obs / (double)resolved : 0;
        t->warning = "decode_window_unmeasurable";
        return;
    }
    int64_t resolved = target > 0 ? target : obs;
    if (target > 0 && t->observed_to_target_ratio < AA_SHORT_OUTPUT_RATIO)
        t->warning = "observed_output_below_target";
    t->norm_target_tokens = resolved;
    t->generation_ms_per_token = t->generation_ms / (double)(obs - 1);
    t->normalized_generation_ms =
        t->generation_ms_per_token * (double)(resolved > 1 ? resolved - 1 : 0);
    double e = t->e2e_ms - t->generation_ms + t->normalized_generation_ms;
    t->normalized_e2e_ms = e > 0 ? e : 0;
}

static void measure(struct aa_turn *t, const struct sent *s, int exact_policy)
{
    const struct req_facts *r = s->r;
    int64_t start = r->t_sched;
    t->r = r;
    t->ttfb_ms = ms_between(start, r->t_first_byte);
    t->ttft_ms = ms_between(start, r->t_first_token);
    t->e2e_ms = ms_between(start, r->t_done);
    t->generation_ms = r->t_first_token && r->t_last_token
                           ? stamps_apart(r->t_first_token, r->t_last_token, 1e6)
                           : NAN;
    t->server_output_tokens = r->usage_seen ? r->completion_tokens : -1;
    t->server_prompt_tokens = r->usage_seen ? r->prompt_tokens : -1;
    t->server_cached_prompt_tokens = r->usage_seen ? r->cached_tokens : -1;
    t->local_output_tokens = r->tokenizer_tokens;
    t->reported_output_tokens =
        t->server_output_tokens >= 0 ? t->server_output_tokens : t->local_output_tokens;
    t->response_chunks = r->n_events;
    t->response_tool_calls = s->calls.n;
    t->finish_reason = r->finish_reason && r->finish_reason[0] ? r->finish_reason : NULL;
    t->aborted = r->fail_class == FAIL_NO_END || r->transport_error == ERR_INTERRUPTED ||
                 r->transport_error == ERR_DRAIN;
    t->error[0] = 0;
    if (r->failed) {
        snprintf(t->error, sizeof t->error, "%s", r->reason[0] ? r->reason : "failed");
    } else if (tool_calls_check(&s->calls, t->finish_reason, t->error, sizeof t->error)) {
        /* t->error says which rule the calls broke */
    } else if (exact_policy && t->target_output_tokens > 0 &&
               (!t->finish_reason || strcmp(t->finish_reason, "length") ||
                t->reported_output_tokens != t->target_output_tokens)) {
        snprintf(t->error, sizeof t->error,
                 "exact output policy: the turn finished with '%s' at %lld of %d tokens",
                 t->finish_reason ? t->finish_reason : "no finish reason",
                 (long long)t->reported_output_tokens, t->target_output_tokens);
    }
    t->success = !t->error[0] && !t->aborted;
    if (!t->success && !t->error[0]) snprintf(t->error, sizeof t->error, "aborted");
    t->decode_tokens_per_s =
        t->reported_output_tokens >= 2 && t->generation_ms > 0
            ? (double)(t->reported_output_tokens - 1) / (t->generation_ms / 1e3)
            : NAN;
    normalise(t);
}

int aa_turns_collect(const char *run_dir, const struct run_facts *f, int exact_policy,
                     aa_plan_fn plan, void *plan_arg, struct aa_turns *out, char *err,
                     size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->exact_policy = exact_policy;
    const struct phase_info *ph = first_single_agent(f);
    if (!ph) {
        snprintf(err, errlen,
                 "%s has no iteration at one agent (its first ran %d agents), and AA's tool "
                 "replays for a single user: run strobe agents with --max-agents 1",
                 run_dir, f->nphases ? f->phases[0].concurrency : 0);
        return -1;
    }
    out->phase = ph;
    cJSON *h = cJSON_Parse(f->header_json);
    const cJSON *w =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(h, "config"), "window_s");
    out->cut_short = agent_iteration_cut_short(f, ph, cJSON_IsNumber(w) ? w->valuedouble : 0);
    cJSON_Delete(h);
    out->run_interrupted = f->interrupted;
    size_t ns = 0;
    struct sent *s = read_sent(run_dir, f, ph->index, &ns, err, errlen);
    if (!s) return -1;
    out->all = calloc(ns ? ns : 1, sizeof *out->all);
    out->t = calloc(ns ? ns : 1, sizeof *out->t);
    int *seen = calloc(ns ? ns : 1, sizeof *seen);
    if (!out->all || !out->t || !seen) {
        snprintf(err, errlen,
                 "out of memory measuring the turns of %s: export it on a machine "
                 "with more memory",
                 run_dir);
        aa_turns_free(out);
        free(seen);
        for (size_t i = 0; i < ns; i++) tool_calls_free(&s[i].calls);
        free(s);
        return -1;
    }
    size_t nseen = 0;
    int keep = 0, prev_task = -1, prev_turn = -1;
    for (size_t i = 0; i < ns; i++) {
        int task = TAG_TASK(s[i].tag), turn = TAG_TURN(s[i].tag);
        /* a new replay of a task starts at its turn 0 (or when the task changes) */
        if (task != prev_task || turn <= prev_turn) {
            keep = 1;
            for (size_t k = 0; k < nseen && keep; k++) keep = seen[k] != task;
            if (keep) seen[nseen++] = task;
        }
        prev_task = task;
        prev_turn = turn;
        struct aa_turn *t = &out->all[out->nall++];
        struct aa_turn_plan p;
        plan(plan_arg, task, turn, &p);
        t->task = task;
        t->turn = turn;
        t->task_id = p.task_id;
        snprintf(t->turn_id, sizeof t->turn_id, "%s", p.turn_id);
        t->conversation_idx = p.conversation_idx;
        t->target_output_tokens = p.target_output_tokens;
        t->requested_max_output_tokens = p.requested_max_output_tokens;
        t->recorded_tool_delay_ms = p.recorded_tool_delay_ms;
        t->exported = keep;
        t->in_window = s[i].r->t_sched >= ph->t_window_start && s[i].r->t_sched < ph->t_window_end;
        measure(t, &s[i], exact_policy);
        /* the tool delay strobe waited: until this task's next turn was due */
        int next_same =
            i + 1 < ns && TAG_TASK(s[i + 1].tag) == task && TAG_TURN(s[i + 1].tag) == turn + 1;
        t->replayed_tool_delay_ms = next_same && s[i].r->t_done
                                        ? stamps_apart(s[i].r->t_done, s[i + 1].r->t_sched, 1e6)
                                        : 0;
        /* a damaged log's stamps too far apart: no delay is known, none is summed */
        if (isnan(t->replayed_tool_delay_ms)) t->replayed_tool_delay_ms = 0;
        if (!keep) {
            out->repeats_left_out++;
            continue;
        }
        out->t[out->n++] = *t;
        if (!next_same && turn + 1 < p.task_turns)
            for (size_t k = out->n; k > 0 && out->t[k - 1].task == task; k--)
                out->t[k - 1].task_incomplete = 1;
    }
    free(seen);
    for (size_t i = 0; i < ns; i++) tool_calls_free(&s[i].calls);
    free(s);
    return 0;
}

void aa_turns_free(struct aa_turns *t)
{
    free(t->t);
    free(t->all);
    memset(t, 0, sizeof *t);
}

double aa_pooled_decode_tokens_per_s(const struct aa_turns *t)
{
    double tokens = 0, seconds = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct aa_turn *x = &t->t[i];
        /* servers may buffer tool calls: their window does not cover their tokens */
        if (!x->success || x->response_tool_calls || isnan(x->decode_tokens_per_s)) continue;
        tokens += (double)(x->reported_output_tokens - 1);
        seconds += x->generation_ms / 1e3;
    }
    return seconds > 0 ? tokens / seconds : NAN;
}

double aa_end_to_end_tokens_per_s(const struct aa_turns *t)
{
    double tokens = 0, seconds = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct aa_turn *x = &t->t[i];
        if (!x->success || isnan(x->e2e_ms)) continue;
        tokens += (double)(x->reported_output_tokens > 0 ? x->reported_output_tokens : 0);
        seconds += x->e2e_ms / 1e3;
    }
    return seconds > 0 ? tokens / seconds : NAN;
}
