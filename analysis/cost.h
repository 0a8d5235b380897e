/* Cost per million tokens at a reference output speed (methodology.md §1, §5, §6.20):
 *   T_ref = system throughput where the median per-query output speed equals the reference
 *           speed, interpolated linearly between the two SLT phases that bracket it (never
 *           extrapolated);
 *   cost_per_M = accelerators × price per accelerator-hour / (T_ref × 3600) × 1e6.
 * The headline uses output throughput (the seed formula); the input + output variant is
 * reported beside it. */
#ifndef STROBE_COST_H
#define STROBE_COST_H
#include "slt_metrics.h"

double cost_per_million_tokens(int accelerators, double usd_per_accelerator_hour,
                               double tokens_per_s);

/* Throughput (output, and input+output) at the reference speed. 0, or -1 when the measured
 * speeds do not bracket the reference. */
int throughput_at_speed(const struct phase_metrics *phases, size_t n, double reference_speed,
                        double *output_tps, double *input_output_tps);

#endif
