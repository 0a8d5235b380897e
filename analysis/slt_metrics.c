#include "slt_metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void classify(const struct req_facts *r, char *cls, size_t n)
{
    if (r->status && (r->status < 200 || r->status > 299))
        snprintf(cls, n, "http-%d", r->status);
    else if (r->transport_error)
        snprintf(cls, n, "%s", req_error_name((enum req_error)r->transport_error));
    else if (r->fail_class == FAIL_MALFORMED_CHUNK)
        snprintf(cls, n, "malformed-chunk");
    else if (r->fail_class == FAIL_ERROR_EVENT)
        snprintf(cls, n, "error-event");
    else if (r->fail_class == FAIL_NO_DONE)
        snprintf(cls, n, "no-done");
    else
        snprintf(cls, n, "other");
}

static void count_reason(struct phase_metrics *m, const struct req_facts *r)
{
    char cls[40];
    classify(r, cls, sizeof cls);
    for (size_t i = 0; i < m->nreasons; i++)
        if (!strcmp(m->reasons[i].cls, cls)) {
            m->reasons[i].count++;
            return;
        }
    if (m->nreasons == MAX_REASON_CLASSES) return;
    struct reason_count *rc = &m->reasons[m->nreasons++];
    snprintf(rc->cls, sizeof rc->cls, "%s", cls);
    snprintf(rc->example, sizeof rc->example, "%s", r->reason);
    rc->count = 1;
}

/* Everything but m->chunks, into a zeroed m. */
static void request_metrics(const struct run_facts *f, const struct phase_info *ph,
                            struct phase_metrics *m)
{
    m->info = *ph;
    int64_t ws = ph->t_window_start, we = ph->t_window_end;
    m->window_s = (double)(we - ws) / 1e9;
    struct dvec speed = {0}, e2e_speed = {0}, ttft = {0}, ttfb = {0}, e2e = {0}, out = {0},
                in = {0}, cached = {0}, lag = {0}, sv_prompt = {0}, sv_pred = {0}, sv_ttft = {0},
                sv_window = {0};
    double io_tokens = 0;
    for (size_t i = 0; i < f->nreqs; i++) {
        const struct req_facts *r = &f->reqs[i];
        if (r->phase != ph->index) continue;
        m->sent_all++;
        if (r->failed)
            m->failed_all++;
        else
            m->succeeded_all++;
        m->retried_all += r->retried != 0;
        int in_window = r->t_sched >= ws && r->t_sched < we;
        if (in_window) {
            m->sent++;
            m->retried += r->retried != 0;
            if (r->failed) {
                m->failed++;
                count_reason(m, r);
            } else {
                m->succeeded++;
            }
            if (r->n_token_events > 0) m->with_output++;
            if (r->held_by_cap)
                m->held_by_cap++;
            else if (r->t_written)
                dvec_push(&lag, (double)(r->t_written - r->t_sched) / 1e9);
        }
        const struct tok_store *ts = req_tokens(f, r);
        /* a failed request's tokens are not served output: they count in no throughput */
        int64_t t = r->t_first_token;
        for (size_t k = r->tok_first; !r->failed && k < r->tok_first + r->tok_count; k++) {
            t = tok_time(ts, k, t);
            if (t >= ws && t < we) m->output_tokens_in_window += tok_share(r, ts, k);
        }
        if (!r->failed && r->t_done >= ws && r->t_done < we)
            io_tokens += (double)(r->prompt_tokens + r->completion_tokens);
        if (r->failed || !r->t_first_token || r->t_first_token < ws || r->t_first_token >= we)
            continue;
        dvec_push(&ttft, (double)(r->t_first_token - r->t_sched) / 1e9);
        if (r->has_server_timings) {
            dvec_push(&sv_prompt, r->server_prompt_ms);
            dvec_push(&sv_pred, r->server_predicted_ms);
            dvec_push(&sv_ttft,
                      (double)(r->t_first_token - r->t_written) / 1e6 - r->server_prompt_ms);
            dvec_push(&sv_window,
                      (double)(r->t_last_token - r->t_first_token) / 1e6 - r->server_predicted_ms);
        }
        if (r->t_first_byte) dvec_push(&ttfb, (double)(r->t_first_byte - r->t_sched) / 1e9);
        dvec_push(&e2e, (double)(r->t_done - r->t_sched) / 1e9);
        dvec_push(&out, (double)r->completion_tokens);
        dvec_push(&in, (double)r->prompt_tokens);
        dvec_push(&cached, (double)r->cached_tokens);
        if (r->output_estimated) m->estimated_outputs++;
        if (r->finish_reason && !strcmp(r->finish_reason, "length")) m->forced_length++;
        if (r->t_done > r->t_sched)
            dvec_push(&e2e_speed,
                      (double)r->completion_tokens / ((double)(r->t_done - r->t_sched) / 1e9));
        double v = req_output_speed(r);
        if (isnan(v))
            m->speed_excluded++;
        else
            dvec_push(&speed, v);
    }
    m->response_rate = m->sent ? (double)m->with_output / (double)m->sent : 0;
    m->system_output_tps = m->window_s > 0 ? m->output_tokens_in_window / m->window_s : 0;
    m->system_io_tps = m->window_s > 0 ? (io_tokens) / m->window_s : 0;
    summarise(speed.v, speed.n, &m->speed);
    summarise(e2e_speed.v, e2e_speed.n, &m->e2e_speed);
    summarise(ttft.v, ttft.n, &m->ttft);
    summarise(ttfb.v, ttfb.n, &m->ttfb);
    summarise(e2e.v, e2e.n, &m->e2e);
    summarise(out.v, out.n, &m->output_tokens);
    summarise(in.v, in.n, &m->input_tokens);
    summarise(cached.v, cached.n, &m->cached_tokens);
    summarise(lag.v, lag.n, &m->dispatch_lag_s);
    summarise(sv_prompt.v, sv_prompt.n, &m->server_prompt_ms);
    summarise(sv_pred.v, sv_pred.n, &m->server_predicted_ms);
    summarise(sv_ttft.v, sv_ttft.n, &m->ttft_minus_server_prompt_ms);
    summarise(sv_window.v, sv_window.n, &m->decode_window_minus_server_predicted_ms);
    value_counts_summarise(phase_figure(f, ph, FIGURE_LAG), &m->client_lag_us);
    value_counts_summarise(phase_figure(f, ph, FIGURE_USER_GAP), &m->kernel_to_user_us);
    value_counts_summarise(phase_figure(f, ph, FIGURE_PACING), &m->emu_pacing_us);
    dvec_free(&speed);
    dvec_free(&e2e_speed);
    dvec_free(&ttft);
    dvec_free(&ttfb);
    dvec_free(&e2e);
    dvec_free(&out);
    dvec_free(&in);
    dvec_free(&cached);
    dvec_free(&lag);
    dvec_free(&sv_prompt);
    dvec_free(&sv_pred);
    dvec_free(&sv_ttft);
    dvec_free(&sv_window);
}

void slt_phase_metrics(const struct run_facts *f, const struct phase_info *ph,
                       struct phase_metrics *m)
{
    memset(m, 0, sizeof *m);
    request_metrics(f, ph, m);
    chunk_metrics_compute(f, ph, &m->chunks);
}

/* A phase's tasks, taken in turn by the threads: its per-request part, then its per-chunk
 * part in slices of the requests (each part is a pass over every token event of the phase;
 * the per-chunk one is the longer, so it is sliced for the threads to share), the slices then
 * added in order. */
struct phase_tasks {
    const struct run_facts *f;
    struct phase_metrics *out;
    struct chunk_pass *slices; /* nslices a phase */
    size_t nslices;
    _Atomic size_t next;
};

static void *run_phase_tasks(void *arg)
{
    struct phase_tasks *pt = arg;
    const struct run_facts *f = pt->f;
    size_t per_phase = 1 + pt->nslices;
    for (size_t i; (i = atomic_fetch_add(&pt->next, 1)) < per_phase * f->nphases;) {
        size_t k = i / per_phase, task = i % per_phase;
        const struct phase_info *ph = &f->phases[k];
        if (!task) {
            request_metrics(f, ph, &pt->out[k]);
            continue;
        }
        size_t slice = task - 1, n = pt->nslices;
        chunk_pass_run(f, ph, f->nreqs * slice / n, f->nreqs * (slice + 1) / n,
                       &pt->slices[k * n + slice]);
    }
    return NULL;
}

void slt_phases_metrics(const struct run_facts *f, struct phase_metrics *out, unsigned threads)
{
    memset(out, 0, f->nphases * sizeof *out);
    if (threads > FACTS_MAX_THREADS) threads = FACTS_MAX_THREADS;
    /* a few slices a thread: the per-request part and the slices then even out */
    size_t nslices = threads > 1 ? 4 * (size_t)threads : 1;
    struct phase_tasks pt = {.f = f, .out = out, .nslices = nslices};
    pt.slices = calloc(f->nphases * nslices + 1, sizeof *pt.slices);
    if (!pt.slices) {
        /* each phase in one pass, on this thread */
        for (size_t k = 0; k < f->nphases; k++) slt_phase_metrics(f, &f->phases[k], &out[k]);
        return;
    }
    atomic_init(&pt.next, 0);
    pthread_t th[FACTS_MAX_THREADS];
    unsigned started = 0;
    for (unsigned t = 1; t < threads && t < (1 + nslices) * f->nphases; t++)
        if (!pthread_create(&th[started], NULL, run_phase_tasks, &pt)) started++;
    run_phase_tasks(&pt); /* a thread that did not start leaves its tasks to this one */
    for (unsigned t = 0; t < started; t++) pthread_join(th[t], NULL);
    for (size_t k = 0; k < f->nphases; k++) {
        struct chunk_pass *first = &pt.slices[k * nslices];
        for (size_t j = 1; j < nslices; j++) chunk_pass_add(first, &first[j]);
        chunk_metrics_finish(f, &f->phases[k], first, &out[k].chunks);
    }
    free(pt.slices);
}

int slt_plateau_reached(const double *tp, size_t n, double ratio, int patience)
{
    double best = 0;
    int below = 0;
    for (size_t i = 0; i < n; i++) {
        if (tp[i] < ratio * best) {
            below++;
        } else {
            below = 0;
        }
        if (tp[i] > best) best = tp[i];
    }
    return below >= patience;
}
