/* The AgentPerf part of results: per-iteration verdict metrics, and for each SLO tier the
 * search replayed over the measured iterations, normalised per accelerator and per MW. The
 * search configuration and tiers come from the event log's header, so a run's results are
 * recomputed from its log alone. */
#ifndef STROBE_AGENT_RESULTS_H
#define STROBE_AGENT_RESULTS_H
#include "agent_metrics.h"
#include "energy.h"
#include <cjson/cJSON.h>
#include <stdio.h>

struct agent_results {
    struct iteration_metrics *iters;
    size_t niters;
    struct search_result *searches;
    size_t nsearches;
    int accelerators;
    double power_w;                  /* <= 0: none given */
    const struct phase_power *power; /* per phase, or NULL */
    int stopped; /* the run did not reach its end (interrupted, or killed): a search left
                    incomplete is not final */
};

/* 0, or -1 with err set (a header without a search section).
 * power: per phase (may be NULL); the iteration at max_agents gives per-MW when its
 * accelerator power is complete, else --power-w (given) if any.
 * The run's last iteration is marked interrupted when the run stopped during it; the search
 * skips it as never measured, and stops there incomplete. */
int agent_results_compute(const struct run_facts *f, const struct phase_power *power,
                          struct agent_results *ar, char *err, size_t errlen);
void agent_results_json(cJSON *root, const struct agent_results *ar);
void agent_results_print(FILE *out, const struct agent_results *ar);
/* results.csv rows: one per search step of every tier. Returns malloc'd text. */
char *agent_results_csv(const struct agent_results *ar);
void agent_results_free(struct agent_results *ar);

/* SLO tiers from their JSON array ({tier, output_speed_p25_tokens_per_s, ttft_p95_s} each):
 * *tiers is malloc'd. 0, or -1 when ts is not an array. */
int slo_tiers_from_json(const cJSON *ts, struct slo_tier **tiers, size_t *ntiers);
/* Reads the search section of a log header. */
int agent_search_config(const cJSON *header, struct slo_tier **tiers, size_t *ntiers, int *start,
                        int *resolution, int *cap, double *max_error_rate);

/* Whether the run stopped during iteration ph: only the run's last iteration (the one started
 * last, last in f->phases) of a run that did not reach its end (MARK_INTERRUPTED, or no end
 * mark: killed or still running), and only when the stop left its mark on it: no end record,
 * a window closed before --window-s (window_s; 0 when the header lacks it), or a request of
 * it ended by the interruption (drain aborts those with ERR_INTERRUPTED, and facts.c marks a
 * request without an end record the same). A stop that came between two iterations leaves
 * the last one's verdict standing: its window and requests are whole. */
int agent_iteration_cut_short(const struct run_facts *f, const struct phase_info *ph,
                              double window_s);

#endif
