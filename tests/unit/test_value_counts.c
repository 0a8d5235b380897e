/* value_counts against summarise() over the same values, built twice: with the shipped sizes
 * and with tiny ones (a pending buffer of a few keys, a hash that turns to runs at a few
 * distinct values, levels of 3 runs) so that every path runs many times: the hash alone, the
 * switch to runs, many runs and levels, runs and hash merged, tables merged, counts > 1,
 * -0 and +0, ±∞, huge and subnormal values, the 2^32 - 1 limit; and values given as ticks of
 * a unit (the array of ticks, ticks outside it, another unit, mixed with plain values, merged
 * every way). */
#include "check.h"
#include "stats.h"
#include "value_counts.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef TEST_NAME
#define TEST_NAME "value_counts"
#endif

/* A growable list of the values added, each as many times as it was added. */
struct added {
    double *v;
    size_t n, cap;
};

static void remember(struct added *a, double v, uint64_t times)
{
    if (a->n + times > a->cap) {
        a->cap = (a->n + times) * 2;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        CHECK(a->v != NULL, "out of memory for %zu reference values", a->cap);
    }
    for (; times; times--) a->v[a->n++] = v;
}

static void add_both(struct value_counts *c, struct added *a, double v, uint64_t times)
{
    CHECK(!value_counts_add(c, v, times), "value_counts_add(%g, %llu)", v,
          (unsigned long long)times);
    remember(a, v, times);
}

/* Equal (-0 is counted as +0, so the two are the same here), or both NaN (an interpolation
 * between -∞ and ∞). */
static int same(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

/* The sample coefficient of variation summed in ascending order, as value_counts_cv states. */
static double cv_of_sorted(const double *v, size_t n)
{
    if (n < 2) return 0;
    double sum = 0, var = 0;
    for (size_t i = 0; i < n; i++) sum += v[i];
    double mean = sum / (double)n;
    for (size_t i = 0; i < n; i++) var += (v[i] - mean) * (v[i] - mean);
    return mean > 0 ? sqrt(var / (double)(n - 1)) / mean : 0;
}

/* Sorts c and checks it against the values of a: the summary to the bit, the cv, and the
 * cursor's distinct values ascending with their counts. Frees both. */
static void check_equal(struct value_counts *c, struct added *a, const char *what)
{
    value_counts_sort(c);
    CHECK(c->n == a->n, "%s: %llu values counted, %zu added", what, (unsigned long long)c->n, a->n);
    struct summary want, got;
    value_counts_summarise(c, &got);
    summarise(a->v, a->n, &want); /* sorts a->v */
    double w[] = {want.mean, want.min, want.max, want.p25, want.p50,
                  want.p75,  want.p90, want.p95, want.p99};
    double g[] = {got.mean, got.min, got.max, got.p25, got.p50, got.p75, got.p90, got.p95, got.p99};
    CHECK(got.n == want.n, "%s: summary of %zu values, summarise %zu", what, got.n, want.n);
    for (int f = 0; f < 9; f++)
        CHECK(same(w[f], g[f]), "%s: field %d (mean, min, max, p25..p99) %.17g, summarise %.17g",
              what, f, g[f], w[f]);
    double cv = value_counts_cv(c), cv_want = cv_of_sorted(a->v, a->n);
    CHECK(same(cv, cv_want), "%s: cv %.17g, by the sorted values %.17g", what, cv, cv_want);
    struct value_counts_cursor cur;
    value_counts_cursor_start(&cur, c);
    double v;
    uint64_t times;
    size_t at = 0, bad = 0;
    while (value_counts_next(&cur, &v, &times)) {
        /* -0 is counted as +0: both sort together in a->v */
        size_t run = 0;
        while (at + run < a->n && a->v[at + run] == v) run++;
        if (!times || run != times || (at && a->v[at - 1] == v)) bad++;
        at += run ? run : 1;
    }
    CHECK(!bad && at == a->n, "%s: the cursor read %zu of %zu values, %zu distinct ones wrong",
          what, at, a->n, bad);
    value_counts_free(c);
    free(a->v);
    memset(a, 0, sizeof *a);
}

/* A value of one of several shapes: few distinct, near-unique microseconds made of
 * nanoseconds, both signs and zeros, extremes. */
static double value(int shape, unsigned r)
{
    switch (shape) {
    case 0: return (double)(r % 7);
    case 1: return (double)(r % 50000000) / 1e3;
    case 2: return (double)((int)(r % 2000001) - 1000000) / 1e6 / 3;
    default: {
        static const double odd[] = {0.0,     -0.0,     INFINITY, -INFINITY, DBL_MAX, -DBL_MAX,
                                     DBL_MIN, -DBL_MIN, 5e-324,   -5e-324,   1e300,   -1e-300};
        return r % 3 ? odd[r % (sizeof odd / sizeof *odd)] : (double)r * 1e-310;
    }
    }
}

static unsigned next_random(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 1;
}

/* One table per shape and size, values added one at a time. */
static void one_table(void)
{
    size_t sizes[] = {0, 1, 2, 100, 5000, 70000, 700000};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int shape = 0; shape < 4; shape++) {
            struct value_counts c = {0};
            struct added a = {0};
            unsigned seed = (unsigned)(s * 10 + (size_t)shape);
            for (size_t i = 0; i < sizes[s]; i++)
                add_both(&c, &a, value(shape, next_random(&seed)), 1);
            char what[64];
            snprintf(what, sizeof what, "%zu values of shape %d", sizes[s], shape);
            /* few distinct values stay in the hash; many near-unique ones go to runs */
            if (shape == 0) CHECK(!c.pending && !c.nruns, "%s: in the hash alone", what);
            if (shape == 1 && sizes[s] >= 70000)
                CHECK(c.pending && (sizes[s] < 700000 || c.nruns > 1), "%s: in runs (%zu)", what,
                      c.nruns);
            check_equal(&c, &a, what);
        }
}

/* Few distinct values first (the hash), then near-unique ones (runs), then few again, with
 * counts > 1 throughout: some under the pending buffer's limit, some over it, some 0. */
static void switch_and_times(void)
{
    for (int order = 0; order < 2; order++) {
        struct value_counts c = {0};
        struct added a = {0};
        unsigned seed = 7u + (unsigned)order;
        size_t n = 60000;
        for (size_t i = 0; i < 3 * n; i++) {
            unsigned r = next_random(&seed);
            int phase = (int)(i / n); /* 0: few, 1: many, 2: few */
            double v = value(phase == 1 ? 1 : order ? 3 : 0, r);
            uint64_t times = r % 5 ? 1 : r % 40;
            if (times)
                add_both(&c, &a, v, times);
            else
                CHECK(!value_counts_add(&c, v, 0), "adding 0 times is nothing");
        }
        check_equal(&c, &a, order ? "few odd, many, few odd (times)" : "few, many, few (times)");
    }
}

/* Tables of every kind merged into one (hash into runs, runs into hash, both), then a table
 * built from a sorted one's cursor (as ranks_merge does). */
static void merged(void)
{
    enum { TABLES = 6 };
    size_t sizes[TABLES] = {0, 3, 400, 30000, 90000, 50};
    for (int first = 0; first < TABLES; first++) {
        struct value_counts t[TABLES];
        memset(t, 0, sizeof t);
        struct added a = {0};
        unsigned seed = 99u + (unsigned)first;
        for (int k = 0; k < TABLES; k++)
            for (size_t i = 0; i < sizes[k]; i++) {
                unsigned r = next_random(&seed);
                add_both(&t[k], &a, value(k % 3, r), r % 11 == 0 ? 1 + r % 30 : 1);
            }
        for (int k = 0; k < TABLES; k++)
            if (k != first)
                CHECK(!value_counts_merge(&t[first], &t[k]), "merge %d into %d", k, first);
        struct value_counts copy = {0};
        struct added b = {0};
        remember(&b, 0, 0);
        value_counts_sort(&t[first]);
        struct value_counts_cursor cur;
        value_counts_cursor_start(&cur, &t[first]);
        double v;
        uint64_t times;
        while (value_counts_next(&cur, &v, &times)) add_both(&copy, &b, v - 0.5, times);
        char what[64];
        snprintf(what, sizeof what, "tables merged into table %d", first);
        check_equal(&t[first], &a, what);
        snprintf(what, sizeof what, "a copy of tables merged into table %d, shifted", first);
        check_equal(&copy, &b, what);
    }
}

/* What a sorted table's cursor reads: every value counted, and how many of a and of b. */
static void cursor_counts(const struct value_counts *c, double a, double b, uint64_t *total,
                          uint64_t *of_a, uint64_t *of_b)
{
    struct value_counts_cursor cur;
    value_counts_cursor_start(&cur, c);
    double v;
    uint64_t times;
    *total = *of_a = *of_b = 0;
    while (value_counts_next(&cur, &v, &times)) {
        *total += times;
        *of_a += v == a ? times : 0;
        *of_b += v == b ? times : 0;
    }
}

/* At most 2^32 - 1 values, in the hash, in runs and over a merge; the table stays usable. */
static void limit(void)
{
    for (int runs = 0; runs < 2; runs++) {
        struct value_counts c = {0};
        uint64_t n = 0;
        unsigned seed = 5;
        if (runs)
            for (; n < 200000; n++)
                CHECK(!value_counts_add(&c, value(1, next_random(&seed)), 1), "add");
        CHECK(!value_counts_add(&c, 1.5, UINT32_MAX - n - 1), "up to 2^32 - 2 values");
        CHECK(!value_counts_add(&c, 2.5, 1), "the 2^32 - 1st value");
        CHECK(value_counts_add(&c, 3.5, 1) == -1, "the 2^32nd value is refused");
        CHECK(value_counts_add(&c, 3.5, 1ull << 40) == -1, "2^40 values are refused");
        struct value_counts one = {0};
        CHECK(!value_counts_add(&one, 4.5, 1), "add");
        CHECK(value_counts_merge(&c, &one) == -1, "a merge past 2^32 - 1 values is refused");
        value_counts_sort(&c);
        CHECK(c.n == UINT32_MAX, "%llu values after the refusals", (unsigned long long)c.n);
        /* (not summarised: its mean sums 2^32 values one by one) */
        uint64_t total, of_15, of_25;
        cursor_counts(&c, 1.5, 2.5, &total, &of_15, &of_25);
        CHECK(total == UINT32_MAX && of_15 == UINT32_MAX - n - 1 && of_25 == 1,
              "the cursor reads %llu values, %llu of 1.5, %llu of 2.5", (unsigned long long)total,
              (unsigned long long)of_15, (unsigned long long)of_25);
        value_counts_free(&c);
    }
    static const struct value_counts none = {.sorted = 1};
    struct summary s;
    value_counts_summarise(&none, &s);
    CHECK(s.n == 0 && value_counts_cv(&none) == 0, "a table never added to is empty");
}

/* add_ticks on both: the table takes ticks, the reference the value they stand for. */
static void add_ticks_both(struct value_counts *c, struct added *a, int64_t ticks, double per,
                           uint64_t times)
{
    CHECK(!value_counts_add_ticks(c, ticks, per, times), "value_counts_add_ticks(%lld, %g, %llu)",
          (long long)ticks, per, (unsigned long long)times);
    remember(a, (double)ticks / per, times);
}

/* Ticks of one of several spreads: inside the array, around its ends, negative, far past it. */
static int64_t ticks_of(int spread, unsigned r)
{
    switch (spread) {
    case 0: return (int64_t)(r % 5000);                               /* few, all inside */
    case 1: return (int64_t)(r % (VALUE_COUNTS_DENSE + 4000)) - 2000; /* both ends */
    case 2: return (int64_t)(r % 3 ? r % VALUE_COUNTS_DENSE : (uint64_t)r * 977);
    default: return r % 2 ? (int64_t)(r % 64) : -(int64_t)r * 1000003;
    }
}

/* Ticks alone, ticks with plain values among them, a second unit in the same table, and
 * tables of ticks merged into each other and into tables without: the same figures as the
 * values they stand for. */
static void ticks(void)
{
    for (int spread = 0; spread < 4; spread++) {
        struct value_counts c = {0};
        struct added a = {0};
        unsigned seed = 31u + (unsigned)spread;
        for (size_t i = 0; i < 300000; i++) {
            unsigned r = next_random(&seed);
            if (r % 17 == 0)
                add_both(&c, &a, value(1, r), 1); /* a plain value, maybe one a tick gives */
            else if (r % 23 == 0)
                add_ticks_both(&c, &a, ticks_of(spread, r), 1e6, 1); /* another unit */
            else
                add_ticks_both(&c, &a, ticks_of(spread, r), 1e3, r % 13 ? 1 : 1 + r % 40);
        }
        CHECK(!value_counts_add_ticks(&c, 5, 1e3, 0), "adding 0 times is nothing");
        char what[64];
        snprintf(what, sizeof what, "ticks of spread %d", spread);
        CHECK(c.dense != NULL, "%s: the array holds them", what);
        check_equal(&c, &a, what);
    }
    for (int ticks_all = 0; ticks_all < 2; ticks_all++) {
        enum { TABLES = 5 };
        /* per 0: plain values; the rest ticks of that unit */
        double per[TABLES] = {1e3, 0, 1e3, 1e6, 1e3};
        struct value_counts t[TABLES];
        memset(t, 0, sizeof t);
        struct added a = {0};
        unsigned seed = 77u + (unsigned)ticks_all;
        for (int k = 0; k < TABLES; k++)
            for (size_t i = 0; i < 40000; i++) {
                unsigned r = next_random(&seed);
                if (per[k] == 0)
                    add_both(&t[k], &a, value(1, r), 1);
                else
                    add_ticks_both(&t[k], &a, ticks_of(k % 3, r), per[k], 1 + r % 3);
            }
        /* into a table of ticks, or into the one of plain values */
        int into = ticks_all ? 0 : 1;
        for (int k = 0; k < TABLES; k++)
            if (k != into) CHECK(!value_counts_merge(&t[into], &t[k]), "merge %d into %d", k, into);
        check_equal(&t[into], &a,
                    ticks_all ? "tables of ticks and of values merged into one of ticks"
                              : "tables of ticks merged into one of values");
    }
    /* a unit the array does not take (negative, infinite) goes to the hash, the same values
     * (0 and NaN are left out: they make NaN values, which no table takes) */
    double odd_per[] = {-1e3, INFINITY};
    for (size_t k = 0; k < sizeof odd_per / sizeof *odd_per; k++) {
        struct value_counts c = {0};
        struct added a = {0};
        for (int64_t t = 0; t < 20000; t++) {
            CHECK(!value_counts_add_ticks(&c, t % 700, odd_per[k], 1), "add");
            remember(&a, (double)(t % 700) / odd_per[k], 1);
        }
        CHECK(c.dense == NULL, "per %g: no array", odd_per[k]);
        check_equal(&c, &a, "ticks of a unit the array does not take");
    }
    /* the limit counts ticks too, in the array and out of it, over a merge and a sort */
    struct value_counts c = {0}, more = {0};
    CHECK(!value_counts_add_ticks(&c, 10, 1e3, VALUE_COUNTS_DENSE_AFTER), "ticks, in the hash");
    CHECK(!value_counts_add_ticks(&c, 10, 1e3, UINT32_MAX - 1 - VALUE_COUNTS_DENSE_AFTER),
          "up to 2^32 - 2 ticks, in the array");
    CHECK(c.dense != NULL, "the array holds them");
    CHECK(!value_counts_add_ticks(&c, 11, 1e3, 1), "the 2^32 - 1st");
    CHECK(value_counts_add_ticks(&c, 12, 1e3, 1) == -1, "the 2^32nd is refused");
    CHECK(value_counts_add_ticks(&c, -12, 1e3, 1) == -1, "outside the array too");
    for (int i = 0; i < 2 * VALUE_COUNTS_DENSE_AFTER; i++)
        CHECK(!value_counts_add_ticks(&more, 13, 1e3, 1), "add");
    CHECK(more.dense != NULL, "the other table's array holds its ticks");
    CHECK(value_counts_merge(&c, &more) == -1, "a merge past 2^32 - 1 values is refused");
    value_counts_sort(&c);
    uint64_t total, of_10, of_11;
    cursor_counts(&c, 10 / 1e3, 11 / 1e3, &total, &of_10, &of_11);
    CHECK(c.n == UINT32_MAX && total == UINT32_MAX && of_10 == UINT32_MAX - 1 && of_11 == 1,
          "the cursor reads %llu ticks, %llu of 10 and %llu of 11", (unsigned long long)total,
          (unsigned long long)of_10, (unsigned long long)of_11);
    value_counts_free(&c);
}

int main(void)
{
    one_table();
    switch_and_times();
    merged();
    limit();
    ticks();
    return check_done(TEST_NAME);
}
