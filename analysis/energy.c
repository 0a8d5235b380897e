#include "energy.h"

#include "must_alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Value of a piecewise-linear series at t (t inside [t[i], t[i+1]]). */
static double lerp(const int64_t *t, const double *v, size_t i, int64_t at)
{
    if (t[i + 1] == t[i]) return v[i];
    return v[i] + (v[i + 1] - v[i]) * (double)(at - t[i]) / (double)(t[i + 1] - t[i]);
}

int energy_over_window(const struct power_series *s, int64_t ws, int64_t we, double period_s,
                       struct energy_window *out)
{
    memset(out, 0, sizeof *out);
    out->source = s->source;
    out->device = s->device;
    /* what is not measured is not 0: null in results.json (0 W read as a measurement) */
    out->joules = out->mean_w = out->largest_gap_s = NAN;
    int64_t span;
    /* a damaged log's window too wide for int64 measures nothing */
    if (we <= ws || s->n == 0 || __builtin_sub_overflow(we, ws, &span)) return -1;
    size_t ne = 0;
    for (size_t i = 0; i < s->n; i++) ne += !isnan(s->energy_j[i]);
    int counter = ne >= 2;
    const double *v = counter ? s->energy_j : s->watts;
    out->method = counter ? "energy-counter" : "trapezoid";
    /* the usable points: readings that carry the value integrated */
    size_t *idx = must_calloc(s->n, sizeof *idx, "a power source's readings"), n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!isnan(v[i])) idx[n++] = i;
    for (size_t k = 0; k < n; k++) out->samples += s->t[idx[k]] >= ws && s->t[idx[k]] < we;
    int rc = -1;
    if (n < 2) goto done;
    int64_t a = ws > s->t[idx[0]] ? ws : s->t[idx[0]];
    int64_t b = we < s->t[idx[n - 1]] ? we : s->t[idx[n - 1]];
    if (b <= a) goto done;
    out->coverage = (double)(b - a) / (double)span;
    double gap = (double)((a - ws) > (we - b) ? (a - ws) : (we - b)) / 1e9;
    double joules = 0;
    for (size_t k = 0; k + 1 < n; k++) {
        int64_t t0 = s->t[idx[k]], t1 = s->t[idx[k + 1]], dt;
        /* readings too far apart for int64 (a damaged log's stamps) are no interval */
        if (t1 <= a || t0 >= b || __builtin_sub_overflow(t1, t0, &dt)) continue;
        double g = (double)dt / 1e9;
        if (g > gap) gap = g;
        int64_t lo = t0 < a ? a : t0, hi = t1 > b ? b : t1;
        int64_t tt[2] = {t0, t1};
        double vv[2] = {v[idx[k]], v[idx[k + 1]]};
        double v_lo = lerp(tt, vv, 0, lo), v_hi = lerp(tt, vv, 0, hi);
        joules += counter ? v_hi - v_lo : 0.5 * (v_lo + v_hi) * (double)(hi - lo) / 1e9;
    }
    /* readings too large to integrate (a damaged log's) measure nothing */
    if (!isfinite(joules)) {
        out->coverage = 0;
        goto done;
    }
    out->joules = joules;
    out->mean_w = joules / ((double)(b - a) / 1e9);
    out->largest_gap_s = gap;
    out->complete = out->coverage >= 0.95 && gap <= 3 * period_s + 1e-9;
    rc = 0;
done:
    free(idx);
    return rc;
}

void energy_phase(const struct run_facts *f, int64_t ws, int64_t we, double period_s,
                  const int *accelerator_only, int nsources, double output_tokens,
                  struct phase_power *out)
{
    memset(out, 0, sizeof *out);
    out->accel_complete = out->system_complete = 1;
    int accel_missing = 0, system_missing = 0; /* a series with nothing in the window */
    double window = stamps_apart(ws, we, 1e9); /* NAN: a damaged log's window, no energy */
    for (size_t i = 0; i < f->npower && out->nseries < MAX_POWER_SERIES; i++) {
        const struct power_series *s = &f->power[i];
        int accel = s->source < nsources && accelerator_only[s->source];
        struct energy_window w;
        int ok = energy_over_window(s, ws, we, period_s, &w) == 0;
        if (!ok) {
            w.complete = 0;
            w.method = "none";
        }
        out->series[out->nseries] = w;
        out->accel[out->nseries++] = accel;
        /* the window's joules: an incomplete series still counts what it covered, and the
         * phase is marked incomplete; a series with nothing in the window leaves the sum
         * unknown (null), never a sum that counts its device as 0 W */
        if (accel) {
            out->has_accel = 1;
            if (ok) out->accel_w += w.mean_w;
            accel_missing |= !ok;
            out->accel_complete &= w.complete;
        } else {
            out->has_system = 1;
            if (ok) out->system_w += w.mean_w;
            system_missing |= !ok;
            out->system_complete &= w.complete;
        }
    }
    if (accel_missing || !out->has_accel) out->accel_w = NAN;
    if (system_missing || !out->has_system) out->system_w = NAN;
    out->accel_j = out->accel_w * window;
    out->system_j = out->system_w * window;
    double j = out->has_accel ? out->accel_j : out->has_system ? out->system_j : NAN;
    out->joules_per_output_token = output_tokens > 0 && !isnan(j) ? j / output_tokens : NAN;
    if (!out->has_accel) out->accel_complete = 0;
    if (!out->has_system) out->system_complete = 0;
}
