/* `strobe analyze RUN_DIR`: recomputes a run's results.json and results.csv from its event
 * log (analysis/results.h) and prints the summary table; works on interrupted runs too. */
#include "commands.h"

#include "results.h"

#include <stdio.h>
#include <string.h>

int cmd_analyze(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: strobe analyze RUN_DIR [--tokenizer FILE|none]\n\n"
               "Recomputes RUN_DIR/results.json and results.csv from RUN_DIR/events.bin and "
               "bodies.bin,\nand prints the summary table. Works on a run that was interrupted "
               "or killed.\nPer-chunk token counts use the tokenizer the run recorded (if its "
               "file is unchanged),\nor --tokenizer FILE, or none.\n");
        return 0;
    }
    const char *dir = NULL, *tokenizer = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc)
            tokenizer = argv[++i];
        else if (!strncmp(argv[i], "--tokenizer=", 12))
            tokenizer = argv[i] + 12;
        else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else
            dir = NULL, i = argc;
    }
    if (!dir) {
        fprintf(stderr, "strobe analyze: give exactly one RUN_DIR (and optionally --tokenizer "
                        "FILE|none); see strobe analyze --help.\n");
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
