/* An exact distribution kept as a count per distinct value (analysis only, never the hot
 * path): a run's per-token figures (ITL, chunk interval, lag, pacing) hold a value per token,
 * hundreds of millions in a long run, but few distinct ones; memory here grows with the
 * distinct values. Its summary is summarise()'s to the bit: the same order statistics, the
 * same type-7 interpolation, the mean summed value by value in ascending order. Values must
 * not be NaN; -0 is counted as +0. */
#ifndef STROBE_VALUE_COUNTS_H
#define STROBE_VALUE_COUNTS_H
#include "stats.h"

#include <stdint.h>

struct value_counts {
    uint64_t *keys;   /* a value's order key (its bits made unsigned, ascending as the value) */
    uint64_t *counts; /* 0: an empty slot */
    size_t cap, used; /* slots, distinct values */
    uint64_t n;       /* values */
    int sorted;       /* after value_counts_sort: keys[0..used) ascending, no more adds */
};

/* Counts `times` more of v; 0, or -1 out of memory. */
int value_counts_add(struct value_counts *c, double v, uint64_t times);
/* Adds every value of src into c (neither sorted yet); 0, or -1 out of memory. */
int value_counts_merge(struct value_counts *c, const struct value_counts *src);
/* Makes c a sorted list (no further adds); 0, or -1 out of memory. */
int value_counts_sort(struct value_counts *c);
/* Of a sorted c: the summary summarise() gives over the same values. */
void value_counts_summarise(const struct value_counts *c, struct summary *out);
/* Of a sorted c: standard deviation / mean (sample, n - 1), 0 with fewer than 2 values or a
 * mean <= 0, summed in ascending order. */
double value_counts_cv(const struct value_counts *c);
/* The i-th distinct value (i < used) of a sorted c, ascending, and how many times it came. */
double value_counts_distinct(const struct value_counts *c, size_t i, uint64_t *times);
/* The k-th smallest value (0-based, k < n) of a sorted c. */
double value_counts_at(const struct value_counts *c, uint64_t k);
void value_counts_free(struct value_counts *c);

#endif
