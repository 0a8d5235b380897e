#include "telemetry.h"

#include "clock.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct telemetry {
    struct power_source *src;
    int n, producer;
    struct metrics_scrape *scrape;
    struct eventlog *log;
    int64_t period_ns, scrape_period_ns;
    _Atomic int stop;
    pthread_t thread;
};

static void round_of_samples(struct telemetry *t)
{
    struct power_reading r[POWER_MAX_DEVICES];
    for (int i = 0; i < t->n; i++) {
        char err[256];
        int k = t->src[i].driver->sample(&t->src[i], r, POWER_MAX_DEVICES, err, sizeof err);
        if (k < 0) {
            struct log_record rec =
                rec_power_encode(&(struct rec_power){.t = clock_now_ns(),
                                                     .source = i,
                                                     .device = -1,
                                                     .milliwatts = POWER_NONE,
                                                     .microjoules = POWER_NONE});
            eventlog_put(t->log, t->producer, &rec, err, strlen(err));
            continue;
        }
        for (int j = 0; j < k; j++) {
            struct log_record rec = rec_power_encode(&(struct rec_power){
                .t = r[j].t_ns,
                .source = i,
                .device = r[j].device,
                .milliwatts = isnan(r[j].watts) ? POWER_NONE : (int64_t)llround(r[j].watts * 1e3),
                .microjoules =
                    isnan(r[j].energy_j) ? POWER_NONE : (int64_t)llround(r[j].energy_j * 1e6)});
            eventlog_put(t->log, t->producer, &rec, NULL, 0);
        }
    }
}

static void add_ns(struct timespec *t, int64_t ns)
{
    t->tv_nsec += ns % 1000000000LL;
    t->tv_sec += ns / 1000000000LL + t->tv_nsec / 1000000000L;
    t->tv_nsec %= 1000000000L;
}

static int before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void *run(void *arg)
{
    struct telemetry *t = arg;
    /* absolute schedules, one per task: a slow source or scrape does not stretch the other */
    struct timespec next_power, next_scrape;
    clock_gettime(CLOCK_MONOTONIC, &next_power);
    next_scrape = next_power;
    while (!atomic_load(&t->stop)) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (t->n && !before(&now, &next_power)) {
            round_of_samples(t);
            add_ns(&next_power, t->period_ns);
        }
        if (t->scrape && !before(&now, &next_scrape)) {
            metrics_scrape_once(t->scrape, t->log, t->producer);
            add_ns(&next_scrape, t->scrape_period_ns);
        }
        const struct timespec *due = !t->scrape                          ? &next_power
                                     : !t->n                             ? &next_scrape
                                     : before(&next_power, &next_scrape) ? &next_power
                                                                         : &next_scrape;
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, due, NULL);
    }
    round_of_samples(t);
    if (t->scrape) metrics_scrape_once(t->scrape, t->log, t->producer);
    return NULL;
}

struct telemetry *telemetry_start(struct power_source *sources, int n, double rate_hz,
                                  struct metrics_scrape *scrape, double scrape_rate_hz,
                                  struct eventlog *log, int producer, char *err, size_t errlen)
{
    if (errlen) err[0] = 0;
    if (n <= 0 && !scrape) return NULL;
    struct telemetry *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory for the telemetry thread");
        return NULL;
    }
    t->src = sources;
    t->n = n > 0 ? n : 0;
    t->scrape = scrape;
    t->log = log;
    t->producer = producer;
    t->period_ns = (int64_t)(1e9 / (rate_hz > 0 ? rate_hz : 10));
    t->scrape_period_ns = (int64_t)(1e9 / (scrape_rate_hz > 0 ? scrape_rate_hz : 1));
    int rc = pthread_create(&t->thread, NULL, run, t);
    if (rc) {
        snprintf(err, errlen, "cannot start the telemetry thread (power readings, /metrics): %s",
                 strerror(rc));
        free(t);
        return NULL;
    }
    pthread_setname_np(t->thread, "strobe-telem");
    return t;
}

void telemetry_stop(struct telemetry *t)
{
    if (!t) return;
    atomic_store(&t->stop, 1);
    pthread_join(t->thread, NULL);
    free(t);
}
