#include "progress.h"

#include "clock.h"

#include <stdio.h>
#include <unistd.h>

static uint64_t sum_stat(const struct run_env *e, size_t offset)
{
    uint64_t s = 0;
    for (int i = 0; i < e->threads; i++)
        s += atomic_load((_Atomic uint64_t *)((char *)&e->w[i].stats + offset));
    return s;
}

#define STAT(field) sum_stat(e, offsetof(struct worker_stats, field))

void progress_begin(struct progress *p, const struct run_env *e, int phase)
{
    *p = (struct progress){.tty = isatty(2), .every_s = e->progress_s};
    live_tail_phase(e->tail, phase);
    p->t_start = p->t_printed = p->t_rate = clock_now_ns();
    p->events_at_rate = STAT(events);
    p->failed_at_start = STAT(failed);
    p->finished_at_start = STAT(finished);
}

void progress_show(struct progress *p, const struct run_env *e, const char *what, const char *stage,
                   double total_s)
{
    int64_t now = clock_now_ns();
    if (now - p->t_rate >= 500000000LL) {
        uint64_t ev = STAT(events);
        p->chunks_per_s = (double)(ev - p->events_at_rate) / ((double)(now - p->t_rate) / 1e9);
        p->events_at_rate = ev;
        p->t_rate = now;
    }
    if (!p->tty && (p->every_s <= 0 || now - p->t_printed < (int64_t)(p->every_s * 1e9))) return;
    p->t_printed = now;
    char total[32] = "", tps[48] = "- tokens/s", ttft[48] = "TTFT p50 -";
    if (total_s > 0) snprintf(total, sizeof total, "/%.0f", total_s);
    live_tail_poll(e->tail);
    double v = live_tail_tokens_per_s(e->tail, now);
    if (v >= 0) snprintf(tps, sizeof tps, "%.0f tokens/s", v);
    v = live_tail_ttft_p50(e->tail);
    if (v >= 0) snprintf(ttft, sizeof ttft, "TTFT p50 %.4f s", v);
    fprintf(stderr,
            "%s%s  %s %.0f%s s  %s  %.0f chunks/s  in flight %d  done %llu  failed %llu  %s%s",
            p->tty ? "\r\033[K" : "strobe: ", what, stage, (double)(now - p->t_start) / 1e9, total,
            tps, p->chunks_per_s, run_env_in_flight(e),
            (unsigned long long)(STAT(finished) - p->finished_at_start),
            (unsigned long long)(STAT(failed) - p->failed_at_start), ttft, p->tty ? "" : "\n");
    p->shown = 1;
}

void progress_end(struct progress *p)
{
    if (p->tty && p->shown) fprintf(stderr, "\r\033[K");
    p->shown = 0;
}
