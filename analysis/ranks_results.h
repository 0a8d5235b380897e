/* An MPI run's own part of results.json and the table: each rank's load per phase (requests,
 * failures, output tokens/s, its own TTFT median: a rank that fell behind shows), and the
 * uncertainty the clock offsets leave on every latency figure. Nothing for one process. */
#ifndef STROBE_RANKS_RESULTS_H
#define STROBE_RANKS_RESULTS_H
#include "facts.h"

#include <cjson/cJSON.h>
#include <stdio.h>

/* Adds "ranks" to root. */
void ranks_results_json(cJSON *root, const struct run_facts *f);
/* The ranks' lines under the table. */
void ranks_results_print(FILE *out, const struct run_facts *f);

#endif
