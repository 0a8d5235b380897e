/* A device clock (NIC ticks, the TSC) mapped onto strobe's timeline (CLOCK_REALTIME ns):
 * a line fitted by least squares over the latest cross-timestamps (device reading, system
 * time taken together), so both the offset and the drift are estimated; the residual of the
 * fit is reported as the mapping's uncertainty. Pure arithmetic, no device access. */
#ifndef STROBE_TS_CONVERT_H
#define STROBE_TS_CONVERT_H
#include <stdint.h>

#define TS_CONV_PAIRS 32

struct ts_converter {
    double nominal_hz; /* ticks per second the device claims */
    int64_t dev[TS_CONV_PAIRS], sys[TS_CONV_PAIRS];
    int n, head;
    int64_t dev_ref, sys_ref; /* the fit is relative to these, for precision */
    double ns_per_tick, offset_ns, residual_ns;
};

void ts_conv_init(struct ts_converter *c, double nominal_hz);
/* One cross-timestamp: the device read dev_ticks at system time sys_ns. Refits. */
void ts_conv_add(struct ts_converter *c, int64_t dev_ticks, int64_t sys_ns);
/* Device ticks to CLOCK_REALTIME ns; needs one pair at least (else returns 0). */
int64_t ts_conv_to_ns(const struct ts_converter *c, int64_t dev_ticks);
/* Device rate against the system clock, parts per million (+: the device runs fast). */
double ts_conv_drift_ppm(const struct ts_converter *c);
/* Root-mean-square residual of the fit, ns (0 with fewer than 3 pairs). */
double ts_conv_uncertainty_ns(const struct ts_converter *c);

#endif
