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
    struct eventlog *log;
    int64_t period_ns;
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

static void *run(void *arg)
{
    struct telemetry *t = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!atomic_load(&t->stop)) {
        round_of_samples(t);
        /* an absolute schedule: slow sources do not stretch the period */
        next.tv_nsec += t->period_ns % 1000000000LL;
        next.tv_sec += t->period_ns / 1000000000LL + next.tv_nsec / 1000000000L;
        next.tv_nsec %= 1000000000L;
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    round_of_samples(t);
    return NULL;
}

struct telemetry *telemetry_start(struct power_source *sources, int n, struct eventlog *log,
                                  int producer, double rate_hz)
{
    if (n <= 0) return NULL;
    struct telemetry *t = calloc(1, sizeof *t);
    t->src = sources;
    t->n = n;
    t->log = log;
    t->producer = producer;
    t->period_ns = (int64_t)(1e9 / (rate_hz > 0 ? rate_hz : 10));
    pthread_create(&t->thread, NULL, run, t);
    pthread_setname_np(t->thread, "strobe-power");
    return t;
}

void telemetry_stop(struct telemetry *t)
{
    if (!t) return;
    atomic_store(&t->stop, 1);
    pthread_join(t->thread, NULL);
    free(t);
}
