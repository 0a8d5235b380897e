/* Open-loop arrivals for `strobe slt` (--arrival, --rate, --schedule): requests fall due at
 * times drawn from a process, whether or not earlier ones have ended. One global sequence of
 * arrival times (Poisson: exponential gaps; gamma:CV: gamma gaps of mean 1/R and coefficient
 * of variation CV; constant: gaps of exactly 1/R; or a schedule file's offsets) is dealt
 * round-robin over the workers: every worker draws the whole sequence from the same seed and
 * keeps every n-th arrival, so the process the server sees is exactly the one asked for,
 * whatever the number of workers. A cap on requests in flight (--max-in-flight, split over the
 * workers) holds a due request until a slot frees; its latency still runs from when it was
 * due, and the source counts it as held. Each request is the SLT template (request_template.h);
 * the worker writes its id. All calls of the source run on its worker. */
#ifndef STROBE_ARRIVALS_H
#define STROBE_ARRIVALS_H
#include "request_template.h"
#include "worker.h"

#include <stddef.h>
#include <stdint.h>

enum arrival_kind { ARRIVAL_POISSON, ARRIVAL_GAMMA, ARRIVAL_CONSTANT, ARRIVAL_SCHEDULE };

struct arrival_spec {
    enum arrival_kind kind;
    double cv;                /* gamma's coefficient of variation */
    double rate_per_s;        /* not for a schedule */
    const double *schedule_s; /* ARRIVAL_SCHEDULE: offsets from the phase's start, ascending */
    size_t nschedule;
    uint64_t seed;
};

/* --arrival poisson|gamma:CV|constant. 0, or -1 with one clause in err. */
int arrival_parse(const char *text, struct arrival_spec *out, char *err, size_t errlen);
/* --schedule FILE: one offset in seconds per line (blank lines and # comments skipped), or
 * Unix times in seconds (taken relative to the first); sorted ascending on load. Refused: a
 * line over 4096 characters, a time above 1e11 s, times spanning over 1e9 s (each would not
 * fit the int64 ns timeline), and times all the same (the phase's window would last 0 s).
 * 0, or -1 with one sentence in err (which line is wrong). *offsets is malloc'd. */
int arrival_schedule_load(const char *path, double **offsets, size_t *n, char *err, size_t errlen);
/* The name of the process, e.g. "poisson" or "gamma:CV=2", for headers and output. */
void arrival_describe(const struct arrival_spec *a, char *buf, size_t len);

struct arrival_source;

/* Worker `worker` of `nworkers`; arrivals from t0 (ns, the phase's start) until issuing
 * stops; max_in_flight 0: no cap, else this worker's share of the cap (at least 1). Due
 * times saturate: an arrival past INT64_MAX / 2 ns (a tiny rate's gap, a huge draw) is never
 * due, and a rate not above 0 has no arrivals. */
struct arrival_source *arrival_source_new(const struct arrival_spec *a,
                                          const struct request_template *t, int worker,
                                          int nworkers, int64_t t0, int max_in_flight);
struct request_source *arrival_source_get(struct arrival_source *s);
/* Once its worker has let it go: the arrivals that fell due before t_stop (ns) and were never
 * sent (the one it was holding, and every one after it). */
uint64_t arrival_source_unsent(struct arrival_source *s, int64_t t_stop);
void arrival_source_free(struct arrival_source *s);

#endif
