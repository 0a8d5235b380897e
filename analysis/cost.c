#include "cost.h"

#include <math.h>

double cost_per_million_tokens(int accelerators, double usd_per_accelerator_hour,
                               double tokens_per_s)
{
    if (!(tokens_per_s > 0)) return NAN;
    return accelerators * usd_per_accelerator_hour / (tokens_per_s * 3600) * 1e6;
}

int throughput_at_speed(const struct phase_metrics *ph, size_t n, double ref, double *out_tps,
                        double *io_tps)
{
    /* the curve is walked in phase order (rising concurrency, falling speed); the first
     * segment whose speeds bracket the reference gives the answer */
    for (size_t i = 0; i + 1 < n; i++) {
        double s0 = ph[i].speed.p50, s1 = ph[i + 1].speed.p50;
        if (!(s0 > 0 && s1 > 0) || (ref - s0) * (ref - s1) > 0 || s0 == s1) continue;
        double f = (ref - s0) / (s1 - s0);
        *out_tps =
            ph[i].system_output_tps + f * (ph[i + 1].system_output_tps - ph[i].system_output_tps);
        *io_tps = ph[i].system_io_tps + f * (ph[i + 1].system_io_tps - ph[i].system_io_tps);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (ph[i].speed.p50 == ref) {
            *out_tps = ph[i].system_output_tps;
            *io_tps = ph[i].system_io_tps;
            return 0;
        }
    return -1;
}
