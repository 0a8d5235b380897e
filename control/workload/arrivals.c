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
    size_t index;     /* of the next arrival in the global sequence that is this worker's */
    double elapsed_s; /* of the global sequence at `due`: kept apart, as `due` saturates */
    double shape;     /* gamma's, worked out once */
    int64_t t0, due;  /* the next due time of this worker's (DUE_NEVER: no more arrivals) */
    int held_now;     /* the arrival at `due` was found at the cap: its request is tagged so */
    int in_flight;    /* next and ended both run on the worker */
    struct request_source src;
};

/* Due times at or past this mean "never" (the schedule is over, or the process's next arrival
 * lies past anything a run reaches): half of int64's range, so that a due time plus a lag or
 * a gap can never overflow, and INT64_MAX itself is what a "never" due time is set to. */
#define DUE_HORIZON (INT64_MAX / 2)
#define DUE_NEVER   INT64_MAX

/* A schedule's times: above 1e11 s a number is neither an offset nor a Unix time (year
 * 5138), and a schedule spanning over 1e9 s (31 years) mixes offsets with Unix times or is not
 * in seconds; either would overflow the int64 ns timeline once taken from a run's start. */
#define SCHEDULE_MAX_S      1e11
#define SCHEDULE_MAX_SPAN_S 1e9
/* A line longer than this is not a time and a comment: the file is not a schedule. */
#define SCHEDULE_MAX_LINE 4096

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
        /* below 0.001 gamma's shape (1/CV^2) passes 1e6 and the draws lose their precision
         * (at 1e-300 it is infinite and a draw never ends): such gaps are constant's anyway */
        if (end == text + 6 || *end || errno || !(out->cv >= 0.001 && out->cv <= 100)) {
            snprintf(err, errlen,
                     "--arrival gamma:CV needs a coefficient of variation between 0.001 "
                     "and 100 (1 is Poisson; for steadier gaps use constant), got '%s'",
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

/* One line of f into buf (at most cap - 1 characters, its newline dropped): 0, or -1 at the
 * end of the file; 1 when it is longer than that, 2 when it holds a NUL byte. Read character
 * by character so that a long line is refused whole, never split into two times, and a file
 * with no newline at all (/dev/zero) costs no more than cap bytes of memory. */
static int schedule_line(FILE *f, char *buf, size_t cap)
{
    size_t n = 0;
    int ch;
    while ((ch = getc(f)) != EOF && ch != '\n') {
        if (!ch) return 2;
        if (n + 1 == cap) return 1;
        buf[n++] = (char)ch;
    }
    buf[n] = 0;
    return ch == EOF && !n ? -1 : 0;
}

int arrival_schedule_load(const char *path, double **offsets, size_t *n, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "--schedule %s cannot be read: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 1024, len = 0, line = 0;
    size_t min_line = 0, max_line = 0; /* of the earliest and latest times, to name them */
    double min_x = 0, max_x = 0;
    double *v = must_malloc(cap * sizeof *v, "the --schedule times");
    char buf[SCHEDULE_MAX_LINE + 2]; /* room for one character over the limit, to see it */
    int got;
    while ((got = schedule_line(f, buf, sizeof buf)) >= 0) {
        line++;
        if (got == 1) {
            snprintf(err, errlen,
                     "--schedule %s line %zu is over %d characters long: a schedule holds one "
                     "time in seconds per line (is it the right file?)",
                     path, line, SCHEDULE_MAX_LINE);
            goto refuse;
        }
        if (got == 2) {
            snprintf(err, errlen,
                     "--schedule %s line %zu holds a NUL byte: a schedule is text, one time in "
                     "seconds per line (is it the right file?)",
                     path, line);
            goto refuse;
        }
        char *p = buf + strspn(buf, " \t");
        if (*p == '#' || *p == '\r' || !*p) continue;
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        end += strspn(end, " \t\r");
        if (end == p || *end || errno || !isfinite(x) || x < 0) {
            snprintf(err, errlen,
                     "--schedule %s line %zu is not a time in seconds (one non-negative number "
                     "per line: offsets from the start, or Unix times)",
                     path, line);
            goto refuse;
        }
        if (x > SCHEDULE_MAX_S) {
            snprintf(err, errlen,
                     "--schedule %s line %zu: %g s is neither an offset nor a Unix time (both "
                     "are below %g s); give one time in seconds per line",
                     path, line, x, SCHEDULE_MAX_S);
            goto refuse;
        }
        if (!len || x < min_x) min_x = x, min_line = line;
        if (!len || x > max_x) max_x = x, max_line = line;
        if (len == cap) v = must_realloc(v, (cap *= 2) * sizeof *v, "the --schedule times");
        v[len++] = x;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "--schedule %s could not be read (is it a directory?)", path);
        goto refuse;
    }
    if (!len) {
        snprintf(err, errlen, "--schedule %s holds no times", path);
        goto refuse;
    }
    if (max_x - min_x > SCHEDULE_MAX_SPAN_S) {
        snprintf(err, errlen,
                 "--schedule %s spans %.4g s, from line %zu (%g s) to line %zu (%g s): over "
                 "%g s (31 years), so it mixes offsets with Unix times or is not in seconds; "
                 "give all its times one way, in seconds",
                 path, max_x - min_x, min_line, min_x, max_line, max_x, SCHEDULE_MAX_SPAN_S);
        goto refuse;
    }
    /* the phase's window spans the schedule: with every time the same (to the ns) it would
     * last 0 s, and its rates and verdict would be figures over no time at all */
    if ((max_x - min_x) * 1e9 < 1) {
        if (len == 1)
            snprintf(err, errlen,
                     "--schedule %s holds one time (line %zu): the phase's measured window "
                     "spans the schedule, and a window needs arrivals spread over time; give at "
                     "least two different times",
                     path, min_line);
        else
            snprintf(err, errlen,
                     "--schedule %s holds %zu times, all within 1 ns of line %zu's: the phase's "
                     "measured window spans the schedule, and a window needs arrivals spread "
                     "over time; give at least two different times",
                     path, len, min_line);
        goto refuse;
    }
    fclose(f);
    qsort(v, len, sizeof *v, by_value);
    for (size_t i = len; i-- > 0;) v[i] -= v[0]; /* Unix times become offsets */
    *offsets = v;
    *n = len;
    return 0;
refuse:
    free(v);
    fclose(f);
    return -1;
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

/* The gap before the next arrival of the global sequence, in seconds: may be huge or infinite
 * at a tiny rate (or a huge gamma draw), which due_at takes as "never". */
static double gap_s(struct arrival_source *s)
{
    double mean = 1 / s->a.rate_per_s;
    switch (s->a.kind) {
    case ARRIVAL_POISSON: return -log(uniform01(&s->rng)) * mean;
    case ARRIVAL_GAMMA: return gamma_draw(&s->rng, s->shape) * mean / s->shape;
    default: return mean;
    }
}

/* t0 plus elapsed_s, in ns, saturating: DUE_NEVER where that passes DUE_HORIZON, or is not a
 * number. The test is made in doubles before any conversion, as llround of a value past
 * int64's range (a gap of 1e300 s) gives INT64_MIN: every arrival was then always due. */
static int64_t due_at(int64_t t0, double elapsed_s)
{
    double ns = elapsed_s * 1e9;
    if (!(ns < (double)(DUE_HORIZON - t0))) return DUE_NEVER;
    return t0 + (ns > 0 ? (int64_t)llround(ns) : 0);
}

/* Moves to this worker's next arrival: the global sequence's arrivals index..index+n-1 are
 * drawn, the last of them is this worker's. Once the due time is DUE_NEVER it stays so: it is
 * never due, so neither next nor arrival_source_unsent calls this again. */
static void advance(struct arrival_source *s)
{
    if (s->a.kind == ARRIVAL_SCHEDULE) {
        if (s->index >= s->a.nschedule) {
            s->due = DUE_NEVER;
            return;
        }
        s->due = due_at(s->t0, s->a.schedule_s[s->index]);
        s->index += (size_t)s->nworkers;
        return;
    }
    for (int k = 0; k < s->nworkers; k++) s->elapsed_s += gap_s(s);
    s->due = due_at(s->t0, s->elapsed_s);
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
    advance(s);
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
    /* the spec comes checked from arrival_parse and --rate; outside those ranges the draws
     * would not end (gamma's shape infinite at CV 0) or not advance (a rate past one arrival a
     * nanosecond, the timeline's resolution): such a spec is held to the nearest it can run,
     * and a rate not above 0 has no arrivals */
    if (a->kind == ARRIVAL_GAMMA) {
        double cv = a->cv > 100 ? 100 : a->cv >= 0.001 ? a->cv : 0.001;
        s->shape = 1 / (cv * cv);
    }
    if (a->kind != ARRIVAL_SCHEDULE && s->a.rate_per_s > 1e9) s->a.rate_per_s = 1e9;
    if (a->kind != ARRIVAL_SCHEDULE && !(s->a.rate_per_s > 0)) {
        s->due = DUE_NEVER;
        return s;
    }
    /* this worker's first arrival is the global sequence's arrival number `worker` */
    if (a->kind == ARRIVAL_SCHEDULE) {
        s->index = (size_t)worker;
        advance(s);
    } else {
        double elapsed_s = 0;
        for (int k = 0; k <= worker; k++) elapsed_s += gap_s(s);
        s->elapsed_s = elapsed_s;
        s->due = due_at(t0, elapsed_s);
    }
    return s;
}

struct request_source *arrival_source_get(struct arrival_source *s) { return &s->src; }
uint64_t arrival_source_unsent(struct arrival_source *s, int64_t t_stop)
{
    /* ends: every advance moves the schedule's index on, or draws gaps of mean at least 1 ns
     * (arrival_source_new holds the rate to 1e9/s) until one passes t_stop or the horizon */
    uint64_t n = 0;
    while (s->due < t_stop) {
        n++;
        advance(s);
    }
    return n;
}

void arrival_source_free(struct arrival_source *s) { free(s); }
