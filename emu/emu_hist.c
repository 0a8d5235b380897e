#include "emu_hist.h"

#include <stdio.h>

void emu_hist_observe(struct emu_hist *h, double seconds)
{
    int i = 0;
    while (i < h->nbounds && seconds > h->bounds[i]) i++;
    h->bucket[i]++;
    h->sum += seconds;
}

static void put(size_t len, size_t *at, int n)
{
    if (n > 0) *at += (size_t)n;
    if (*at > len) *at = len;
}

void emu_hist_write(const struct emu_hist *h, const char *name, const char *help, char *buf,
                    size_t len, size_t *at)
{
    put(len, at,
        snprintf(buf + *at, len - *at, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name));
    uint64_t cum = 0;
    for (int i = 0; i < h->nbounds; i++) {
        cum += h->bucket[i];
        put(len, at,
            snprintf(buf + *at, len - *at, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i],
                     (unsigned long long)cum));
    }
    cum += h->bucket[h->nbounds];
    put(len, at,
        snprintf(buf + *at, len - *at, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9f\n%s_count %llu\n",
                 name, (unsigned long long)cum, name, h->sum, name, (unsigned long long)cum));
}
