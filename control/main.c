/* strobe: subcommand dispatch and `strobe analyze`. */
#include "agents.h"
#include "import.h"
#include "report.h"
#include "results.h"
#include "slt.h"
#include "tokenize_cmd.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
        "usage: strobe SUBCOMMAND [options]\n\n"
        "A load tester for LLM inference systems, with timestamps that do not lie.\n\n"
        "subcommands:\n"
        "  slt       System Load Test: fixed-concurrency phases, throughput, speed, TTFT\n"
        "  agents    agent capacity: most concurrent agents meeting an SLO tier (AgentPerf)\n"
        "  import    turn agent recordings into AA's replay format\n"
        "  analyze   recompute results.json and results.csv of a run from its event log\n"
        "  report    compare runs in one HTML page with gnuplot charts\n"
        "  tokenize  print the token ids of stdin's text (o200k, DeepSeek V3, tokenizer.json)\n\n"
        "strobe SUBCOMMAND --help tells more. Metric definitions: README.md, section Metrics.\n");
}

static int analyze_main(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: strobe analyze RUN_DIR\n\nRecomputes RUN_DIR/results.json and "
               "results.csv from RUN_DIR/events.bin and bodies.bin,\nand prints the summary "
               "table. Works on a run that was interrupted or killed.\n");
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "strobe analyze: give exactly one RUN_DIR; see strobe analyze --help.\n");
        return 2;
    }
    char err[512];
    struct run_results res;
    if (results_compute(argv[1], &res, err, sizeof err) ||
        results_write(argv[1], &res, err, sizeof err)) {
        fprintf(stderr, "strobe analyze: %s.\n", err);
        return 1;
    }
    results_print_table(stdout, &res);
    printf("results: %s/results.json, %s/results.csv%s\n", argv[1], argv[1],
           res.facts.interrupted || !res.facts.run_ended ? " (INCOMPLETE run)" : "");
    results_free(&res);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "slt")) return slt_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "analyze")) return analyze_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "import")) return import_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "agents")) return agents_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "report")) return report_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "tokenize")) return tokenize_main(argc - 1, argv + 1);
    fprintf(stderr, "strobe: unknown subcommand '%s'; try strobe --help.\n", argv[1]);
    return 2;
}
