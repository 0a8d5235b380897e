/* Distributions: percentiles by linear interpolation between order statistics (type 7,
 * numpy's default), as methodology.md decision 8 requires. */
#ifndef STROBE_STATS_H
#define STROBE_STATS_H
#include <stddef.h>

struct summary {
    size_t n;
    double mean, min, max, p25, p50, p75, p90, p95, p99;
};

/* Sorts v in place and summarises it; all fields 0 when n == 0. */
void summarise(double *v, size_t n, struct summary *out);
/* q in [0,1] over an already sorted array. */
double percentile_sorted(const double *v, size_t n, double q);

/* realloc that asks for transparent huge pages once an array is large: the analysis's arrays
 * reach gigabytes, and on a virtual machine their page faults cost more than their use. */
void *big_realloc(void *p, size_t bytes);

/* n zeroed elements of `size` bytes on whole 64-byte cache lines (aligned_alloc: free() frees
 * them), for arrays whose neighbouring elements different threads write; NULL out of memory. */
void *calloc_lines(size_t n, size_t size);

/* A growable array of doubles (analysis only, never the hot path). */
struct dvec {
    double *v;
    size_t n, cap;
};
void dvec_push(struct dvec *d, double x);
/* The same, leaving out x when it is NAN: a figure that cannot be known (stamps_apart, facts.h,
 * on a damaged log's stamps) is not counted. */
void dvec_push_known(struct dvec *d, double x);
/* Room for n values at once (an upper bound is fine: untouched pages cost no memory). */
void dvec_reserve(struct dvec *d, size_t n);
void dvec_free(struct dvec *d);

#endif
