/* AgentPerf verdicts and the capacity search (methodology.md §2.4, §2.5, §6):
 *  - an iteration's requests are those scheduled inside its measured window;
 *  - per request: TTFT from the scheduled time, output speed = (tokens − 1) / (last − first
 *    token event), needing 2 token events; a failed request counts as TTFT = ∞, speed = 0;
 *  - pass when P25 speed ≥ the tier's floor, P95 TTFT ≤ its ceiling and the error rate is at
 *    most max_error_rate; the reason for a fail names each of speed, ttft, errors that failed;
 *  - search: double from `start` until a fail, then bisect between the last pass and the first
 *    fail until hi − lo ≤ max(1, resolution); the result is the highest passing count.
 * The same search runs live (measuring) and offline (looking measured iterations up), so
 * `strobe analyze` reproduces it. */
#ifndef STROBE_AGENT_METRICS_H
#define STROBE_AGENT_METRICS_H
#include "facts.h"
#include <stddef.h>

struct slo_tier {
    char name[64];
    double speed_p25; /* tokens/s */
    double ttft_p95;  /* s */
};

struct iteration_metrics {
    int phase, agents;
    double window_s;
    double warmup_s;     /* from the iteration's start to its window */
    int warmup_extended; /* the window waited for every agent to start */
    size_t requests, failed;
    size_t retried; /* sent again on a new connection after a reused one was dead */
    double error_rate;
    double speed_p25, speed_p50, ttft_p50, ttft_p95, e2e_p50; /* ttft may be INFINITY */
    double output_tokens_per_s;
    size_t trajectories_done;
    double prompt_tokens, cached_tokens; /* sums over the window's requests */
    double client_bytes_per_agent;       /* memory strobe held per agent, bytes */
    /* the run stopped during it (agent_results_compute sets it): its requests were cut off,
     * so it has no verdict and the search treats it as never measured */
    int interrupted;
};

void agent_iteration_metrics(const struct run_facts *f, const struct phase_info *ph,
                             struct iteration_metrics *m);
/* 1 pass, 0 fail with the reason ("speed", "ttft", "errors", joined by '+'). */
int slo_verdict(const struct iteration_metrics *m, const struct slo_tier *t, double max_error_rate,
                char *reason, size_t len);

struct search_step {
    int agents, pass;
    char reason[64];
    struct iteration_metrics m;
};

struct search_result {
    struct slo_tier tier;
    int max_agents;
    struct search_step *steps;
    int nsteps;
    /* 0 when a measurement was missing (run interrupted): max_agents and at_max are then what
     * the measured iterations show, not the search's answer */
    int complete;
    const struct iteration_metrics *at_max; /* metrics at max_agents, or NULL */
};

/* Measures (or looks up) an iteration at `agents`. 0, or -1 to stop the search. */
typedef int (*measure_fn)(void *arg, int agents, struct iteration_metrics *out);

void agent_search(const struct slo_tier *tier, int start, int resolution, int cap,
                  double max_error_rate, measure_fn measure, void *arg, struct search_result *out);
void search_result_free(struct search_result *r);

#endif
