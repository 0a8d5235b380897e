/* Allocations of set-up and control (workloads, flags, the run's tables; never the per-chunk
 * path), where running out of memory leaves nothing worth doing: the process exits, status 1,
 * saying how much it was allocating and for what. A size of 0 is taken as 1, so that NULL
 * always means out of memory. */
#ifndef STROBE_MUST_ALLOC_H
#define STROBE_MUST_ALLOC_H
#include <stddef.h>

void *must_malloc(size_t size, const char *what);
/* n * size checked for overflow (an overflow is out of memory). */
void *must_calloc(size_t n, size_t size, const char *what);
void *must_realloc(void *p, size_t size, const char *what);
char *must_strdup(const char *s, const char *what);
/* p, or the same exit when p is NULL: for what a library allocated (cJSON's printer). */
void *must_have(void *p, const char *what);

#endif
