/* The output of `strobe report`: runs side by side in one self-contained HTML page
 * (OUT/index.html) with PNG and SVG charts rendered by gnuplot (no hand-drawn graphics),
 * their data in OUT/data/. Charts: throughput vs per-query speed; throughput and speed vs
 * concurrency; end-to-end latency vs concurrency; max agents per MW per SLO tier; agents per
 * MW vs P25 speed; the search iterations of each agent run; power over time with the
 * measured windows shaded. The command line is control/commands/report.c. */
#ifndef STROBE_REPORT_HTML_H
#define STROBE_REPORT_HTML_H
#include "results.h"

#include <stdint.h>

#define REPORT_MAX_RUNS 32

/* One run: the caller fills dir and res (results_compute); report_html_write the rest. */
struct report_run {
    const char *dir;
    struct run_results res;
    char label[160]; /* dir's last component (two where another run's is alike), quotes '_' */
    char model[128]; /* the run's config.model */
    char clock[64];  /* where most chunk timestamps came from: "kernel timestamps" */
    int64_t t0;      /* the first phase's start: time zero of power over time */
};

struct report_outcome {
    int charts;            /* charts rendered and shown on the page */
    int gnuplot_failed;    /* a chart failed (OUT/gnuplot.log says why); the page shows the
                            * charts rendered before it */
    int write_errno;       /* 0, or why the first file that could not be written whole failed */
    char write_path[4200]; /* that file */
};

/* Renders the charts of runs[0..n) (n <= REPORT_MAX_RUNS) into OUT, whose data/ folder
 * exists, and writes OUT/index.html. gnuplot must be on the PATH. */
void report_html_write(const char *out, struct report_run *runs, int n, struct report_outcome *o);

#endif
