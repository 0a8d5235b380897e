/* `strobe analyze RUN_DIR`: recomputes a run's results.json and results.csv from its event
 * log (analysis/results.h) and prints the summary table; works on interrupted runs too.
 * Its last line says how long the analysis took, over how many threads, how many events the
 * chunk scanner read (and how many needed the full JSON parser), and the peak memory. */
#include "commands.h"
#include "flag_once.h"

#include "clock.h"
#include "results.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int cmd_analyze(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: strobe analyze RUN_DIR [--tokenizer FILE|none] [--threads N]\n\n"
               "Recomputes RUN_DIR/results.json and results.csv from RUN_DIR/events.bin and "
               "bodies.bin,\nand prints the summary table. Works on a run that was interrupted "
               "or killed.\nPer-chunk token counts use the tokenizer the run recorded (if its "
               "file is unchanged),\nor --tokenizer FILE, or none. --threads N reads the log "
               "over N threads (default: one\nper core this process may use); the results do "
               "not depend on it.\n");
        return 0;
    }
    const char *dir = NULL, *tokenizer = NULL, *threads_arg = NULL;
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        const char **value = NULL, *name = NULL, *given = NULL;
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc)
            value = &tokenizer, name = "tokenizer", given = argv[++i];
        else if (!strncmp(argv[i], "--tokenizer=", 12))
            value = &tokenizer, name = "tokenizer", given = argv[i] + 12;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            value = &threads_arg, name = "threads", given = argv[++i];
        else if (!strncmp(argv[i], "--threads=", 10))
            value = &threads_arg, name = "threads", given = argv[i] + 10;
        if (value && *value) return flag_given_twice("analyze", name, *value, given);
        if (value)
            *value = given;
        else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else
            bad = 1;
    }
    if (!dir || bad) {
        fprintf(stderr, "strobe analyze: give exactly one RUN_DIR (and optionally --tokenizer "
                        "FILE|none, --threads N); see strobe analyze --help.\n");
        return 2;
    }
    unsigned threads = 0;
    if (threads_arg) {
        char *end;
        long n = strtol(threads_arg, &end, 10);
        if (*end || end == threads_arg || n < 1 || n > FACTS_MAX_THREADS) {
            fprintf(stderr, "strobe analyze: --threads %s is not a count from 1 to %d; give one.\n",
                    threads_arg, FACTS_MAX_THREADS);
            return 2;
        }
        threads = (unsigned)n;
    }
    if (!threads) threads = facts_default_threads();
    char err[512];
    struct run_results res;
    int64_t t0 = clock_now_ns();
    double cpu0 = cpu_seconds();
    if (results_compute_threads(dir, tokenizer, threads, &res, err, sizeof err)) {
        fprintf(stderr, "strobe analyze: %s.\n", err);
        return 1;
    }
    double took_s = (double)(clock_now_ns() - t0) / 1e9, cpu_s = cpu_seconds() - cpu0;
    if (results_write(dir, &res, err, sizeof err)) {
        fprintf(stderr, "strobe analyze: %s.\n", err);
        results_free(&res);
        return 1;
    }
    results_print_table(stdout, &res);
    printf("results: %s/results.json, %s/results.csv%s\n", dir, dir,
           res.facts.interrupted || !res.facts.run_ended ? " (INCOMPLETE run)" : "");
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    /* CPU time as well as wall time: on a shared machine the wall time says little */
    uint64_t events = 0; /* SSE events, [DONE] included */
    for (size_t i = 0; i < res.facts.nreqs; i++) events += res.facts.reqs[i].n_events;
    printf("analysis: %.3f s over %u thread%s (%.3f s of CPU), %llu events (JSON: %llu read by the "
           "chunk scanner, %llu by the full parser), %.2f M events/s, %.2f M events per CPU "
           "second, peak memory %.1f MiB\n",
           took_s, threads, threads == 1 ? "" : "s", cpu_s, (unsigned long long)events,
           (unsigned long long)res.facts.chunks_scanned,
           (unsigned long long)res.facts.chunks_parsed,
           took_s > 0 ? (double)events / took_s / 1e6 : 0,
           cpu_s > 0 ? (double)events / cpu_s / 1e6 : 0, (double)ru.ru_maxrss / 1024);
    results_free(&res);
    return 0;
}
