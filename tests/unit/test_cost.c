/* The cost formula against methodology.md's worked example, and T_ref interpolation on a
 * synthetic SLT curve. */
#include "check.h"
#include "cost.h"

#include <math.h>
#include <string.h>

int main(void)
{
    /* S3: TPU v6e at $2.70 per chip-hour, 8 chips, $5.13 per 1M tokens at 30 tokens/s per
     * query: the throughput that implies is 8 × 2.70 / (5.13e-6 × 3600) = 1169.6 tokens/s */
    double c = cost_per_million_tokens(8, 2.70, 1169.59);
    CHECK(fabs(c - 5.13) < 0.005, "TPU v6e example: $%.4f per 1M tokens, expected $5.13", c);
    /* 8×B200, 92,909 output tokens/s: $0.19 per 1M at $7.94 per GPU-hour */
    c = cost_per_million_tokens(8, 7.94, 92909);
    CHECK(fabs(c - 0.19) < 0.005, "B200 example: $%.4f per 1M tokens, expected $0.19", c);
    CHECK(isnan(cost_per_million_tokens(8, 2.7, 0)), "no throughput, no cost");

    struct phase_metrics ph[3];
    memset(ph, 0, sizeof ph);
    double speed[3] = {200, 100, 50}, tps[3] = {1000, 3000, 5000};
    for (int i = 0; i < 3; i++) {
        ph[i].speed.p50 = speed[i];
        ph[i].system_output_tps = tps[i];
        ph[i].system_io_tps = 2 * tps[i];
    }
    double out, io;
    CHECK(throughput_at_speed(ph, 3, 75, &out, &io) == 0 && fabs(out - 4000) < 1e-9 &&
              fabs(io - 8000) < 1e-9,
          "75 tokens/s lies half way between 100 and 50: 4000 tokens/s, got %g", out);
    CHECK(throughput_at_speed(ph, 3, 100, &out, &io) == 0 && fabs(out - 3000) < 1e-9,
          "on a measured point: 3000, got %g", out);
    CHECK(throughput_at_speed(ph, 3, 30, &out, &io) == -1,
          "30 tokens/s is not bracketed: no figure");
    return check_done("test_cost");
}
