/* `strobe report RUN_DIR... -o OUT_DIR`: compares runs side by side in one HTML page with
 * gnuplot charts (analysis/report_html.h). Every figure is recomputed from each run's event
 * log, as `strobe analyze` does. */
#include "flag_once.h"
#include "commands.h"

#include "report_html.h"
#include "results.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cmd_report(int argc, char **argv)
{
    const char *out = NULL;
    static const struct option opts[] = {{"out", 1, 0, 'o'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int o;
    opterr = 0;
    optind = 1;
    struct flag_once seen = {0};
    while ((o = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        if (flag_once(&seen, opts, o, optarg, "report", NULL)) return 2;
        if (o == 'o')
            out = optarg;
        else if (o == 'h') {
            printf("usage: strobe report RUN_DIR... -o OUT_DIR\n\nOne self-contained HTML page "
                   "(OUT_DIR/index.html) with PNG and SVG charts,\nrendered by gnuplot, comparing "
                   "the runs side by side.\n");
            return 0;
        } else {
            fprintf(stderr,
                    "strobe report: unknown option or missing value in '%s'; see strobe "
                    "report --help.\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    int n = argc - optind;
    if (!out || n < 1 || n > REPORT_MAX_RUNS) {
        fprintf(stderr,
                "strobe report: give 1 to %d RUN_DIRs and -o OUT_DIR; see strobe report "
                "--help.\n",
                REPORT_MAX_RUNS);
        return 2;
    }
    if (system("gnuplot --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "strobe report: gnuplot was not found; install it (apt-get install "
                        "gnuplot-nox).\n");
        return 1;
    }
    struct report_run *runs = calloc((size_t)n, sizeof *runs);
    if (!runs) {
        fprintf(stderr, "strobe report: out of memory.\n");
        return 1;
    }
    char err[512];
    for (int i = 0; i < n; i++) {
        runs[i].dir = argv[optind + i];
        if (results_compute(runs[i].dir, NULL, &runs[i].res, err, sizeof err)) {
            fprintf(stderr, "strobe report: %s.\n", err);
            for (int k = 0; k < i; k++) results_free(&runs[k].res);
            free(runs);
            return 1;
        }
    }
    /* made once every run has been read: a run that cannot be leaves no OUT_DIR behind */
    char data[4096];
    snprintf(data, sizeof data, "%s/data", out);
    if ((mkdir(out, 0755) && errno != EEXIST) || (mkdir(data, 0755) && errno != EEXIST)) {
        fprintf(stderr, "strobe report: cannot create %s: %s.\n", data, strerror(errno));
        for (int i = 0; i < n; i++) results_free(&runs[i].res);
        free(runs);
        return 1;
    }
    struct report_outcome r;
    report_html_write(out, runs, n, &r);
    int rc = 0;
    if (r.gnuplot_failed) {
        fprintf(stderr, "strobe report: gnuplot failed; see %s/gnuplot.log.\n", out);
        rc = 1;
    }
    if (r.write_errno) {
        fprintf(stderr,
                "strobe report: cannot write %s: %s; free space or choose another -o OUT_DIR.\n",
                r.write_path, strerror(r.write_errno));
        rc = 1;
    } else {
        printf("report: %s/index.html with %d charts (PNG and SVG)\n", out, r.charts);
    }
    for (int i = 0; i < n; i++) results_free(&runs[i].res);
    free(runs);
    return rc;
}
