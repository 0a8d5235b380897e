#include "agent_results.h"
#include "json_out.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double num(const cJSON *o, const char *k, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

int slo_tiers_from_json(const cJSON *ts, struct slo_tier **tiers, size_t *ntiers)
{
    if (!cJSON_IsArray(ts)) return -1;
    *ntiers = (size_t)cJSON_GetArraySize(ts);
    *tiers = calloc(*ntiers + 1, sizeof **tiers);
    size_t i = 0;
    const cJSON *t;
    cJSON_ArrayForEach (t, ts) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "tier");
        snprintf((*tiers)[i].name, sizeof(*tiers)[i].name, "%s",
                 cJSON_IsString(name) ? name->valuestring : "custom");
        (*tiers)[i].speed_p25 = num(t, "output_speed_p25_tokens_per_s", 0);
        (*tiers)[i].ttft_p95 = num(t, "ttft_p95_s", INFINITY);
        i++;
    }
    return 0;
}

int agent_search_config(const cJSON *header, struct slo_tier **tiers, size_t *ntiers, int *start,
                        int *resolution, int *cap, double *max_error_rate)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(header, "search");
    if (slo_tiers_from_json(cJSON_GetObjectItemCaseSensitive(s, "tiers"), tiers, ntiers)) return -1;
    *start = (int)num(s, "start_agents", 1);
    *resolution = (int)num(s, "resolution", 1);
    *cap = (int)num(s, "max_agents", 100000);
    *max_error_rate = num(s, "max_error_rate", 0.01);
    return 0;
}

struct lookup {
    const struct agent_results *ar;
};

/* Offline: the first measured iteration with this many agents. An interrupted one was never
 * measured to its end (the live search took no verdict from it either): the search stops
 * there, incomplete, rather than fail it on the requests the interruption cut off. */
static int look_up(void *arg, int agents, struct iteration_metrics *out)
{
    const struct agent_results *ar = ((struct lookup *)arg)->ar;
    for (size_t i = 0; i < ar->niters; i++)
        if (ar->iters[i].agents == agents && !ar->iters[i].interrupted) {
            *out = ar->iters[i];
            return 0;
        }
    return -1;
}

/* (agent_results.h) */
int agent_iteration_cut_short(const struct run_facts *f, const struct phase_info *ph,
                              double window_s)
{
    if (f->run_ended && !f->interrupted) return 0;
    if (ph != &f->phases[f->nphases - 1]) return 0;
    if (!ph->t_end) return 1;
    if (window_s > 0 && ph->t_window_end - ph->t_window_start < (int64_t)(window_s * 1e9))
        return 1; /* the same expression as the live window's length (commands/agents.c) */
    for (size_t i = 0; i < f->nreqs; i++)
        if (f->reqs[i].phase == ph->index && f->reqs[i].transport_error == ERR_INTERRUPTED)
            return 1;
    return 0;
}

int agent_results_compute(const struct run_facts *f, const struct phase_power *power,
                          struct agent_results *ar, char *err, size_t errlen)
{
    memset(ar, 0, sizeof *ar);
    ar->power = power;
    cJSON *h = cJSON_Parse(f->header_json);
    struct slo_tier *tiers = NULL;
    size_t ntiers = 0;
    int start, resolution, cap;
    double max_err;
    if (agent_search_config(h, &tiers, &ntiers, &start, &resolution, &cap, &max_err)) {
        snprintf(err, errlen, "the log header has no agent search section");
        cJSON_Delete(h);
        return -1;
    }
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(h, "search");
    ar->accelerators = (int)num(s, "accelerators", 1);
    ar->power_w = num(s, "power_w", -1);
    double window_s = num(cJSON_GetObjectItemCaseSensitive(h, "config"), "window_s", 0);
    cJSON_Delete(h);
    ar->stopped = f->interrupted || !f->run_ended;
    ar->niters = f->nphases;
    ar->iters = calloc(f->nphases + 1, sizeof *ar->iters);
    for (size_t i = 0; i < f->nphases; i++) {
        agent_iteration_metrics(f, &f->phases[i], &ar->iters[i]);
        ar->iters[i].interrupted = agent_iteration_cut_short(f, &f->phases[i], window_s);
    }
    ar->nsearches = ntiers;
    ar->searches = calloc(ntiers + 1, sizeof *ar->searches);
    struct lookup lk = {ar};
    for (size_t i = 0; i < ntiers; i++)
        agent_search(&tiers[i], start, resolution, cap, max_err, look_up, &lk, &ar->searches[i]);
    free(tiers);
    return 0;
}

/* Accelerator watts for per-MW: measured over the window of the iteration at max_agents
 * when complete, else --power-w as given. */
static double per_mw_power(const struct agent_results *ar, const struct search_result *r,
                           const char **basis)
{
    if (r->at_max && ar->power) {
        const struct phase_power *p = &ar->power[r->at_max->phase];
        if (p->has_accel && p->accel_complete) {
            *basis = "measured accelerator power over the window of the iteration at max_agents";
            return p->accel_w;
        }
        if (p->has_accel) {
            *basis =
                "power incomplete: accelerator samples do not cover the window (no per-MW figure)";
            return -1;
        }
    }
    if (ar->power_w > 0) {
        *basis = "given with --power-w, not measured";
        return ar->power_w;
    }
    *basis = "none: no accelerator power source and no --power-w";
    return -1;
}

static cJSON *iter_json(const struct iteration_metrics *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "phase", m->phase);
    cJSON_AddNumberToObject(o, "agents", m->agents);
    cJSON_AddBoolToObject(o, "interrupted", m->interrupted);
    cJSON_AddNumberToObject(o, "window_s", m->window_s);
    cJSON_AddNumberToObject(o, "warmup_s", m->warmup_s);
    cJSON_AddBoolToObject(o, "warmup_extended", m->warmup_extended);
    cJSON_AddNumberToObject(o, "requests", (double)m->requests);
    cJSON_AddNumberToObject(o, "requests_failed", (double)m->failed);
    cJSON_AddNumberToObject(o, "requests_retried_on_new_connection", (double)m->retried);
    cJSON_AddNumberToObject(o, "error_rate", m->error_rate);
    cJSON_AddNumberToObject(o, "output_speed_p25_tokens_per_s", m->speed_p25);
    cJSON_AddNumberToObject(o, "output_speed_p50_tokens_per_s", m->speed_p50);
    json_add_num_or_null(o, "ttft_p50_s", m->ttft_p50);
    json_add_num_or_null(o, "ttft_p95_s", m->ttft_p95);
    cJSON_AddNumberToObject(o, "e2e_latency_p50_s", m->e2e_p50);
    cJSON_AddNumberToObject(o, "system_output_tokens_per_s", m->output_tokens_per_s);
    cJSON_AddNumberToObject(o, "trajectories_completed", (double)m->trajectories_done);
    cJSON_AddNumberToObject(o, "client_bytes_per_agent", m->client_bytes_per_agent);
    cJSON_AddNumberToObject(o, "prefix_cache_hit_ratio",
                            m->prompt_tokens > 0 ? m->cached_tokens / m->prompt_tokens : 0);
    return o;
}

void agent_results_json(cJSON *root, const struct agent_results *ar)
{
    cJSON *its = cJSON_AddArrayToObject(root, "iterations");
    for (size_t i = 0; i < ar->niters; i++) cJSON_AddItemToArray(its, iter_json(&ar->iters[i]));
    cJSON *search = cJSON_AddArrayToObject(root, "search");
    for (size_t i = 0; i < ar->nsearches; i++) {
        const struct search_result *r = &ar->searches[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "tier", r->tier.name);
        cJSON_AddNumberToObject(o, "slo_output_speed_p25_tokens_per_s", r->tier.speed_p25);
        cJSON_AddNumberToObject(o, "slo_ttft_p95_s", r->tier.ttft_p95);
        cJSON_AddBoolToObject(o, "complete", r->complete);
        /* max_agents is then what the completed iterations show, not the search's answer */
        cJSON_AddBoolToObject(o, "interrupted", !r->complete && ar->stopped);
        cJSON_AddNumberToObject(o, "max_agents", r->max_agents);
        cJSON_AddNumberToObject(o, "max_agents_per_accelerator",
                                (double)r->max_agents /
                                    (ar->accelerators > 0 ? ar->accelerators : 1));
        const char *basis;
        double w = per_mw_power(ar, r, &basis);
        if (w > 0) {
            cJSON_AddNumberToObject(o, "max_agents_per_mw", r->max_agents / (w / 1e6));
            cJSON_AddNumberToObject(o, "power_w", w);
        } else {
            cJSON_AddNullToObject(o, "max_agents_per_mw");
        }
        cJSON_AddStringToObject(o, "power_basis", basis);
        if (r->at_max) {
            cJSON_AddNumberToObject(o, "output_speed_p25_at_max_tokens_per_s",
                                    r->at_max->speed_p25);
            json_add_num_or_null(o, "ttft_p95_at_max_s", r->at_max->ttft_p95);
        }
        cJSON *steps = cJSON_AddArrayToObject(o, "iterations");
        for (int k = 0; k < r->nsteps; k++) {
            const struct search_step *st = &r->steps[k];
            cJSON *s = cJSON_CreateObject();
            cJSON_AddNumberToObject(s, "agents", st->agents);
            cJSON_AddBoolToObject(s, "pass", st->pass);
            cJSON_AddStringToObject(s, "reason", st->reason);
            cJSON_AddNumberToObject(s, "output_speed_p25_tokens_per_s", st->m.speed_p25);
            json_add_num_or_null(s, "ttft_p95_s", st->m.ttft_p95);
            cJSON_AddNumberToObject(s, "error_rate", st->m.error_rate);
            cJSON_AddNumberToObject(s, "requests", (double)st->m.requests);
            cJSON_AddNumberToObject(s, "phase", st->m.phase);
            cJSON_AddItemToArray(steps, s);
        }
        cJSON_AddItemToArray(search, o);
    }
}

/* The note after a search that did not finish: why, and that its max is not the answer. */
static void incomplete_note(const struct agent_results *ar, char *note, size_t len)
{
    if (!ar->stopped) {
        snprintf(note, len, "  (incomplete: an iteration was not measured, not final)");
        return;
    }
    for (size_t i = 0; i < ar->niters; i++)
        if (ar->iters[i].interrupted) {
            snprintf(note, len, "  (search interrupted during iteration %d, %d agents: not final)",
                     ar->iters[i].phase, ar->iters[i].agents);
            return;
        }
    snprintf(note, len, "  (search interrupted: not final)");
}

void agent_results_print(FILE *out, const struct agent_results *ar)
{
    fprintf(out, "%-28s %10s %14s %12s %18s %12s %10s\n", "tier", "max", "per", "per MW",
            "speed p25 at max", "TTFT p95", "iterations");
    fprintf(out, "%-28s %10s %14s %12s %18s %12s %10s\n", "", "agents", "accelerator", "agents",
            "tokens/s", "s", "");
    for (size_t i = 0; i < ar->nsearches; i++) {
        const struct search_result *r = &ar->searches[i];
        char mw[32] = "-";
        const char *basis;
        double w = per_mw_power(ar, r, &basis);
        if (w > 0) snprintf(mw, sizeof mw, "%.0f", r->max_agents / (w / 1e6));
        char speed[32] = "n/a", ttft[32] = "n/a"; /* no iteration passed */
        if (r->at_max) {
            snprintf(speed, sizeof speed, "%.2f", r->at_max->speed_p25);
            if (isfinite(r->at_max->ttft_p95))
                snprintf(ttft, sizeof ttft, "%.4f", r->at_max->ttft_p95);
        }
        /* an unfinished search's max is what its completed iterations show, a lower bound:
         * ">=" keeps it from reading as the answer */
        char max[32], note[160] = "";
        snprintf(max, sizeof max, "%s%d", r->complete ? "" : ">=", r->max_agents);
        if (!r->complete) incomplete_note(ar, note, sizeof note);
        fprintf(out, "%-28s %10s %14.3f %12s %18s %12s %10d%s\n", r->tier.name, max,
                (double)r->max_agents / (ar->accelerators > 0 ? ar->accelerators : 1), mw, speed,
                ttft, r->nsteps, note);
    }
}

char *agent_results_csv(const struct agent_results *ar)
{
    size_t cap = 4096, len = 0;
    char *csv = malloc(cap);
    len = (size_t)snprintf(csv, cap,
                           "tier,step,agents,pass,reason,output_speed_p25_tokens_per_s,"
                           "ttft_p95_s,error_rate,requests\n");
    for (size_t i = 0; i < ar->nsearches; i++) {
        const struct search_result *r = &ar->searches[i];
        for (int k = 0; k < r->nsteps; k++) {
            const struct search_step *st = &r->steps[k];
            char row[512];
            int n = snprintf(row, sizeof row, "%s,%d,%d,%d,%s,%.6f,%.6f,%.6f,%zu\n", r->tier.name,
                             k, st->agents, st->pass, st->reason, st->m.speed_p25,
                             isfinite(st->m.ttft_p95) ? st->m.ttft_p95 : -1.0, st->m.error_rate,
                             st->m.requests);
            if (len + (size_t)n + 1 > cap) {
                cap = (len + (size_t)n + 1) * 2;
                csv = realloc(csv, cap);
            }
            memcpy(csv + len, row, (size_t)n + 1);
            len += (size_t)n;
        }
    }
    return csv;
}

void agent_results_free(struct agent_results *ar)
{
    for (size_t i = 0; i < ar->nsearches; i++) search_result_free(&ar->searches[i]);
    free(ar->searches);
    free(ar->iters);
    memset(ar, 0, sizeof *ar);
}
