#include "arrivals.h"

#include "log_records.h"
#include "rng.h"
#include "must_alloc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct arrival_source {
    struct arrival_spec a;
    const struct request_template *t;
    int worker, nworkers, cap;
    uint64_t rng, seq;
    size_t index;    /* of the next arrival in the global sequence that is this worker's */
    int64_t t0, due; /* the next due time of this worker's (INT64_MAX: the schedule is over) */
    int held_now;    /* the arrival at `due` was found at the cap: its request is tagged so */
    int in_flight;   /* next and ended both run on the worker */
    struct request_source src;
};

int arrival_parse(const char *text, struct arrival_spec *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!strcmp(text, "poisson")) {
        out->kind = ARRIVAL_POISSON;
    } else if (!strcmp(text, "constant")) {
        out->kind = ARRIVAL_CONSTANT;
    } else if (!strncmp(text, "gamma:", 6)) {
        char *end;
        errno = 0;
        out->cv = strtod(text + 6, &end);
        if (end == text + 6 || *end || errno || !(out->cv > 0 && out->cv <= 100)) {
            snprintf(err, errlen,
                     "--arrival gamma:CV needs a coefficient of variation between 0 "
                     "and 100 (1 is Poisson), got '%s'",
                     text + 6);
            return -1;
        }
        out->kind = ARRIVAL_GAMMA;
    } else {
        snprintf(err, errlen, "--arrival must be poisson, gamma:CV or constant, got '%s'", text);
        return -1;
    }
    return 0;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int arrival_schedule_load(const char *path, double **offsets, size_t *n, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "--schedule %s cannot be read: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 1024, len = 0, line = 0;
    double *v = must_malloc(cap * sizeof *v, "the --schedule times");
    char buf[256];
    while (fgets(buf, sizeof buf, f)) {
        line++;
        char *p = buf + strspn(buf, " \t");
        if (*p == '#' || *p == '\n' || *p == '\r' || !*p) continue;
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        end += strspn(end, " \t\r\n");
        if (end == p || *end || errno || !isfinite(x) || x < 0) {
            snprintf(err, errlen,
                     "--schedule %s line %zu is not a time in seconds (one non-negative number "
                     "per line: offsets from the start, or Unix times)",
                     path, line);
            free(v);
            fclose(f);
            return -1;
        }
        if (len == cap) v = must_realloc(v, (cap *= 2) * sizeof *v, "the --schedule times");
        v[len++] = x;
    }
    int read_error = ferror(f);
    fclose(f);
    if (read_error || !len) {
        snprintf(err, errlen, "--schedule %s %s", path,
                 read_error ? "could not be read (is it a directory?)" : "holds no times");
        free(v);
        return -1;
    }
    qsort(v, len, sizeof *v, by_value);
    for (size_t i = len; i-- > 0;) v[i] -= v[0]; /* Unix times become offsets */
    *offsets = v;
    *n = len;
    return 0;
}

void arrival_describe(const struct arrival_spec *a, char *buf, size_t len)
{
    switch (a->kind) {
    case ARRIVAL_POISSON: snprintf(buf, len, "poisson"); break;
    case ARRIVAL_CONSTANT: snprintf(buf, len, "constant"); break;
    case ARRIVAL_GAMMA: snprintf(buf, len, "gamma:CV=%g", a->cv); break;
    case ARRIVAL_SCHEDULE: snprintf(buf, len, "schedule of %zu arrivals", a->nschedule); break;
    }
}

static double uniform01(uint64_t *rng)
{
    return ((double)(splitmix64(rng) >> 11) + 0.5) * 0x1.0p-53;
}

static double normal(uint64_t *rng)
{
    return sqrt(-2 * log(uniform01(rng))) * cos(2 * M_PI * uniform01(rng));
}

/* Marsaglia and Tsang's method; shape below 1 through gamma(shape + 1) * U^(1/shape). */
static double gamma_draw(uint64_t *rng, double shape)
{
    if (shape < 1) return gamma_draw(rng, shape + 1) * pow(uniform01(rng), 1 / shape);
    double d = shape - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double x = normal(rng), v = 1 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = uniform01(rng);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v)) return d * v;
    }
}

/* The gap before the next arrival of the global sequence, in seconds. */
static double gap_s(struct arrival_source *s)
{
    double mean = 1 / s->a.rate_per_s;
    switch (s->a.kind) {
    case ARRIVAL_POISSON: return -log(uniform01(&s->rng)) * mean;
    case ARRIVAL_GAMMA: {
        double shape = 1 / (s->a.cv * s->a.cv);
        return gamma_draw(&s->rng, shape) * mean / shape;
    }
    default: return mean;
    }
}

/* Moves to this worker's next arrival: the global sequence's arrivals index..index+n-1 are
 * drawn, the last of them is this worker's. */
static void advance(struct arrival_source *s, double *elapsed_s)
{
    if (s->a.kind == ARRIVAL_SCHEDULE) {
        if (s->index >= s->a.nschedule) {
            s->due = INT64_MAX;
            return;
        }
        s->due = s->t0 + (int64_t)llround(s->a.schedule_s[s->index] * 1e9);
        s->index += (size_t)s->nworkers;
        return;
    }
    for (int k = 0; k < s->nworkers; k++) *elapsed_s += gap_s(s);
    s->due = s->t0 + (int64_t)llround(*elapsed_s * 1e9);
}

static int next(void *arg, int64_t now, char *head, size_t head_cap, struct request_spec *spec,
                int64_t *next_due)
{
    struct arrival_source *s = arg;
    if (s->due > now) {
        *next_due = s->due;
        return 0;
    }
    if (s->cap && s->in_flight >= s->cap) {
        s->held_now = 1;
        /* a slot frees when a request ends, which wakes the worker; look again soon anyway */
        *next_due = now + 1000000;
        return 0;
    }
    size_t len = template_fill((void *)s->t, s->worker, ++s->seq, head, head_cap);
    if (!len) { /* cannot happen: the workers' buffers are sized for the template */
        *next_due = INT64_MAX;
        return 0;
    }
    spec->body = NULL;
    spec->body_len = 0;
    spec->head_len = len;
    spec->request_id_at = s->t->request_id_at;
    spec->tag = s->seq | (s->held_now ? SOURCE_TAG_HELD_BY_CAP : 0);
    spec->t_sched = s->due; /* latency runs from when it was due, held or not */
    s->held_now = 0;
    s->in_flight++;
    /* the elapsed time of the global sequence is kept in the due time itself */
    double elapsed_s = (double)(s->due - s->t0) / 1e9;
    advance(s, &elapsed_s);
    return 1;
}

static void ended(void *arg, uint64_t tag, int ok, int64_t t_end)
{
    (void)tag, (void)ok, (void)t_end;
    struct arrival_source *s = arg;
    s->in_flight--;
}

struct arrival_source *arrival_source_new(const struct arrival_spec *a,
                                          const struct request_template *t, int worker,
                                          int nworkers, int64_t t0, int max_in_flight)
{
    struct arrival_source *s = must_calloc(1, sizeof *s, "a worker's arrivals");
    s->a = *a;
    s->t = t;
    s->worker = worker;
    s->nworkers = nworkers;
    s->t0 = t0;
    s->rng = a->seed ^ 0x61727269766c73ULL; /* the same global sequence on every worker */
    s->cap =
        max_in_flight > 0 ? (max_in_flight / nworkers + (worker < max_in_flight % nworkers)) : 0;
    if (max_in_flight > 0 && s->cap < 1) s->cap = 1;
    s->src = (struct request_source){next, ended, s};
    /* this worker's first arrival is the global sequence's arrival number `worker` */
    if (a->kind == ARRIVAL_SCHEDULE) {
        s->index = (size_t)worker;
        advance(s, NULL);
    } else {
        double elapsed_s = 0;
        for (int k = 0; k <= worker; k++) elapsed_s += gap_s(s);
        s->due = t0 + (int64_t)llround(elapsed_s * 1e9);
    }
    return s;
}

struct request_source *arrival_source_get(struct arrival_source *s) { return &s->src; }
uint64_t arrival_source_unsent(struct arrival_source *s, int64_t t_stop)
{
    uint64_t n = 0;
    while (s->due < t_stop) {
        n++;
        double elapsed_s = (double)(s->due - s->t0) / 1e9;
        advance(s, &elapsed_s);
    }
    return n;
}

void arrival_source_free(struct arrival_source *s) { free(s); }
