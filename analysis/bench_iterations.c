/* strobe-bench-iterations RUN_DIR [TOKENIZER]: the time of each phase's analysis alone
 * (results_compute_iteration, what `strobe agents` runs after every iteration), one line per
 * phase, then the whole log's (results_compute). A search's analysis is linear in its length
 * when the per-iteration time does not grow with the phase's index. Not installed: a tool for
 * scripts/bench_analysis.sh. */
#include "clock.h"
#include "results.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: strobe-bench-iterations RUN_DIR [TOKENIZER|none]\n");
        return 2;
    }
    const char *tok = argc == 3 ? argv[2] : "none";
    char err[512];
    struct run_results all;
    int64_t t0 = clock_now_ns();
    if (results_compute(argv[1], tok, &all, err, sizeof err)) {
        fprintf(stderr, "strobe-bench-iterations: %s.\n", err);
        return 1;
    }
    double whole_ms = (double)(clock_now_ns() - t0) / 1e6;
    size_t nphases = all.facts.nphases;
    results_free(&all);
    for (size_t k = 0; k < nphases; k++) {
        struct iteration_metrics m;
        int64_t t = clock_now_ns();
        if (results_compute_iteration(argv[1], tok, (int)k, &m, err, sizeof err)) {
            fprintf(stderr, "strobe-bench-iterations: %s.\n", err);
            return 1;
        }
        printf("iteration %zu: %zu requests, analysed alone in %.1f ms\n", k, m.requests,
               (double)(clock_now_ns() - t) / 1e6);
    }
    printf("whole log (%zu iterations): %.1f ms\n", nphases, whole_ms);
    return 0;
}
