#include "stats.h"

#include "must_alloc.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A double's bits made an unsigned key whose order is the values' order. */
static uint64_t sort_key(uint64_t bits) { return bits >> 63 ? ~bits : bits | 1ULL << 63; }
static uint64_t sort_unkey(uint64_t k) { return k >> 63 ? k & ~(1ULL << 63) : ~k; }

#define RADIX_BITS   11
#define RADIX_PASSES 6 /* 66 bits >= 64 */

/* Sorts by the keys' digits, least significant first, skipping digits all values share.
 * Without NaN and -0 (checked by the caller) equal values are the same bits, so this gives
 * exactly qsort's order, in linear time: the per-event distributions of a long run hold
 * hundreds of millions of values. */
static int radix_sort(double *v, size_t n)
{
    uint64_t *a = (uint64_t *)(void *)v, *tmp = malloc(n * sizeof *tmp);
    size_t(*count)[1 << RADIX_BITS] = calloc(RADIX_PASSES, sizeof *count);
    if (!tmp || !count) {
        free(tmp);
        free(count);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        a[i] = sort_key(bits);
        for (int p = 0; p < RADIX_PASSES; p++)
            count[p][(a[i] >> (p * RADIX_BITS)) & ((1u << RADIX_BITS) - 1)]++;
    }
    uint64_t *from = a, *to = tmp;
    for (int p = 0; p < RADIX_PASSES; p++) {
        size_t *c = count[p], sum = 0;
        if (c[(from[0] >> (p * RADIX_BITS)) & ((1u << RADIX_BITS) - 1)] == n) continue;
        for (size_t d = 0; d < (1u << RADIX_BITS); d++) {
            size_t k = c[d];
            c[d] = sum;
            sum += k;
        }
        for (size_t i = 0; i < n; i++)
            to[c[(from[i] >> (p * RADIX_BITS)) & ((1u << RADIX_BITS) - 1)]++] = from[i];
        uint64_t *t = from;
        from = to;
        to = t;
    }
    if (from != a) memcpy(a, from, n * sizeof *a);
    for (size_t i = 0; i < n; i++) {
        uint64_t bits = sort_unkey(a[i]);
        memcpy(&v[i], &bits, sizeof bits);
    }
    free(tmp);
    free(count);
    return 0;
}

/* qsort's order, by the radix sort when the values allow it (large, no NaN, no -0). */
static void sort_values(double *v, size_t n)
{
    int plain = n >= 4096;
    for (size_t i = 0; plain && i < n; i++)
        if (isnan(v[i]) || (v[i] == 0 && signbit(v[i]))) plain = 0;
    if (!plain || radix_sort(v, n)) qsort(v, n, sizeof *v, cmp_double);
}

double percentile_sorted(const double *v, size_t n, double q)
{
    if (n == 0) return 0;
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)h;
    if (lo + 1 >= n || h == (double)lo) return v[lo < n ? lo : n - 1];
    if (v[lo + 1] == v[lo]) return v[lo]; /* also keeps ∞ from becoming NaN */
    return v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]);
}

void summarise(double *v, size_t n, struct summary *s)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    if (!n) return;
    sort_values(v, n);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += v[i];
    s->mean = sum / (double)n;
    s->min = v[0];
    s->max = v[n - 1];
    s->p25 = percentile_sorted(v, n, 0.25);
    s->p50 = percentile_sorted(v, n, 0.50);
    s->p75 = percentile_sorted(v, n, 0.75);
    s->p90 = percentile_sorted(v, n, 0.90);
    s->p95 = percentile_sorted(v, n, 0.95);
    s->p99 = percentile_sorted(v, n, 0.99);
}

void *big_realloc(void *p, size_t bytes)
{
    p = realloc(p, bytes);
    if (p && bytes >= (4u << 20)) {
        /* the whole 2 MiB pages inside the block */
        uintptr_t from = ((uintptr_t)p + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1);
        uintptr_t to = ((uintptr_t)p + bytes) & ~(uintptr_t)((2u << 20) - 1);
        if (to > from) madvise((void *)from, to - from, MADV_HUGEPAGE);
    }
    return p;
}

void *calloc_lines(size_t n, size_t size)
{
    if (n && size > (SIZE_MAX - 64) / n) return NULL;
    size_t bytes = (n ? n : 1) * size;
    bytes = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void dvec_push(struct dvec *d, double x)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        /* a distribution that cannot grow leaves no figure to give */
        d->v = must_have(big_realloc(d->v, cap * sizeof *d->v), "a distribution's values");
        d->cap = cap;
    }
    d->v[d->n++] = x;
}

void dvec_push_known(struct dvec *d, double x)
{
    if (!isnan(x)) dvec_push(d, x);
}

/* Out of memory d stays as it was: its cap short of n tells the caller. */
void dvec_reserve(struct dvec *d, size_t n)
{
    if (n <= d->cap || n > SIZE_MAX / sizeof *d->v) return;
    double *v = big_realloc(d->v, n * sizeof *v);
    if (!v) return;
    d->v = v;
    d->cap = n;
}

void dvec_free(struct dvec *d)
{
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
}
