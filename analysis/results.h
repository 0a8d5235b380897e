/* results.json (schema strobe.results.v1), results.csv and the stdout summary, all computed
 * from the event log alone, so `strobe analyze` reproduces a live run's files exactly. */
#ifndef STROBE_RESULTS_H
#define STROBE_RESULTS_H
#include "agent_results.h"
#include "energy.h"
#include "slt_metrics.h"
#include "validity.h"
#include <stdio.h>

#define RESULTS_SCHEMA "strobe.results.v1"

struct run_results {
    struct run_facts facts;
    struct phase_metrics *phases; /* SLT phases, or agent iterations seen as load phases */
    size_t nphases;
    int is_agents;
    int open_loop; /* slt --rate or --schedule: arrivals, not a closed loop */
    struct agent_results agents;
    struct phase_power *power; /* per phase, aligned with phases */
    int npower_sources;
    struct tokenizer *tokenizer;  /* per-chunk counts, or NULL */
    char tokenizer_path[1024];    /* its file (each analysis thread loads its own) */
    char tokenizer_note[400];     /* which tokenizer, or why none */
    struct run_validity validity; /* decided last, from everything above */
};

/* Loads RUN_DIR's log and computes every phase. tokenizer: NULL for the one the run's header
 * names (skipped, with a note, when that file is gone or its sha256 changed), "none", or a
 * file. 0, or -1 with err set. */
int results_compute(const char *dir, const char *tokenizer, struct run_results *res, char *err,
                    size_t errlen);
/* The same over `threads` analysis threads (0: one per core this process may use); the
 * results do not depend on how many. */
int results_compute_threads(const char *dir, const char *tokenizer, unsigned threads,
                            struct run_results *res, char *err, size_t errlen);
/* One SLT phase's metrics alone (what a run prints after each phase), reading only that
 * phase's requests: its cost does not grow with the phases before it. 0, or -1 with err set. */
int results_compute_phase(const char *dir, const char *tokenizer, int phase,
                          struct phase_metrics *m, char *err, size_t errlen);
/* One agents iteration's verdict metrics alone, reading only that iteration's requests, so
 * a search's analysis grows with the run's length, not with its square. 0, or -1 with err. */
int results_compute_iteration(const char *dir, const char *tokenizer, int phase,
                              struct iteration_metrics *m, char *err, size_t errlen);
/* Writes results.json and results.csv into dir (each via a temporary file and rename). */
int results_write(const char *dir, const struct run_results *res, char *err, size_t errlen);
/* The validity line first, then the table. */
void results_print_table(FILE *out, const struct run_results *res);
void results_free(struct run_results *res);

#endif
