/* Energy over a window on synthetic series with known integrals: a watts ramp (trapezoid,
 * edges interpolated), an energy counter, partial coverage and gaps. */
#include "check.h"
#include "energy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S          1000000000LL
#define NEAR(a, b) (fabs((double)(a) - (double)(b)) < 1e-6 * (1 + fabs((double)(b))))

static struct power_series series(int n, int64_t t0, int64_t dt, double (*w)(double),
                                  double (*e)(double))
{
    struct power_series s = {0};
    s.n = s.cap = (size_t)n;
    s.t = calloc((size_t)n, sizeof *s.t);
    s.watts = calloc((size_t)n, sizeof *s.watts);
    s.energy_j = calloc((size_t)n, sizeof *s.energy_j);
    for (int i = 0; i < n; i++) {
        s.t[i] = t0 + i * dt;
        double x = (double)s.t[i] / S;
        s.watts[i] = w ? w(x) : NAN;
        s.energy_j[i] = e ? e(x) : NAN;
    }
    return s;
}

static void drop(struct power_series *s)
{
    free(s->t);
    free(s->watts);
    free(s->energy_j);
}

static double ramp(double x) { return 100 + 10 * x; }      /* watts, linear in seconds */
static double counter(double x) { return 1000 + 250 * x; } /* joules: 250 W */
static double flat(double x)
{
    (void)x;
    return 400;
}

int main(void)
{
    struct energy_window w;
    /* samples every 0.1 s from 0 to 10 s; window [2.05, 7.05) s: exact for a linear ramp,
     * since the trapezoid rule is exact on straight lines and the edges are interpolated */
    struct power_series a = series(101, 0, S / 10, ramp, NULL);
    CHECK(energy_over_window(&a, 2 * S + S / 20, 7 * S + S / 20, 0.1, &w) == 0, "ramp window");
    double want = 100 * 5 + 5 * (7.05 * 7.05 - 2.05 * 2.05); /* ∫ 100 + 10x dx */
    CHECK(NEAR(w.joules, want), "ramp: %g J, expected %g", w.joules, want);
    CHECK(NEAR(w.mean_w, want / 5), "ramp mean %g W, expected %g", w.mean_w, want / 5);
    CHECK(w.complete && NEAR(w.coverage, 1) && !strcmp(w.method, "trapezoid") && w.samples == 50,
          "ramp: complete, trapezoid, 50 samples in the window (got %zu)", w.samples);
    drop(&a);
    /* an energy counter is differenced, interpolated at the edges */
    struct power_series b = series(21, 0, S / 2, flat, counter);
    CHECK(energy_over_window(&b, S / 4, 9 * S + S / 4, 0.5, &w) == 0, "counter window");
    CHECK(NEAR(w.joules, 250 * 9.0) && !strcmp(w.method, "energy-counter"),
          "counter: %g J by %s, expected 2250 by energy-counter", w.joules, w.method);
    drop(&b);
    /* the series starts 2 s into a 10 s window: 80 % coverage, incomplete */
    struct power_series c = series(81, 2 * S, S / 10, flat, NULL);
    CHECK(energy_over_window(&c, 0, 10 * S, 0.1, &w) == 0, "partial window");
    CHECK(NEAR(w.coverage, 0.8) && !w.complete && NEAR(w.mean_w, 400),
          "partial: coverage %g, complete %d, mean %g W", w.coverage, w.complete, w.mean_w);
    drop(&c);
    /* a 1 s hole in a 0.1 s series is a gap over 3 periods: incomplete */
    struct power_series d = series(101, 0, S / 10, flat, NULL);
    for (int i = 40; i < 101; i++) d.t[i] += S;
    CHECK(energy_over_window(&d, S, 9 * S, 0.1, &w) == 0 && !w.complete &&
              NEAR(w.largest_gap_s, 1.1) && NEAR(w.mean_w, 400),
          "gap: largest %g s, complete %d", w.largest_gap_s, w.complete);
    drop(&d);
    return check_done("test_energy");
}
