/* The byte scans a worker runs over every event's ~200 bytes: finding its line end (the SSE
 * framer) and the bytes it shares with the request's key (the body keying). 32 bytes a step
 * where the CPU has AVX2 (asked once, when the program loads), else 16 (SSE2, every x86-64),
 * else byte by byte (the compares 8 at a time); the result is the same on every path. */
#ifndef STROBE_BYTE_SCAN_H
#define STROBE_BYTE_SCAN_H
#include <stddef.h>

/* The first '\n' or '\r' in p[0, n), or NULL. */
const char *scan_line_end(const char *p, size_t n);
/* How many bytes a[0, n) and b[0, n) share from their starts. */
size_t scan_common_prefix(const char *a, const char *b, size_t n);
/* How many bytes the n bytes before a_end and before b_end share from their ends. */
size_t scan_common_suffix(const char *a_end, const char *b_end, size_t n);
/* The path in use: "avx2", "sse2" or "scalar" (for a benchmark's report). */
const char *scan_path(void);
/* Tests and benchmarks: use the named path from now on (no thread scanning meanwhile). 0, or
 * -1 when this build or CPU lacks it (the path in use is kept). */
int scan_use(const char *name);

#endif
