#include "agent_metrics.h"

#include "stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void agent_iteration_metrics(const struct run_facts *f, const struct phase_info *ph,
                             struct iteration_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->phase = ph->index;
    m->agents = ph->concurrency;
    int64_t ws = ph->t_window_start, we = ph->t_window_end;
    m->window_s = stamps_apart(ws, we, 1e9);
    m->warmup_s = stamps_apart(ph->t_start, ws, 1e9);
    m->warmup_extended = !!(ph->flags & PHASE_WARMUP_EXTENDED);
    m->client_bytes_per_agent = ph->concurrency ? (double)ph->client_bytes / ph->concurrency : 0;
    struct dvec speed = {0}, ttft = {0}, e2e = {0};
    double out_tokens = 0;
    for (size_t i = 0; i < f->nreqs; i++) {
        const struct req_facts *r = &f->reqs[i];
        /* a failed request's tokens are not served output */
        const struct tok_store *ts = req_tokens(f, r);
        int64_t t = r->t_first_token;
        for (size_t k = r->tok_first;
             r->phase == ph->index && !r->failed && k < r->tok_first + r->tok_count; k++) {
            t = tok_time(ts, k, t);
            if (t >= ws && t < we) out_tokens += tok_share(r, ts, k);
        }
        if (r->phase != ph->index || r->t_sched < ws || r->t_sched >= we) continue;
        m->requests++;
        m->retried += r->retried != 0;
        m->prompt_tokens += (double)r->prompt_tokens;
        m->cached_tokens += (double)r->cached_tokens;
        if (r->failed || !r->t_first_token) {
            /* methodology.md §6.16: a failed request is TTFT = ∞ and speed = 0 */
            if (r->failed) m->failed++;
            dvec_push(&ttft, INFINITY);
            dvec_push(&speed, 0);
            continue;
        }
        /* a damaged log's stamps too far apart give no figure (stamps_apart) */
        dvec_push_known(&ttft, stamps_apart(r->t_sched, r->t_first_token, 1e9));
        dvec_push_known(&e2e, stamps_apart(r->t_sched, r->t_done, 1e9));
        double v = req_output_speed(r);
        if (!isnan(v)) dvec_push(&speed, v);
    }
    struct summary s;
    summarise(speed.v, speed.n, &s);
    m->speed_p25 = s.p25;
    m->speed_p50 = s.p50;
    /* percentiles over a set holding ∞: interpolation towards ∞ is ∞ */
    summarise(ttft.v, ttft.n, &s);
    m->ttft_p50 = s.p50;
    m->ttft_p95 = s.p95;
    if (isnan(m->ttft_p95)) m->ttft_p95 = INFINITY;
    if (isnan(m->ttft_p50)) m->ttft_p50 = INFINITY;
    summarise(e2e.v, e2e.n, &s);
    m->e2e_p50 = s.p50;
    m->error_rate = m->requests ? (double)m->failed / (double)m->requests : 0;
    m->output_tokens_per_s = m->window_s > 0 ? out_tokens / m->window_s : 0;
    for (size_t i = 0; i < f->ntraj; i++)
        if (f->traj_phase[i] == ph->index && f->traj_t[i] >= ws && f->traj_t[i] < we)
            m->trajectories_done++;
    dvec_free(&speed);
    dvec_free(&ttft);
    dvec_free(&e2e);
}

int slo_verdict(const struct iteration_metrics *m, const struct slo_tier *t, double max_error_rate,
                char *reason, size_t len)
{
    reason[0] = 0;
    size_t at = 0;
    if (m->requests == 0) {
        snprintf(reason, len, "no-requests");
        return 0;
    }
    if (!(m->speed_p25 >= t->speed_p25)) at += (size_t)snprintf(reason + at, len - at, "speed");
    if (!(m->ttft_p95 <= t->ttft_p95))
        at += (size_t)snprintf(reason + at, len - at, "%sttft", at ? "+" : "");
    if (m->error_rate > max_error_rate)
        at += (size_t)snprintf(reason + at, len - at, "%serrors", at ? "+" : "");
    return at == 0;
}

static int step(const struct slo_tier *tier, double max_err, measure_fn measure, void *arg,
                int agents, struct search_result *out)
{
    struct search_step st = {.agents = agents};
    if (measure(arg, agents, &st.m)) {
        out->complete = 0;
        return -1;
    }
    st.pass = slo_verdict(&st.m, tier, max_err, st.reason, sizeof st.reason);
    if (st.pass) snprintf(st.reason, sizeof st.reason, "pass");
    out->steps = realloc(out->steps, (size_t)(out->nsteps + 1) * sizeof *out->steps);
    out->steps[out->nsteps++] = st;
    return st.pass;
}

/* The highest passing count so far, and its metrics. A search cut short by a missing
 * measurement still reports it: it is what the measured iterations show (complete says it is
 * not the final answer). */
static void settle(struct search_result *out, int lo)
{
    out->max_agents = lo;
    out->at_max = NULL;
    for (int i = out->nsteps - 1; i >= 0; i--)
        if (out->steps[i].agents == lo && out->steps[i].pass) out->at_max = &out->steps[i].m;
}

void agent_search(const struct slo_tier *tier, int start, int resolution, int cap,
                  double max_error_rate, measure_fn measure, void *arg, struct search_result *out)
{
    memset(out, 0, sizeof *out);
    out->tier = *tier;
    out->complete = 1;
    if (start < 1) start = 1;
    int lo = 0, hi = -1, n = start;
    /* ramp: double until a fail (or the cap passes) */
    for (;;) {
        int r = step(tier, max_error_rate, measure, arg, n, out);
        if (r < 0) {
            settle(out, lo);
            return;
        }
        if (r == 1) {
            lo = n;
            if (n >= cap) break;
            n = n * 2 > cap ? cap : n * 2;
        } else {
            hi = n;
            break;
        }
    }
    /* bisect between the last pass and the first fail */
    int width = resolution > 1 ? resolution : 1;
    while (hi > 0 && hi - lo > width) {
        int mid = lo + (hi - lo) / 2;
        int r = step(tier, max_error_rate, measure, arg, mid, out);
        if (r < 0) {
            settle(out, lo);
            return;
        }
        if (r == 1)
            lo = mid;
        else
            hi = mid;
    }
    settle(out, lo);
}

void search_result_free(struct search_result *r)
{
    free(r->steps);
    memset(r, 0, sizeof *r);
}
