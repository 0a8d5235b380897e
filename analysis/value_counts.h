/* An exact distribution kept as a count per distinct value (analysis only, never the hot
 * path): a run's per-token figures (ITL, chunk interval, lag, pacing) hold a value per token,
 * hundreds of millions in a long run, but fewer distinct ones; memory here grows with the
 * distinct values, never with the values. A table starts as a hash (12 bytes a slot, at most
 * 3/4 full, split into parts that grow one at a time, so growing never holds two copies of
 * the whole). Past 32 Ki distinct values, its adds of up to 16 values go to a buffer of keys
 * instead, sorted when full into a run of (value, count) ascending and delta-coded (near-unique
 * microseconds: about 3.5 bytes a distinct value), runs merged a level at a time so that they
 * stay few and a value repeated across them is kept once. Sorting makes the hash and the runs
 * one run, read in ascending order. Its summary is summarise()'s to the bit: the same order
 * statistics, the same type-7 interpolation, the mean summed value by value in ascending order.
 * Values must not be NaN; -0 is counted as +0; at most 2^32 - 1 values. Out of memory while
 * sorting, the process exits (status 1) saying so: no figure would be left to give.
 * Values given as whole ticks of a unit (value_counts_add_ticks: nanoseconds made
 * microseconds, say) from 0 to VALUE_COUNTS_DENSE - 1 ticks are counted, once a table holds
 * VALUE_COUNTS_DENSE_AFTER values, in an array indexed by the tick instead, with no hashing:
 * a run's lags and gaps mostly lie there, three per event. The array is mapped, not taken from
 * the heap, in small pages: only the pages where values fall take memory (4 KiB for 1,024
 * ticks), so a table of few values or of values close together stays small. */
#ifndef STROBE_VALUE_COUNTS_H
#define STROBE_VALUE_COUNTS_H
#include "stats.h"

#include <stdint.h>

#define VALUE_COUNTS_PARTS 16
/* Adds to the hash wait this many later adds for their slot, whose cache line is fetched when
 * they come: a table of tens of thousands of values is past the caches, and a probe waited
 * for memory (two thirds of the adds' time in a 1 M-event analysis). A power of two. */
#define VALUE_COUNTS_QUEUE 8
/* Ticks counted in the array: 2^20 (about a millisecond of nanoseconds), in blocks of 2^10
 * with a bit each that says whether any of its ticks came, so that reading skips the rest. */
#define VALUE_COUNTS_DENSE       (1u << 20)
#define VALUE_COUNTS_DENSE_BLOCK (1u << 10)
/* The values a table holds before its ticks go to an array (a smaller table stays a hash). */
#ifndef VALUE_COUNTS_DENSE_AFTER /* (a test builds it small, to reach every path) */
#define VALUE_COUNTS_DENSE_AFTER 4096
#endif

/* A value's order key (its bits made unsigned, ascending as the value; two halves, so that a
 * slot is 12 bytes and mostly one cache line) and its count (0: an empty slot). */
struct value_counts_slot {
    uint32_t key[2];
    uint32_t count;
};

struct value_counts_part {
    struct value_counts_slot *slots;
    size_t cap, used; /* slots, distinct values */
    size_t grow_at;   /* the distinct values that make it grow: 3/4 of cap */
};

/* A sorted run: (key, count) ascending by key, each key once, delta-coded (value_counts.c). */
struct value_counts_run {
    uint8_t *bytes;
    size_t len;
    uint32_t level; /* how many times its keys were merged from runs RUNS_PER_LEVEL at a time */
};

struct value_counts {
    struct value_counts_part part[VALUE_COUNTS_PARTS]; /* the hash */
    uint64_t n;                                        /* values */
    int sorted; /* after value_counts_sort: all in runs[0], no more adds */
    /* the last key added to the hash and its count's slot (NULL: none), so that a run of one
     * value (a chunk's one token, again and again) costs no hashing */
    uint64_t last_key;
    uint32_t *last_count;
    /* adds waiting for their slot (VALUE_COUNTS_QUEUE), oldest at queue_head; n counts them */
    uint64_t queued_key[VALUE_COUNTS_QUEUE];
    uint64_t queued_times[VALUE_COUNTS_QUEUE];
    unsigned queue_head, nqueued;
    /* once the hash holds many distinct values: the keys of adds of a few values, unsorted
     * (NULL before; the sort's room after them), sorted into a run when full */
    uint64_t *pending;
    size_t npending;
    struct value_counts_run *runs;
    size_t nruns, runs_cap;
    /* value_counts_add_ticks's counts per tick (NULL before), of ticks / dense_per */
    uint32_t *dense;
    double dense_per;
    int dense_refused; /* the array could not be mapped: the hash takes every value */
    uint64_t dense_blocks[VALUE_COUNTS_DENSE / VALUE_COUNTS_DENSE_BLOCK / 64];
};

/* Counts `times` more of v; 0, or -1 out of memory (or past 2^32 - 1 values). */
int value_counts_add(struct value_counts *c, double v, uint64_t times);
/* Counts `times` more of the value ticks / per, exactly as value_counts_add(c, (double)ticks /
 * per, times) would (per > 0: 1e3 for microseconds from nanoseconds); ticks from 0 to
 * VALUE_COUNTS_DENSE - 1 go to the array while c's adds of ticks keep one `per`. 0, or -1
 * out of memory (or past 2^32 - 1 values). */
int value_counts_add_ticks(struct value_counts *c, int64_t ticks, double per, uint64_t times);
/* Asks for the line that value_counts_add_ticks(c, ticks, ·, ·) would count in, when it is in
 * c's array: an array of a millisecond of nanoseconds is past the caches, and a caller with
 * many adds to make asks a few adds ahead. */
static inline void value_counts_prefetch_ticks(const struct value_counts *c, int64_t ticks)
{
    if (c->dense && (uint64_t)ticks < VALUE_COUNTS_DENSE) __builtin_prefetch(&c->dense[ticks], 1);
}
/* Moves every value of src into c (neither sorted yet) and frees src; 0, or -1 out of
 * memory. */
int value_counts_merge(struct value_counts *c, struct value_counts *src);
/* Sorts c for the reads below (no further adds); holds c's runs twice while it merges them. */
void value_counts_sort(struct value_counts *c);

/* Reads a sorted c's distinct values in ascending order. */
struct value_counts_cursor {
    const uint8_t *at, *end;
    uint64_t key;
};
void value_counts_cursor_start(struct value_counts_cursor *cur, const struct value_counts *c);
/* The next distinct value and how many times it came; 0 at the end. */
int value_counts_next(struct value_counts_cursor *cur, double *v, uint64_t *times);

/* Of a sorted c: the summary summarise() gives over the same values. */
void value_counts_summarise(const struct value_counts *c, struct summary *out);
/* Of a sorted c: standard deviation / mean (sample, n - 1), 0 with fewer than 2 values or a
 * mean <= 0, summed in ascending order. */
double value_counts_cv(const struct value_counts *c);
void value_counts_free(struct value_counts *c);

#endif
