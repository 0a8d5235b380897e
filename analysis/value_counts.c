#include "value_counts.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A double's bits made an unsigned key whose order is the values' order, and back. */
static uint64_t key_of(double v)
{
    uint64_t bits;
    if (v == 0) v = 0; /* -0 is +0 */
    memcpy(&bits, &v, sizeof bits);
    return bits >> 63 ? ~bits : bits | 1ULL << 63;
}

static double value_of(uint64_t k)
{
    uint64_t bits = k >> 63 ? k & ~(1ULL << 63) : ~k;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static size_t slot_of(uint64_t key, size_t cap)
{
    return (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 17) & (cap - 1);
}

static int grow(struct value_counts *c)
{
    size_t cap = c->cap ? c->cap * 2 : 256;
    uint64_t *keys = big_realloc(NULL, cap * sizeof *keys);
    uint64_t *counts = big_realloc(NULL, cap * sizeof *counts);
    if (!keys || !counts) {
        free(keys);
        free(counts);
        return -1;
    }
    memset(counts, 0, cap * sizeof *counts);
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->counts[i]) continue;
        size_t s = slot_of(c->keys[i], cap);
        while (counts[s]) s = (s + 1) & (cap - 1);
        keys[s] = c->keys[i];
        counts[s] = c->counts[i];
    }
    free(c->keys);
    free(c->counts);
    c->keys = keys;
    c->counts = counts;
    c->cap = cap;
    return 0;
}

static int add_key(struct value_counts *c, uint64_t key, uint64_t times)
{
    if (!times) return 0;
    if ((c->used + 1) * 2 > c->cap && grow(c)) return -1;
    size_t s = slot_of(key, c->cap);
    while (c->counts[s] && c->keys[s] != key) s = (s + 1) & (c->cap - 1);
    if (!c->counts[s]) {
        c->keys[s] = key;
        c->used++;
    }
    c->counts[s] += times;
    c->n += times;
    return 0;
}

int value_counts_add(struct value_counts *c, double v, uint64_t times)
{
    return add_key(c, key_of(v), times);
}

int value_counts_merge(struct value_counts *c, const struct value_counts *src)
{
    for (size_t i = 0; i < src->cap; i++)
        if (src->counts[i] && add_key(c, src->keys[i], src->counts[i])) return -1;
    return 0;
}

struct pair {
    uint64_t key, count;
};

static int cmp_pair(const void *a, const void *b)
{
    uint64_t x = ((const struct pair *)a)->key, y = ((const struct pair *)b)->key;
    return (x > y) - (x < y);
}

/* After sorting, counts[i] is the number of values <= keys[i] (cumulative), so that the k-th
 * value is found by bisection. */
int value_counts_sort(struct value_counts *c)
{
    if (c->sorted) return 0;
    struct pair *p = big_realloc(NULL, (c->used ? c->used : 1) * sizeof *p);
    if (!p) return -1;
    size_t m = 0;
    for (size_t i = 0; i < c->cap; i++)
        if (c->counts[i]) p[m++] = (struct pair){c->keys[i], c->counts[i]};
    qsort(p, m, sizeof *p, cmp_pair);
    uint64_t below = 0;
    for (size_t i = 0; i < m; i++) {
        below += p[i].count;
        c->keys[i] = p[i].key;
        c->counts[i] = below;
    }
    free(p);
    c->sorted = 1;
    return 0;
}

static uint64_t count_at(const struct value_counts *c, size_t i)
{
    return c->counts[i] - (i ? c->counts[i - 1] : 0);
}

double value_counts_distinct(const struct value_counts *c, size_t i, uint64_t *times)
{
    *times = count_at(c, i);
    return value_of(c->keys[i]);
}

double value_counts_at(const struct value_counts *c, uint64_t k)
{
    size_t lo = 0, hi = c->used - 1;
    while (lo < hi) { /* the first distinct value with more than k values at or below it */
        size_t mid = lo + (hi - lo) / 2;
        if (c->counts[mid] > k)
            hi = mid;
        else
            lo = mid + 1;
    }
    return value_of(c->keys[lo]);
}

/* percentile_sorted over the values c counts */
static double percentile(const struct value_counts *c, double q)
{
    uint64_t n = c->n;
    double h = (double)(n - 1) * q;
    uint64_t lo = (uint64_t)h;
    if (lo + 1 >= n || h == (double)lo) return value_counts_at(c, lo < n ? lo : n - 1);
    double a = value_counts_at(c, lo), b = value_counts_at(c, lo + 1);
    if (b == a) return a; /* also keeps ∞ from becoming NaN */
    return a + (h - (double)lo) * (b - a);
}

/* The values in ascending order summed one by one, as summarise() sums its sorted array. */
static double ascending_sum(const struct value_counts *c)
{
    double sum = 0;
    for (size_t i = 0; i < c->used; i++) {
        double v = value_of(c->keys[i]);
        for (uint64_t j = count_at(c, i); j; j--) sum += v;
    }
    return sum;
}

void value_counts_summarise(const struct value_counts *c, struct summary *s)
{
    memset(s, 0, sizeof *s);
    s->n = (size_t)c->n;
    if (!c->n) return;
    s->mean = ascending_sum(c) / (double)c->n;
    s->min = value_of(c->keys[0]);
    s->max = value_of(c->keys[c->used - 1]);
    s->p25 = percentile(c, 0.25);
    s->p50 = percentile(c, 0.50);
    s->p75 = percentile(c, 0.75);
    s->p90 = percentile(c, 0.90);
    s->p95 = percentile(c, 0.95);
    s->p99 = percentile(c, 0.99);
}

double value_counts_cv(const struct value_counts *c)
{
    if (c->n < 2) return 0;
    double mean = ascending_sum(c) / (double)c->n, var = 0;
    for (size_t i = 0; i < c->used; i++) {
        double v = value_of(c->keys[i]);
        for (uint64_t j = count_at(c, i); j; j--) var += (v - mean) * (v - mean);
    }
    return mean > 0 ? sqrt(var / (double)(c->n - 1)) / mean : 0;
}

void value_counts_free(struct value_counts *c)
{
    free(c->keys);
    free(c->counts);
    memset(c, 0, sizeof *c);
}
