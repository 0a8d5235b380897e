/* The device-clock converter on synthetic cross-timestamps with a known offset, drift and
 * noise: offset and drift are recovered, conversions land within the noise, and the
 * reported uncertainty matches the noise put in. */
#include "check.h"
#include "ts_convert.h"

#include <math.h>
#include <stdint.h>

/* deterministic noise in [-amp, amp] */
static double noise(uint64_t *s, double amp)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(*s >> 11) / 9007199254740992.0 * 2 - 1) * amp;
}

static void case_clock(double hz, double drift_ppm, int64_t offset_ns, double noise_ns)
{
    struct ts_converter c;
    ts_conv_init(&c, hz);
    uint64_t seed = 42;
    const int64_t sys0 = 1795000000000000000LL; /* a 2026 CLOCK_REALTIME */
    /* device ticks: (sys - offset) * hz * (1 + drift) */
    double rate = hz * (1 + drift_ppm * 1e-6) / 1e9;
    for (int i = 0; i < 40; i++) {
        int64_t sys = sys0 + (int64_t)i * 1000000000LL; /* one pair per second */
        int64_t dev = (int64_t)llround((double)(sys - sys0 - offset_ns) * rate) + 5000000;
        ts_conv_add(&c, dev, sys + (int64_t)noise(&seed, noise_ns));
    }
    double worst = 0;
    for (int i = 0; i < 100; i++) {
        int64_t sys = sys0 + 35000000000LL + (int64_t)i * 37000000LL;
        int64_t dev = (int64_t)llround((double)(sys - sys0 - offset_ns) * rate) + 5000000;
        double err = fabs((double)(ts_conv_to_ns(&c, dev) - sys));
        if (err > worst) worst = err;
    }
    double tick_ns = 1e9 / hz;
    CHECK(worst <= noise_ns + tick_ns + 1,
          "%g Hz, drift %g ppm: conversion error %.1f ns, bound %.1f ns", hz, drift_ppm, worst,
          noise_ns + tick_ns + 1);
    CHECK(fabs(ts_conv_drift_ppm(&c) - drift_ppm) < 0.05 + noise_ns / 1e3 + tick_ns / 1e3,
          "%g Hz: drift estimated %.4f ppm, true %g ppm", hz, ts_conv_drift_ppm(&c), drift_ppm);
    double u = ts_conv_uncertainty_ns(&c);
    CHECK(u <= noise_ns + tick_ns && (noise_ns == 0 || u > noise_ns / 4),
          "%g Hz: uncertainty %.1f ns for noise of +-%.0f ns", hz, u, noise_ns);
    printf("%.0f Hz, drift %+.1f ppm, offset %lld ns, noise %.0f ns: worst error %.1f ns, drift "
           "%.4f ppm, uncertainty %.1f ns\n",
           hz, drift_ppm, (long long)offset_ns, noise_ns, worst, ts_conv_drift_ppm(&c), u);
}

int main(void)
{
    case_clock(1e9, 0, 0, 0);                    /* a real-time NIC clock already in ns */
    case_clock(1e9, 50, 123456789, 20);          /* a free-running NIC clock: 50 ppm fast */
    case_clock(156.25e6, -12.5, -987654321, 30); /* mlx5-style ticks at 156.25 MHz, slow */
    case_clock(2.4e9, 3, 42, 10);                /* a TSC */
    /* one pair: the nominal rate and that pair's offset */
    struct ts_converter c;
    ts_conv_init(&c, 1e6);
    ts_conv_add(&c, 1000, 5000000);
    CHECK(ts_conv_to_ns(&c, 2000) == 6000000,
          "one pair: 1 MHz ticks map at the nominal rate, got %lld",
          (long long)ts_conv_to_ns(&c, 2000));
    return check_done("ts_convert");
}
