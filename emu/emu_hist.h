/* A Prometheus histogram of the emulator's own view of its requests (time to first token,
 * inter-token latency), exposed by /metrics as real servers expose theirs, so strobe's
 * --server-metrics has the same shape to read from strobe-emu as from vLLM or SGLang. */
#ifndef EMU_HIST_H
#define EMU_HIST_H
#include <stddef.h>
#include <stdint.h>

#define EMU_HIST_MAX 32

struct emu_hist {
    const double *bounds; /* upper bounds in seconds, ascending; +Inf is implied */
    int nbounds;
    uint64_t bucket[EMU_HIST_MAX + 1]; /* observations <= bounds[i]; the last: all */
    double sum;
};

void emu_hist_observe(struct emu_hist *h, double seconds);
/* Appends the histogram's exposition (# HELP, # TYPE, buckets, _sum, _count) to buf at *at. */
void emu_hist_write(const struct emu_hist *h, const char *name, const char *help, char *buf,
                    size_t len, size_t *at);

#endif
