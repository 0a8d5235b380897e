#include "emu_capacity.h"

#include "emu_model.h"

#include <math.h>
#include <stdio.h>

/* Mean-value model of the closed loop. Each request cycles through
 *   wait for a slot (Tw) -> prefill queue (Tq) -> prefill (Tp) -> decode (n steps of s(D))
 *   -> [tool time, for agents]
 * with D = requests decoding = N · (decode time / cycle), s(D) = A + C·D, n = O / k̄.
 * D is found by fixed-point iteration. Tq uses the M/D/1 mean wait of the serial prefill
 * stage, ρ·Tp / (2(1−ρ)); with ρ near 0 (the test profiles) it vanishes. */
static void solve(const struct emu_params *p, int n_clients, double prompt_uncached,
                  double out_tokens, double think_s, struct slt_expectation *e)
{
    double kbar = emu_model_tokens_per_step(p);
    double tp = prompt_uncached / p->prefill_tps;
    double steps = out_tokens / kbar;
    int slots = n_clients < p->max_batch ? n_clients : p->max_batch;
    double d = slots, tq = 0, tw = 0, cycle = 0, s = 0, rho = 0;
    for (int it = 0; it < 200; it++) {
        s = (p->step_us + p->step_us_per_seq * d) * 1e-6;
        double dec = steps * s;
        /* a slot is held from prefill start to the last token */
        double held = tq + tp + dec;
        rho = slots * tp / (held + (n_clients > slots ? 0 : think_s));
        if (rho > 0.999) rho = 0.999;
        tq = rho * tp / (2 * (1 - rho));
        /* clients beyond the batch wait for a slot: slots free at slots/held per second */
        tw = n_clients > slots ? (double)(n_clients - slots) * held / slots : 0;
        cycle = tw + held + think_s;
        double nd = (double)n_clients * dec / cycle;
        if (nd > slots) nd = slots;
        if (fabs(nd - d) < 1e-9) break;
        d = 0.5 * d + 0.5 * nd;
    }
    e->decoding = d;
    e->step_s = s;
    e->speed_tps = kbar / s;
    e->ttft_s = tw + tq + tp + s;
    e->ttft_idle_s = tp + (p->step_us + p->step_us_per_seq) * 1e-6;
    e->e2e_s = tw + tq + tp + steps * s;
    e->throughput_tps = (double)n_clients * out_tokens / cycle;
    e->power_w =
        p->accelerators * (p->power_idle_w + (p->power_max_w - p->power_idle_w) * d / p->max_batch);
    e->prefill_utilisation = rho;
}

void emu_capacity_slt(const struct emu_params *p, const struct capacity_query *q,
                      struct slt_expectation *out)
{
    solve(p, q->concurrency, (double)(q->prompt_tokens - q->cached_tokens),
          (double)q->output_tokens, 0, out);
}

int emu_capacity_agents(const struct emu_params *p, const struct capacity_query *q,
                        struct slt_expectation *at)
{
    int best = 0;
    for (int n = 1; n <= 100000; n++) {
        struct slt_expectation e;
        solve(p, n, (double)q->turn_new_tokens, (double)q->turn_output_tokens, q->tool_s, &e);
        if (e.speed_tps < q->target_speed || e.ttft_s > q->target_ttft_s) break;
        best = n;
        *at = e;
    }
    return best;
}

static void print_exp(const char *name, const struct slt_expectation *e)
{
    printf("  \"%s\": {\"decoding_requests\": %.4f, \"step_s\": %.9f, "
           "\"output_speed_tokens_per_s\": %.4f, \"ttft_s\": %.9f, \"ttft_idle_s\": %.9f, "
           "\"e2e_latency_s\": %.6f, \"system_output_tokens_per_s\": %.4f, "
           "\"accelerator_power_w\": %.3f, \"prefill_utilisation\": %.6f}",
           name, e->decoding, e->step_s, e->speed_tps, e->ttft_s, e->ttft_idle_s, e->e2e_s,
           e->throughput_tps, e->power_w, e->prefill_utilisation);
}

void emu_capacity_print(const struct emu_params *p, const struct capacity_query *q)
{
    struct slt_expectation e;
    emu_capacity_slt(p, q, &e);
    printf("{\n  \"tokens_per_step\": %.6f,\n  \"concurrency\": %d,\n  \"prompt_tokens\": %ld,\n"
           "  \"cached_tokens\": %ld,\n  \"output_tokens\": %ld,\n",
           emu_model_tokens_per_step(p), q->concurrency, q->prompt_tokens, q->cached_tokens,
           q->output_tokens);
    print_exp("closed_loop", &e);
    if (q->target_speed > 0 && q->target_ttft_s > 0) {
        struct slt_expectation a = {0};
        int n = emu_capacity_agents(p, q, &a);
        printf(",\n  \"agents\": {\"turn_new_tokens\": %ld, \"turn_output_tokens\": %ld, "
               "\"tool_s\": %.6f, \"target_speed_tokens_per_s\": %.3f, \"target_ttft_s\": %.6f, "
               "\"max_agents\": %d},\n",
               q->turn_new_tokens, q->turn_output_tokens, q->tool_s, q->target_speed,
               q->target_ttft_s, n);
        print_exp("at_max_agents", &a);
    }
    printf("\n}\n");
}
