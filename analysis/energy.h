/* Energy over a measured window, from the power series in the event log:
 *  - a device with an energy counter: the counter, interpolated linearly at both window
 *    edges, differenced ("energy-counter");
 *  - otherwise its watts, linear between samples, interpolated at the edges and integrated
 *    by the trapezoid rule ("trapezoid");
 *  - coverage = share of the window inside the series' first and last sample; complete =
 *    coverage >= 95 % and no gap between samples longer than 3 sampling periods
 *    (methodology.md §8, as agentperf-local does);
 *  - a phase's accelerator power sums the accelerator-only sources; whole-system sources are
 *    summed apart; per-MW and joules per token use the accelerator figure. */
#ifndef STROBE_ENERGY_H
#define STROBE_ENERGY_H
#include "facts.h"

struct energy_window {
    int source, device;
    double joules, mean_w;
    size_t samples;
    double largest_gap_s, coverage;
    int complete;
    const char *method;
};

/* 0, or -1 when the series has no reading usable for this window (then joules, mean_w and
 * largest_gap_s are NAN: not measured, null in results.json, never 0). */
int energy_over_window(const struct power_series *s, int64_t ws, int64_t we, double period_s,
                       struct energy_window *out);

#define MAX_POWER_SERIES 64

struct phase_power {
    int has_accel, has_system;
    int accel_complete, system_complete;
    /* NAN when not measured: no source of the kind, or one of its series has no reading
     * usable for the window */
    double accel_j, accel_w, system_j, system_w;
    double joules_per_output_token; /* accelerator joules (else system), NAN when no power */
    struct energy_window series[MAX_POWER_SERIES];
    int accel[MAX_POWER_SERIES];
    size_t nseries;
};

/* accelerator_only[i]: whether source i is accelerator-only. */
void energy_phase(const struct run_facts *f, int64_t ws, int64_t we, double period_s,
                  const int *accelerator_only, int nsources, double output_tokens,
                  struct phase_power *out);

#endif
