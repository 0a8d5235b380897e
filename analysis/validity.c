#include "validity.h"

#include "results.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void note(struct run_validity *v, const char *fmt, ...)
{
    if (v->nnotes == VALIDITY_MAX_NOTES) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->notes[v->nnotes++], sizeof v->notes[0], fmt, ap);
    va_end(ap);
}

/* Marks the run not valid; the first reason is the one printed. */
static void invalid(struct run_validity *v, const char *fmt, ...)
{
    char text[sizeof v->why];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (v->valid) snprintf(v->why, sizeof v->why, "%s", text);
    v->valid = 0;
    note(v, "%s", text);
}

/* The classes shown in a verdict; the rest are summed, so the sentence stays short. */
#define VERDICT_CLASSES 3

/* Index of the most common class not yet taken (ties: the first listed), or n when none is
 * left. */
static size_t most_common(const struct reason_count *reasons, size_t n, const int *taken)
{
    size_t best = n;
    for (size_t i = 0; i < n; i++)
        if (!taken[i] && (best == n || reasons[i].count > reasons[best].count)) best = i;
    return best;
}

/* Appends to the string in out, which may be cut short at outlen. */
static void append(char *out, size_t outlen, const char *fmt, ...)
{
    size_t used = strlen(out);
    if (used + 1 >= outlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + used, outlen - used, fmt, ap);
    va_end(ap);
}

/* The failures that made a phase invalid, by class with their counts, the most common first
 * ("connect: 84, connection-reset: 4"): the failure lines (results.c) list classes in the
 * order they first occurred, and the first is often not what happened to most requests (a
 * server that dies resets the streams in flight, then refuses every connect). */
static const char *classes_by_count(const struct reason_count *reasons, size_t n, char *out,
                                    size_t outlen)
{
    int taken[MAX_REASON_CLASSES] = {0};
    size_t rest = 0;
    if (!n) return "no class recorded";
    out[0] = 0;
    for (size_t shown = 0; shown < n; shown++) {
        size_t i = most_common(reasons, n, taken);
        taken[i] = 1;
        if (shown < VERDICT_CLASSES)
            append(out, outlen, "%s%s: %zu", shown ? ", " : "", reasons[i].cls, reasons[i].count);
        else
            rest += reasons[i].count;
    }
    if (rest) append(out, outlen, ", %zu in other classes", rest);
    return out;
}

/* An SLT phase measured something only if requests sent in its window completed. */
static void slt_phase(const struct phase_metrics *m, struct run_validity *v)
{
    int k = m->info.index, c = m->info.concurrency;
    char classes[256];
    if (m->sent_all && !m->succeeded_all) {
        invalid(v, "phase %d (concurrency %d): all %zu of its requests failed (%s)", k, c,
                m->sent_all,
                classes_by_count(m->reasons_all, m->nreasons_all, classes, sizeof classes));
    } else if (!m->sent) {
        invalid(v,
                "phase %d (concurrency %d): no request was sent in its %.1f s measured window "
                "(requests outlast the window: lengthen --phase-s, or check that the server "
                "ends its responses)",
                k, c, m->window_s);
    } else if (!m->succeeded) {
        invalid(v,
                "phase %d (concurrency %d): none of the %zu requests sent in its measured "
                "window completed (%s)",
                k, c, m->sent, classes_by_count(m->reasons, m->nreasons, classes, sizeof classes));
    } else if ((double)m->failed > SLT_MAX_FAILED_SHARE * (double)m->sent) {
        invalid(v,
                "phase %d (concurrency %d): %zu of %zu requests in its measured window "
                "failed, more than %.0f %% (%s)",
                k, c, m->failed, m->sent, 100 * SLT_MAX_FAILED_SHARE,
                classes_by_count(m->reasons, m->nreasons, classes, sizeof classes));
    }
}

static int slt_comparable(const char *header_json, struct run_validity *v)
{
    cJSON *h = cJSON_Parse(header_json);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(h, "config");
    const cJSON *phase_s = cJSON_GetObjectItemCaseSensitive(cfg, "phase_s");
    const cJSON *ramp_s = cJSON_GetObjectItemCaseSensitive(cfg, "ramp_s");
    int ok = cJSON_IsNumber(phase_s) && phase_s->valuedouble >= SLT_COMPARABLE_PHASE_S &&
             cJSON_IsNumber(ramp_s) && ramp_s->valuedouble >= SLT_COMPARABLE_RAMP_S;
    cJSON_Delete(h);
    if (!ok)
        note(v,
             "phases shorter than %.0f s or ramp shorter than %.0f s: not comparable with "
             "published SLT figures",
             SLT_COMPARABLE_PHASE_S, SLT_COMPARABLE_RAMP_S);
    return ok;
}

/* Open-loop arrivals: a phase whose requests left later than due by more than the bound (p99)
 * measured a client that fell behind its schedule, not the server. Not AA's closed loop, so
 * never comparable with published SLT figures. Returns 1 when the run is open-loop. */
static int slt_arrivals(const struct run_results *res, struct run_validity *v)
{
    cJSON *h = cJSON_Parse(res->facts.header_json);
    const cJSON *a =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(h, "config"), "arrival");
    const cJSON *bound = cJSON_GetObjectItemCaseSensitive(a, "max_dispatch_lag_s");
    int open = a != NULL;
    for (size_t i = 0; cJSON_IsNumber(bound) && i < res->nphases; i++) {
        const struct phase_metrics *m = &res->phases[i];
        if (m->info.arrivals_unsent > 0)
            invalid(v,
                    "phase %d: %lld requests fell due but were never sent before the phase "
                    "ended (the server kept --max-in-flight full, or the client fell behind): "
                    "its figures leave out the load it was asked to carry; lower --rate, or "
                    "raise --max-in-flight",
                    m->info.index, (long long)m->info.arrivals_unsent);
        else if (m->dispatch_lag_s.n && m->dispatch_lag_s.p99 > bound->valuedouble)
            invalid(v,
                    "phase %d: the client fell behind its arrival schedule (requests left %.4f s "
                    "after they were due at p99, over --max-dispatch-lag-s %g): use more "
                    "--threads, a lower --rate, or another load host",
                    m->info.index, m->dispatch_lag_s.p99, bound->valuedouble);
    }
    if (open)
        note(v, "open-loop arrivals: not the closed loop of AA's SLT, so not comparable with "
                "its published figures");
    cJSON_Delete(h);
    return open;
}

void validity_decide(const struct run_results *res, struct run_validity *v)
{
    const struct run_facts *f = &res->facts;
    memset(v, 0, sizeof *v);
    v->valid = 1;
    if (f->interrupted)
        invalid(v, "the run was stopped early (interrupted, or its built-in emulator exited): "
                   "figures cover what was received");
    else if (!f->run_ended)
        invalid(v, "the event log has no end mark (the run died): figures cover what was flushed");
    if (f->torn_bodies) note(v, "some event bodies were not flushed before the run stopped");
    if (f->damaged_bodies)
        invalid(v,
                "%zu event bodies in bodies.bin are damaged (keyed against bytes outside the "
                "file, or with lengths that disagree) and were left out: the log was altered "
                "after the run; analyse an intact copy",
                f->damaged_bodies);
    if (f->tap_clock_note[0]) note(v, "%s", f->tap_clock_note);
    if (!res->nphases) invalid(v, "no phase was measured");

    size_t failed = 0, sent = 0, estimated = 0, succeeded = 0;
    for (size_t i = 0; i < res->nphases; i++) {
        failed += res->phases[i].failed;
        sent += res->phases[i].sent;
        succeeded += res->phases[i].succeeded;
        estimated += res->phases[i].estimated_outputs;
    }
    if (failed) note(v, "%zu of %zu requests in measured windows failed", failed, sent);
    if (estimated)
        note(v, "%zu requests had no usage; their output tokens are estimated (bytes/4)",
             estimated);

    if (res->is_agents) {
        v->rule = "valid = run complete and at least one iteration's window held a completed "
                  "request (failed requests count against each iteration's verdict); comparable "
                  "= valid and every window met the steady-state gates (>= 600 s, >= 30 "
                  "trajectories, >= 3 per agent)";
        for (size_t i = 0; i < res->nphases; i++)
            if (!res->phases[i].succeeded)
                note(v,
                     "iteration %d (%d agents): no request sent in its window completed; the "
                     "iteration fails its SLO",
                     res->phases[i].info.index, res->phases[i].info.concurrency);
        if (res->nphases && !succeeded)
            invalid(v,
                    "no request sent in any iteration's window completed (%zu sent, %zu "
                    "failed): the server was never measured",
                    sent, failed);
        v->comparable = res->nphases > 0;
        for (size_t i = 0; i < f->nphases; i++)
            if (!(f->phases[i].flags & PHASE_GATES_MET)) v->comparable = 0;
        if (!v->comparable)
            note(v, "windows shorter than 10 min or fewer than 30 trajectories (3 per agent) per "
                    "window: not comparable with published AgentPerf figures");
    } else {
        v->rule = "valid = run complete, and in every phase: some request sent in its measured "
                  "window completed, not all of the phase's requests failed, and at most 1 % of "
                  "the window's requests failed; comparable = valid, phase_s >= 180 and ramp_s "
                  ">= 30";
        for (size_t i = 0; i < res->nphases; i++) slt_phase(&res->phases[i], v);
        int open = slt_arrivals(res, v);
        v->comparable = slt_comparable(f->header_json, v) && !open;
    }
    v->comparable = v->comparable && v->valid;
}
