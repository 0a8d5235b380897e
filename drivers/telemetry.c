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
    int n, producer, scrape_producer;
    struct metrics_scrape *scrape;
    struct eventlog *log;
    int64_t period_ns, scrape_period_ns;
    /* telemetry_stop wakes the threads' waits through these: a wait may be minutes long at
     * a low rate, and the run's end must not wait for it */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    int stop;           /* under mu */
    _Atomic int cancel; /* a scrape in flight gives up (metrics_scrape_once) */
    pthread_t power_thread, scrape_thread;
    int power_running, scrape_running;
};

/* A reading in the log's fixed point; POWER_NONE ("not given") for one it cannot hold, as
 * llround's result would be undefined there. */
static int64_t fixed(double v, double scale)
{
    double x = v * scale;
    return isfinite(x) && fabs(x) < 9e18 ? (int64_t)llround(x) : POWER_NONE;
}

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
            struct log_record rec =
                rec_power_encode(&(struct rec_power){.t = r[j].t_ns,
                                                     .source = i,
                                                     .device = r[j].device,
                                                     .milliwatts = fixed(r[j].watts, 1e3),
                                                     .microjoules = fixed(r[j].energy_j, 1e6)});
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

/* The next time on an absolute schedule, so that the time a round takes does not stretch
 * the period; a round that overran it (a slow source, a loaded machine) starts the next at
 * once and the schedule from there, rather than a burst of rounds catching up. */
static void schedule(struct timespec *next, int64_t period_ns)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    add_ns(next, period_ns);
    if (before(next, &now)) *next = now;
}

/* Sleeps until due or until telemetry_stop; 1 when stopped. */
static int wait_until(struct telemetry *t, const struct timespec *due)
{
    pthread_mutex_lock(&t->mu);
    /* 0: woken (by telemetry_stop, or spuriously: wait on); ETIMEDOUT, or any error: due */
    while (!t->stop && pthread_cond_timedwait(&t->wake, &t->mu, due) == 0) {
    }
    int stop = t->stop;
    pthread_mutex_unlock(&t->mu);
    return stop;
}

static void *power_run(void *arg)
{
    struct telemetry *t = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    do {
        round_of_samples(t);
        schedule(&next, t->period_ns);
    } while (!wait_until(t, &next));
    round_of_samples(t); /* the last window's end then lies between two samples */
    return NULL;
}

static void *scrape_run(void *arg)
{
    struct telemetry *t = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    int rc;
    do {
        rc = metrics_scrape_once(t->scrape, t->log, t->scrape_producer, &t->cancel);
        schedule(&next, t->scrape_period_ns);
    } while (rc >= 0 && !wait_until(t, &next));
    /* one last scrape, as for power; not after one that failed or was cut short: a server
     * not answering would hold up the run's end until the scrape's timeout. stop and cancel
     * were set together under mu, and nothing sets cancel again. */
    if (rc == 1) {
        atomic_store(&t->cancel, 0);
        metrics_scrape_once(t->scrape, t->log, t->scrape_producer, &t->cancel);
    }
    return NULL;
}

/* 1/rate in nanoseconds, the rate taken within the bounds (no rate: dflt), so that a period
 * and the schedule's sums of it fit 64 bits. */
static int64_t period_ns(double rate_hz, double dflt)
{
    if (!(rate_hz > 0) || !isfinite(rate_hz)) rate_hz = dflt;
    if (rate_hz < TELEMETRY_MIN_HZ) rate_hz = TELEMETRY_MIN_HZ;
    if (rate_hz > TELEMETRY_MAX_HZ) rate_hz = TELEMETRY_MAX_HZ;
    return (int64_t)llround(1e9 / rate_hz);
}

static void stop_threads(struct telemetry *t)
{
    pthread_mutex_lock(&t->mu);
    t->stop = 1;
    atomic_store(&t->cancel, 1);
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->mu);
    if (t->power_running) pthread_join(t->power_thread, NULL);
    if (t->scrape_running) pthread_join(t->scrape_thread, NULL);
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

struct telemetry *telemetry_start(struct power_source *sources, int n, double rate_hz,
                                  struct metrics_scrape *scrape, double scrape_rate_hz,
                                  struct eventlog *log, int power_producer, int scrape_producer,
                                  char *err, size_t errlen)
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
    t->producer = power_producer;
    t->scrape_producer = scrape_producer;
    t->period_ns = period_ns(rate_hz, 10);
    t->scrape_period_ns = period_ns(scrape_rate_hz, 1);
    pthread_condattr_t ca;
    /* the schedules are on CLOCK_MONOTONIC: the waits' deadlines must be too */
    int rc = pthread_condattr_init(&ca);
    if (!rc) {
        rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (!rc) rc = pthread_cond_init(&t->wake, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (rc) {
        snprintf(err, errlen, "cannot start the telemetry thread (a condition variable: %s)",
                 strerror(rc));
        free(t);
        return NULL;
    }
    pthread_mutex_init(&t->mu, NULL);
    if (t->n) {
        rc = pthread_create(&t->power_thread, NULL, power_run, t);
        if (rc) {
            snprintf(err, errlen, "cannot start the telemetry thread (power readings): %s",
                     strerror(rc));
            stop_threads(t);
            return NULL;
        }
        t->power_running = 1;
        pthread_setname_np(t->power_thread, "strobe-telem");
    }
    if (scrape) {
        rc = pthread_create(&t->scrape_thread, NULL, scrape_run, t);
        if (rc) {
            snprintf(err, errlen, "cannot start the telemetry thread (the server's /metrics): %s",
                     strerror(rc));
            stop_threads(t); /* the power thread, if any, ends: the run does not start */
            return NULL;
        }
        t->scrape_running = 1;
        pthread_setname_np(t->scrape_thread, "strobe-scrape");
    }
    return t;
}

void telemetry_stop(struct telemetry *t)
{
    if (t) stop_threads(t);
}
