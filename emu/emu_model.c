#include "emu_model.h"

#include "rng.h"

#include <math.h>

int64_t emu_model_step_ns(const struct emu_params *p, int running)
{
    return (int64_t)llround((p->step_us + p->step_us_per_seq * running) * 1000.0);
}

int64_t emu_model_prefill_ns(const struct emu_params *p, int64_t uncached_tokens)
{
    return (int64_t)llround((double)uncached_tokens / p->prefill_tps * 1e9);
}

double emu_model_tokens_per_step(const struct emu_params *p)
{
    double sum = 1, term = 1;
    for (int i = 0; i < p->spec_tokens; i++) {
        term *= p->spec_accept;
        sum += term;
    }
    return sum;
}

int emu_model_draw_tokens(const struct emu_params *p, uint64_t *rng)
{
    int k = 1;
    for (int i = 0; i < p->spec_tokens; i++) {
        double u = (double)(splitmix64(rng) >> 11) * 0x1.0p-53;
        if (u >= p->spec_accept) break;
        k++;
    }
    return k;
}

double emu_model_power_w(const struct emu_params *p, int running)
{
    double load = (double)running / p->max_batch;
    if (load > 1) load = 1;
    return p->accelerators * (p->power_idle_w + (p->power_max_w - p->power_idle_w) * load);
}

int64_t emu_model_prompt_tokens(size_t rendered_bytes)
{
    return (int64_t)((rendered_bytes + 3) / 4);
}

int emu_model_natural_tokens(const struct emu_params *p, uint64_t request_hash)
{
    return p->natural_min_tokens + (int)(request_hash % (uint64_t)p->natural_span_tokens);
}

uint64_t emu_model_hash(uint64_t h, const void *data, size_t n)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}
