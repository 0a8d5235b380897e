/* Live progress of a phase or iteration on stderr, never on the dataplane's time: control
 * reads the workers' atomic counters (struct worker_stats) and the log as it is written
 * (live_tail.h) on its own loop. On a terminal, one line redrawn in place; otherwise a plain
 * line every --progress-s seconds (0: none), so the log of an unattended run shows that it is
 * alive: elapsed / total, output tokens/s, chunks/s, requests in flight, done and failed so
 * far, TTFT p50 so far. A watch on the run; strobe's results come from the whole log. */
#ifndef STROBE_PROGRESS_H
#define STROBE_PROGRESS_H
#include "run_env.h"

#include <stdint.h>

struct progress {
    int tty;
    double every_s;
    int64_t t_start, t_printed, t_rate;
    uint64_t events_at_rate, failed_at_start, finished_at_start;
    double chunks_per_s;
    int shown;
};

/* At a phase's or iteration's start (its index: the live figures are of its requests). */
void progress_begin(struct progress *p, const struct run_env *e, int phase);
/* what: e.g. "phase 2 concurrency 64"; stage: "ramp", "measure", "warm-up", "drain";
 * total_s <= 0 when the length is not known in advance. */
void progress_show(struct progress *p, const struct run_env *e, const char *what, const char *stage,
                   double total_s);
/* Clears a terminal's line before other output. */
void progress_end(struct progress *p);

#endif
