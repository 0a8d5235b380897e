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
    else if (r->fail_class == FAIL_BAD_USAGE)
        snprintf(cls, n, "bad-usage");
    else
        snprintf(cls, n, "other");
}

/* r's failure into a list of failures by class (the window's, or the whole phase's) */
static void count_reason(struct reason_count *reasons, size_t *n, const struct req_facts *r)
{
    char cls[40];
    classify(r, cls, sizeof cls);
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(reasons[i].cls, cls)) {
            reasons[i].count++;
            return;
        }
    if (*n == MAX_REASON_CLASSES) return;
    struct reason_count *rc = &reasons[(*n)++];
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
    m->window_s = stamps_apart(ws, we, 1e9);
    struct dvec speed = {0}, e2e_speed = {0}, ttft = {0}, ttfb = {0}, e2e = {0}, out = {0},
                in = {0}, cached = {0}, lag = {0}, sv_prompt = {0}, sv_pred = {0}, sv_ttft = {0},
                sv_window = {0};
    double io_tokens = 0;
    for (size_t i = 0; i < f->nreqs; i++) {
        const struct req_facts *r = &f->reqs[i];
        if (r->phase != ph->index) continue;
        m->sent_all++;
        if (r->failed) {
            m->failed_all++;
            count_reason(m->reasons_all, &m->nreasons_all, r);
        } else {
            m->succeeded_all++;
        }
        m->retried_all += r->retried != 0;
        int in_window = r->t_sched >= ws && r->t_sched < we;
        if (in_window) {
            m->sent++;
            m->retried += r->retried != 0;
            if (r->failed) {
                m->failed++;
                count_reason(m->reasons, &m->nreasons, r);
            } else {
                m->succeeded++;
            }
            if (r->n_token_events > 0) m->with_output++;
            if (r->held_by_cap)
                m->held_by_cap++;
            else if (r->t_written)
                dvec_push_known(&lag, stamps_apart(r->t_sched, r->t_written, 1e9));
        }
        const struct tok_store *ts = req_tokens(f, r);
        /* a failed request's tokens are not served output: they count in no throughput */
        int64_t t = r->t_first_token;
        for (size_t k = r->tok_first; !r->failed && k < r->tok_first + r->tok_count; k++) {
            t = tok_time(ts, k, t);
            if (t >= ws && t < we) m->output_tokens_in_window += tok_share(r, ts, k);
        }
        if (!r->failed && r->t_done >= ws && r->t_done < we)
            io_tokens += (double)r->prompt_tokens + (double)r->completion_tokens;
        if (r->failed || !r->t_first_token || r->t_first_token < ws || r->t_first_token >= we)
            continue;
        /* a damaged log's stamps too far apart give no figure (stamps_apart) */
        dvec_push_known(&ttft, stamps_apart(r->t_sched, r->t_first_token, 1e9));
        if (r->has_server_timings) {
            dvec_push(&sv_prompt, r->server_prompt_ms);
            dvec_push(&sv_pred, r->server_predicted_ms);
            dvec_push_known(&sv_ttft, stamps_apart(r->t_written, r->t_first_token, 1e6) -
                                          r->server_prompt_ms);
            dvec_push_known(&sv_window, stamps_apart(r->t_first_token, r->t_last_token, 1e6) -
                                            r->server_predicted_ms);
        }
        if (r->t_first_byte) dvec_push_known(&ttfb, stamps_apart(r->t_sched, r->t_first_byte, 1e9));
        dvec_push_known(&e2e, stamps_apart(r->t_sched, r->t_done, 1e9));
        dvec_push(&out, (double)r->completion_tokens);
        dvec_push(&in, (double)r->prompt_tokens);
        dvec_push(&cached, (double)r->cached_tokens);
        if (r->output_estimated) m->estimated_outputs++;
        if (r->finish_reason && !strcmp(r->finish_reason, "length")) m->forced_length++;
        if (r->t_done > r->t_sched)
            dvec_push_known(&e2e_speed, (double)r->completion_tokens /
                                            stamps_apart(r->t_sched, r->t_done, 1e9));
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
 * the per-chunk one is the longer, so it is sliced for the threads to share). The thread that
 * ends a phase's last slice adds its slices in order and finishes the phase (its ITL passes
 * too), so phases finish side by side and their slices' tables do not wait for the end. */
struct phase_tasks {
    const struct run_facts *f;
    struct phase_metrics *out;
    struct chunk_pass *slices;   /* nslices a phase */
    _Atomic size_t *slices_left; /* a phase's slices not yet done */
    size_t nslices;
    _Atomic size_t next;
};

/* The most slices a phase: a few a thread evens out the tasks; more would only add tables. */
#define MAX_SLICES 32

static void *run_phase_tasks(void *arg)
{
    struct phase_tasks *pt = arg;
    const struct run_facts *f = pt->f;
    size_t n = pt->nslices, per_phase = 1 + n;
    for (size_t i; (i = atomic_fetch_add(&pt->next, 1)) < per_phase * f->nphases;) {
        size_t k = i / per_phase, task = i % per_phase;
        const struct phase_info *ph = &f->phases[k];
        if (!task) {
            request_metrics(f, ph, &pt->out[k]);
            continue;
        }
        size_t slice = task - 1;
        struct chunk_pass *first = &pt->slices[k * n];
        chunk_pass_run(f, ph, f->nreqs * slice / n, f->nreqs * (slice + 1) / n, &first[slice]);
        /* the last slice's thread sees every other slice's writes (acquire-release) */
        if (atomic_fetch_sub(&pt->slices_left[k], 1) != 1) continue;
        for (size_t j = 1; j < n; j++) chunk_pass_add(first, &first[j]);
        chunk_metrics_finish(f, ph, first, &pt->out[k].chunks);
    }
    return NULL;
}

void slt_phases_metrics(const struct run_facts *f, struct phase_metrics *out, unsigned threads)
{
    memset(out, 0, f->nphases * sizeof *out);
    if (threads > FACTS_MAX_THREADS) threads = FACTS_MAX_THREADS;
    size_t nslices = threads > 1 ? 4 * (size_t)threads : 1;
    if (nslices > MAX_SLICES) nslices = MAX_SLICES;
    struct phase_tasks pt = {.f = f, .out = out, .nslices = nslices};
    pt.slices = calloc(f->nphases * nslices + 1, sizeof *pt.slices);
    pt.slices_left = calloc(f->nphases + 1, sizeof *pt.slices_left);
    if (!pt.slices || !pt.slices_left) {
        /* each phase in one pass, on this thread */
        free(pt.slices);
        free(pt.slices_left);
        for (size_t k = 0; k < f->nphases; k++) slt_phase_metrics(f, &f->phases[k], &out[k]);
        return;
    }
    for (size_t k = 0; k < f->nphases; k++) atomic_init(&pt.slices_left[k], nslices);
    atomic_init(&pt.next, 0);
    pthread_t th[FACTS_MAX_THREADS];
    unsigned started = 0;
    for (unsigned t = 1; t < threads && t < (1 + nslices) * f->nphases; t++)
        if (!pthread_create(&th[started], NULL, run_phase_tasks, &pt)) started++;
    run_phase_tasks(&pt); /* a thread that did not start leaves its tasks to this one */
    for (unsigned t = 0; t < started; t++) pthread_join(th[t], NULL);
    free(pt.slices);
    free(pt.slices_left);
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
