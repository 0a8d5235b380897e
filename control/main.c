/* strobe: subcommand dispatch and `strobe analyze`. */
#include "agents.h"
#include "import.h"
#include "redact.h"
#include "report.h"
#include "results.h"
#include "slt.h"
#include "tap_cmd.h"
#include "tokenize_cmd.h"

#include <stdio.h>
#include <stdlib.h>
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
        "  tokenize  print the token ids of stdin's text (o200k, DeepSeek V3, tokenizer.json)\n"
        "  tap       read an FPGA timestamping tap's records into a run (sim or xrt)\n\n"
        "strobe SUBCOMMAND --help tells more. Metric definitions: README.md, section Metrics.\n");
}

static int analyze_main(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: strobe analyze RUN_DIR [--tokenizer FILE|none]\n\nRecomputes RUN_DIR/results.json and "
               "results.csv from RUN_DIR/events.bin and bodies.bin,\nand prints the summary "
               "table. Works on a run that was interrupted or killed.\n"
               "Per-chunk token counts use the tokenizer the run recorded (if its file is unchanged),\n"
               "or --tokenizer FILE, or none.\n");
        return 0;
    }
    const char *dir = NULL, *tokenizer = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tokenizer = argv[++i];
        else if (!strncmp(argv[i], "--tokenizer=", 12)) tokenizer = argv[i] + 12;
        else if (argv[i][0] != '-' && !dir) dir = argv[i];
        else dir = NULL, i = argc;
    }
    if (!dir) {
        fprintf(stderr, "strobe analyze: give exactly one RUN_DIR (and optionally --tokenizer FILE|none); see strobe analyze --help.\n");
        return 2;
    }
    char err[512];
    struct run_results res;
    if (results_compute(dir, tokenizer, &res, err, sizeof err)) {
        fprintf(stderr, "strobe analyze: %s.\n", err);
        return 1;
    }
    if (results_write(dir, &res, err, sizeof err)) {
        fprintf(stderr, "strobe analyze: %s.\n", err);
        results_free(&res);
        return 1;
    }
    results_print_table(stdout, &res);
    printf("results: %s/results.json, %s/results.csv%s\n", dir, dir,
           res.facts.interrupted || !res.facts.run_ended ? " (INCOMPLETE run)" : "");
    results_free(&res);
    return 0;
}

int main(int argc, char **argv)
{
    /* before any thread starts: every command blanks the key out of what it writes */
    redact_set(getenv("STROBE_API_KEY"));
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
    if (!strcmp(argv[1], "tap")) return tap_main(argc - 1, argv + 1);
    fprintf(stderr, "strobe: unknown subcommand '%s'; try strobe --help.\n", argv[1]);
    return 2;
}
