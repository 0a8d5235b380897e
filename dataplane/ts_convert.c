#include "ts_convert.h"

#include <math.h>

void ts_conv_init(struct ts_converter *c, double nominal_hz)
{
    *c = (struct ts_converter){.nominal_hz = nominal_hz, .ns_per_tick = 1e9 / nominal_hz};
}

static void refit(struct ts_converter *c)
{
    if (c->n == 1) {
        c->offset_ns =
            (double)(c->sys[0] - c->sys_ref) - (double)(c->dev[0] - c->dev_ref) * c->ns_per_tick;
        return;
    }
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < c->n; i++) {
        double x = (double)(c->dev[i] - c->dev_ref), y = (double)(c->sys[i] - c->sys_ref);
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    double n = c->n, den = n * sxx - sx * sx;
    if (den > 0) c->ns_per_tick = (n * sxy - sx * sy) / den;
    c->offset_ns = (sy - c->ns_per_tick * sx) / n;
    double ss = 0;
    for (int i = 0; i < c->n; i++) {
        double x = (double)(c->dev[i] - c->dev_ref), y = (double)(c->sys[i] - c->sys_ref);
        double r = y - (c->offset_ns + c->ns_per_tick * x);
        ss += r * r;
    }
    c->residual_ns = c->n > 2 ? sqrt(ss / (n - 2)) : 0;
}

void ts_conv_add(struct ts_converter *c, int64_t dev_ticks, int64_t sys_ns)
{
    if (c->n == 0) {
        c->dev_ref = dev_ticks;
        c->sys_ref = sys_ns;
    }
    c->dev[c->head] = dev_ticks;
    c->sys[c->head] = sys_ns;
    c->head = (c->head + 1) % TS_CONV_PAIRS;
    if (c->n < TS_CONV_PAIRS) c->n++;
    refit(c);
}

int64_t ts_conv_to_ns(const struct ts_converter *c, int64_t dev_ticks)
{
    if (!c->n) return 0;
    return c->sys_ref +
           (int64_t)llround(c->offset_ns + c->ns_per_tick * (double)(dev_ticks - c->dev_ref));
}

double ts_conv_drift_ppm(const struct ts_converter *c)
{
    return (1e9 / c->nominal_hz / c->ns_per_tick - 1) * 1e6;
}

double ts_conv_uncertainty_ns(const struct ts_converter *c) { return c->residual_ns; }
