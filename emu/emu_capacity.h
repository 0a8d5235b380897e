/* Closed-form expectations of the performance model, for tests and for users checking a lab
 * set-up: per-query speed, TTFT and system throughput of a closed loop at concurrency N, and
 * the largest number of agents that meets a speed and a TTFT target. */
#ifndef EMU_CAPACITY_H
#define EMU_CAPACITY_H
#include "emu_params.h"

struct capacity_query {
    int concurrency;
    long prompt_tokens, cached_tokens, output_tokens;
    /* agents: a homogeneous mix of turns */
    long turn_new_tokens, turn_output_tokens;
    double tool_s, target_speed, target_ttft_s;
};

struct slt_expectation {
    double decoding;    /* mean requests in the decode batch */
    double step_s;      /* t_step at that batch */
    double speed_tps;   /* per-query output speed, tokens/s */
    double ttft_s;      /* arrival to first token, server side */
    double ttft_idle_s; /* a lone request on an idle engine */
    double e2e_s;
    double throughput_tps; /* system output tokens/s */
    double power_w;
    double prefill_utilisation;
};

void emu_capacity_slt(const struct emu_params *p, const struct capacity_query *q,
                      struct slt_expectation *out);
/* Largest agent count meeting both targets (0 if none); fills the expectation at it. */
int emu_capacity_agents(const struct emu_params *p, const struct capacity_query *q,
                        struct slt_expectation *at);
/* Prints the expectations as one JSON object on stdout. */
void emu_capacity_print(const struct emu_params *p, const struct capacity_query *q);

#endif
