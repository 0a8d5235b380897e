#include "stats.h"

#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
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
    qsort(v, n, sizeof *v, cmp_double);
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

void dvec_push(struct dvec *d, double x)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->v = realloc(d->v, d->cap * sizeof *d->v);
    }
    d->v[d->n++] = x;
}

void dvec_free(struct dvec *d)
{
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
}
