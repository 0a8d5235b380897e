#include "value_counts.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A double's bits made an unsigned key whose order is the values' order, and back. */
static uint64_t key_of(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    if (v == 0) bits = 0; /* -0 is +0 */
    /* a negative's bits all flipped, a positive's sign bit set: no branch */
    return bits ^ ((uint64_t)((int64_t)bits >> 63) | 1ULL << 63);
}

static double value_of(uint64_t k)
{
    uint64_t bits = k >> 63 ? k & ~(1ULL << 63) : ~k;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static uint64_t hash(uint64_t key) { return key * 0x9e3779b97f4a7c15ULL; }

/* The part is chosen by the hash's top bits, the slot by the bits below them. */
static size_t slot_of(uint64_t h, size_t cap) { return (size_t)(h >> 20) & (cap - 1); }

/* Doubles a part (the slow path, kept out of add_key's line). */
static __attribute__((noinline)) int grow(struct value_counts *c, struct value_counts_part *p)
{
    size_t cap = p->cap ? p->cap * 2 : 64;
    uint64_t *keys = big_realloc(NULL, cap * sizeof *keys);
    uint32_t *counts = big_realloc(NULL, cap * sizeof *counts);
    if (!keys || !counts) {
        free(keys);
        free(counts);
        return -1;
    }
    memset(counts, 0, cap * sizeof *counts);
    for (size_t i = 0; i < p->cap; i++) {
        if (!p->counts[i]) continue;
        size_t s = slot_of(hash(p->keys[i]), cap);
        while (counts[s]) s = (s + 1) & (cap - 1);
        keys[s] = p->keys[i];
        counts[s] = p->counts[i];
    }
    free(p->keys);
    free(p->counts);
    p->keys = keys;
    p->counts = counts;
    p->cap = cap;
    p->grow_at = cap / 4 * 3; /* at most 3/4 full */
    c->last_count = NULL;     /* it may have pointed into this part */
    return 0;
}

/* The count of key in p, which has room for it: its slot, taken when key is new. */
static inline uint32_t *slot_for(struct value_counts_part *p, uint64_t key, uint64_t h)
{
    size_t s = slot_of(h, p->cap);
    while (p->counts[s] && p->keys[s] != key) s = (s + 1) & (p->cap - 1);
    if (!p->counts[s]) {
        p->keys[s] = key;
        p->used++;
    }
    return &p->counts[s];
}

/* Adds `times` to key's count (times fits, checked) and remembers its slot. */
static inline int counted(struct value_counts *c, uint64_t key, uint32_t *count, uint64_t times)
{
    *count += (uint32_t)times;
    c->n += times;
    c->last_key = key;
    c->last_count = count;
    return 0;
}

/* add_key's slow path, in its own frame so that the common one saves no registers. */
static __attribute__((noinline)) int add_growing(struct value_counts *c,
                                                 struct value_counts_part *p, uint64_t key,
                                                 uint64_t h, uint64_t times)
{
    if (grow(c, p)) return -1;
    return counted(c, key, slot_for(p, key, h), times);
}

static inline __attribute__((always_inline)) int add_key(struct value_counts *c, uint64_t key,
                                                         uint64_t times)
{
    if (times - 1 >= UINT32_MAX - c->n) return times ? -1 : 0; /* also times == 0 */
    if (key == c->last_key && c->last_count) return counted(c, key, c->last_count, times);
    uint64_t h = hash(key);
    struct value_counts_part *p = &c->part[h >> 60];
    if (p->used >= p->grow_at) return add_growing(c, p, key, h, times);
    return counted(c, key, slot_for(p, key, h), times);
}

int value_counts_add(struct value_counts *c, double v, uint64_t times)
{
    return add_key(c, key_of(v), times);
}

int value_counts_merge(struct value_counts *c, struct value_counts *src)
{
    /* of each pair of parts the larger stays in c and the smaller is added to it */
    for (int k = 0; k < VALUE_COUNTS_PARTS; k++)
        if (src->part[k].used > c->part[k].used) {
            struct value_counts_part t = c->part[k];
            c->part[k] = src->part[k];
            src->part[k] = t;
        }
    c->n = 0;
    c->last_count = NULL; /* its part may have moved to src */
    for (int k = 0; k < VALUE_COUNTS_PARTS; k++)
        for (size_t i = 0; i < c->part[k].cap; i++) c->n += c->part[k].counts[i];
    int rc = 0;
    for (int k = 0; k < VALUE_COUNTS_PARTS && !rc; k++) {
        const struct value_counts_part *s = &src->part[k];
        for (size_t i = 0; i < s->cap && !rc; i++)
            if (s->counts[i]) rc = add_key(c, s->keys[i], s->counts[i]);
    }
    value_counts_free(src);
    return rc;
}

static void swap(struct value_counts_part *p, size_t a, size_t b)
{
    uint64_t k = p->keys[a];
    uint32_t n = p->counts[a];
    p->keys[a] = p->keys[b];
    p->counts[a] = p->counts[b];
    p->keys[b] = k;
    p->counts[b] = n;
}

/* Quicksort of keys[lo, hi) with their counts, in place (no second copy of a large table):
 * the median of three as pivot, the smaller side first so the stack stays logarithmic. */
static void sort_range(struct value_counts_part *p, size_t lo, size_t hi)
{
    while (hi - lo > 16) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->keys[mid] < p->keys[lo]) swap(p, mid, lo);
        if (p->keys[hi - 1] < p->keys[lo]) swap(p, hi - 1, lo);
        if (p->keys[hi - 1] < p->keys[mid]) swap(p, hi - 1, mid);
        uint64_t pivot = p->keys[mid];
        size_t i = lo, j = hi - 1;
        for (;;) { /* keys are distinct */
            while (p->keys[i] < pivot) i++;
            while (p->keys[j] > pivot) j--;
            if (i >= j) break;
            swap(p, i++, j--);
        }
        if (j + 1 - lo < hi - j - 1) {
            sort_range(p, lo, j + 1);
            lo = j + 1;
        } else {
            sort_range(p, j + 1, hi);
            hi = j + 1;
        }
    }
    for (size_t i = lo + 1; i < hi; i++)
        for (size_t j = i; j > lo && p->keys[j] < p->keys[j - 1]; j--) swap(p, j, j - 1);
}

void value_counts_sort(struct value_counts *c)
{
    if (c->sorted) return;
    c->last_count = NULL; /* slots move */
    for (int k = 0; k < VALUE_COUNTS_PARTS; k++) {
        struct value_counts_part *p = &c->part[k];
        size_t m = 0;
        for (size_t i = 0; i < p->cap; i++)
            if (p->counts[i]) {
                p->keys[m] = p->keys[i];
                p->counts[m++] = p->counts[i];
            }
        sort_range(p, 0, m);
    }
    c->sorted = 1;
}

void value_counts_cursor_start(struct value_counts_cursor *cur, const struct value_counts *c)
{
    memset(cur, 0, sizeof *cur);
    cur->c = c;
}

int value_counts_next(struct value_counts_cursor *cur, double *v, uint64_t *times)
{
    int best = -1;
    uint64_t key = 0;
    for (int k = 0; k < VALUE_COUNTS_PARTS; k++) {
        const struct value_counts_part *p = &cur->c->part[k];
        if (cur->at[k] < p->used && (best < 0 || p->keys[cur->at[k]] < key)) {
            best = k;
            key = p->keys[cur->at[k]];
        }
    }
    if (best < 0) return 0;
    *v = value_of(key);
    *times = cur->c->part[best].counts[cur->at[best]++];
    return 1;
}

#define QUANTILES 6
static const double quantile[QUANTILES] = {0.25, 0.50, 0.75, 0.90, 0.95, 0.99};

void value_counts_summarise(const struct value_counts *c, struct summary *s)
{
    memset(s, 0, sizeof *s);
    uint64_t n = c->n;
    s->n = (size_t)n;
    if (!n) return;
    /* percentile_sorted's order statistics: rank lo and, when it interpolates, lo + 1 */
    uint64_t rank[2 * QUANTILES];
    double at[2 * QUANTILES], h[QUANTILES];
    for (int q = 0; q < QUANTILES; q++) {
        h[q] = (double)(n - 1) * quantile[q];
        uint64_t lo = (uint64_t)h[q];
        rank[2 * q] = lo < n ? lo : n - 1;
        rank[2 * q + 1] = lo + 1 < n ? lo + 1 : n - 1;
    }
    struct value_counts_cursor cur;
    value_counts_cursor_start(&cur, c);
    double v, sum = 0;
    uint64_t times, below = 0;
    int first = 1;
    while (value_counts_next(&cur, &v, &times)) {
        if (first) s->min = v;
        first = 0;
        s->max = v;
        for (int r = 0; r < 2 * QUANTILES; r++)
            if (rank[r] >= below && rank[r] < below + times) at[r] = v;
        below += times;
        for (; times; times--) sum += v;
    }
    s->mean = sum / (double)n;
    double *out[QUANTILES] = {&s->p25, &s->p50, &s->p75, &s->p90, &s->p95, &s->p99};
    for (int q = 0; q < QUANTILES; q++) {
        uint64_t lo = (uint64_t)h[q];
        double a = at[2 * q], b = at[2 * q + 1];
        if (lo + 1 >= n || h[q] == (double)lo || b == a) /* == also keeps ∞ from NaN */
            *out[q] = a;
        else
            *out[q] = a + (h[q] - (double)lo) * (b - a);
    }
}

/* The values summed one by one in ascending order, as summarise() sums its sorted array. */
static double ascending_sum(const struct value_counts *c)
{
    struct value_counts_cursor cur;
    value_counts_cursor_start(&cur, c);
    double v, sum = 0;
    uint64_t times;
    while (value_counts_next(&cur, &v, &times))
        for (; times; times--) sum += v;
    return sum;
}

double value_counts_cv(const struct value_counts *c)
{
    if (c->n < 2) return 0;
    double mean = ascending_sum(c) / (double)c->n, var = 0, v;
    uint64_t times;
    struct value_counts_cursor cur;
    value_counts_cursor_start(&cur, c);
    while (value_counts_next(&cur, &v, &times))
        for (; times; times--) var += (v - mean) * (v - mean);
    return mean > 0 ? sqrt(var / (double)(c->n - 1)) / mean : 0;
}

void value_counts_free(struct value_counts *c)
{
    for (int k = 0; k < VALUE_COUNTS_PARTS; k++) {
        free(c->part[k].keys);
        free(c->part[k].counts);
    }
    memset(c, 0, sizeof *c);
}
