#include "byte_scan.h"

#include <stdint.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

static uint64_t load64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The tails every path may end with: the line end a byte a step, the compares eight bytes a
 * step and then one. */
static const char *line_end_tail(const char *p, size_t i, size_t n)
{
    for (; i < n; i++)
        if (p[i] == '\n' || p[i] == '\r') return p + i;
    return NULL;
}

static size_t prefix_tail(const char *a, const char *b, size_t i, size_t n)
{
    for (; i + 8 <= n; i += 8) {
        uint64_t x = load64(a + i) ^ load64(b + i);
        if (x) return i + (size_t)__builtin_ctzll(x) / 8;
    }
    while (i < n && a[i] == b[i]) i++;
    return i;
}

static size_t suffix_tail(const char *a_end, const char *b_end, size_t i, size_t n)
{
    for (; i + 8 <= n; i += 8) {
        uint64_t x = load64(a_end - i - 8) ^ load64(b_end - i - 8);
        if (x) return i + (size_t)__builtin_clzll(x) / 8;
    }
    while (i < n && a_end[-(ptrdiff_t)i - 1] == b_end[-(ptrdiff_t)i - 1]) i++;
    return i;
}

#ifdef __SSE2__
static const char *line_end_sse2(const char *p, size_t n)
{
    const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        unsigned hit =
            (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, lf), _mm_cmpeq_epi8(x, cr)));
        if (hit) return p + i + __builtin_ctz(hit);
    }
    if (i == n || n < 16) return line_end_tail(p, i, n);
    /* the last bytes (a line's end is there, in an event): the last 16, less those seen */
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + n - 16));
    unsigned hit =
        (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, lf), _mm_cmpeq_epi8(x, cr)));
    hit &= ~0u << (i - (n - 16));
    return hit ? p + n - 16 + __builtin_ctz(hit) : NULL;
}

static size_t prefix_sse2(const char *a, const char *b, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(a + i));
        __m128i y = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
        unsigned differ = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) ^ 0xffffu;
        if (differ) return i + (size_t)__builtin_ctz(differ);
    }
    return prefix_tail(a, b, i, n);
}

static size_t suffix_sse2(const char *a_end, const char *b_end, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(a_end - i - 16));
        __m128i y = _mm_loadu_si128((const __m128i *)(const void *)(b_end - i - 16));
        unsigned differ = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) ^ 0xffffu;
        /* the highest differing byte is the one nearest the end */
        if (differ) return i + (size_t)__builtin_clz(differ) - 16;
    }
    return suffix_tail(a_end, b_end, i, n);
}
#endif

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && defined(__SSE2__)
#define HAVE_AVX2_PATH 1
__attribute__((target("avx2"))) static const char *line_end_avx2(const char *p, size_t n)
{
    const __m256i lf = _mm256_set1_epi8('\n'), cr = _mm256_set1_epi8('\r');
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(p + i));
        unsigned hit = (unsigned)_mm256_movemask_epi8(
            _mm256_or_si256(_mm256_cmpeq_epi8(x, lf), _mm256_cmpeq_epi8(x, cr)));
        if (hit) return p + i + __builtin_ctz(hit);
    }
    if (i == n || n < 32) return line_end_sse2(p + i, n - i);
    /* the last bytes (a line's end is there, in an event): the last 32, less those seen */
    __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(p + n - 32));
    unsigned hit = (unsigned)_mm256_movemask_epi8(
        _mm256_or_si256(_mm256_cmpeq_epi8(x, lf), _mm256_cmpeq_epi8(x, cr)));
    hit &= ~0u << (i - (n - 32));
    return hit ? p + n - 32 + __builtin_ctz(hit) : NULL;
}

__attribute__((target("avx2"))) static size_t prefix_avx2(const char *a, const char *b, size_t n)
{
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(a + i));
        __m256i y = _mm256_loadu_si256((const __m256i *)(const void *)(b + i));
        unsigned differ = ~(unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, y));
        if (differ) return i + (size_t)__builtin_ctz(differ);
    }
    if (i == n || n < 32) return i + prefix_sse2(a + i, b + i, n - i);
    /* the last 32 bytes, less those seen */
    __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(a + n - 32));
    __m256i y = _mm256_loadu_si256((const __m256i *)(const void *)(b + n - 32));
    unsigned differ = ~(unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, y));
    differ &= ~0u << (i - (n - 32));
    return differ ? n - 32 + (size_t)__builtin_ctz(differ) : n;
}

__attribute__((target("avx2"))) static size_t suffix_avx2(const char *a_end, const char *b_end,
                                                          size_t n)
{
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(a_end - i - 32));
        __m256i y = _mm256_loadu_si256((const __m256i *)(const void *)(b_end - i - 32));
        unsigned differ = ~(unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, y));
        if (differ) return i + (size_t)__builtin_clz(differ);
    }
    if (i == n || n < 32) return i + suffix_sse2(a_end - i, b_end - i, n - i);
    /* the first 32 of the n bytes, less those seen (the highest i bits: the block's end) */
    __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(a_end - n));
    __m256i y = _mm256_loadu_si256((const __m256i *)(const void *)(b_end - n));
    unsigned differ = ~(unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(x, y));
    differ &= ~0u >> (i - (n - 32));
    return differ ? n - 32 + (size_t)__builtin_clz(differ) : n;
}
#endif

#ifndef __SSE2__
static const char *line_end_scalar(const char *p, size_t n) { return line_end_tail(p, 0, n); }
static size_t prefix_scalar(const char *a, const char *b, size_t n)
{
    return prefix_tail(a, b, 0, n);
}
static size_t suffix_scalar(const char *a_end, const char *b_end, size_t n)
{
    return suffix_tail(a_end, b_end, 0, n);
}
#define line_end_base line_end_scalar
#define prefix_base   prefix_scalar
#define suffix_base   suffix_scalar
#define BASE_PATH     "scalar"
#else
#define line_end_base line_end_sse2
#define prefix_base   prefix_sse2
#define suffix_base   suffix_sse2
#define BASE_PATH     "sse2"
#endif

/* Chosen before main (a constructor: no thread can race the choice), read per call. */
static const char *(*line_end_fn)(const char *, size_t) = line_end_base;
static size_t (*prefix_fn)(const char *, const char *, size_t) = prefix_base;
static size_t (*suffix_fn)(const char *, const char *, size_t) = suffix_base;
static const char *path = BASE_PATH;

int scan_use(const char *name)
{
    if (!strcmp(name, BASE_PATH)) {
        line_end_fn = line_end_base;
        prefix_fn = prefix_base;
        suffix_fn = suffix_base;
        path = BASE_PATH;
        return 0;
    }
#ifdef HAVE_AVX2_PATH
    __builtin_cpu_init();
    if (!strcmp(name, "avx2") && __builtin_cpu_supports("avx2")) {
        line_end_fn = line_end_avx2;
        prefix_fn = prefix_avx2;
        suffix_fn = suffix_avx2;
        path = "avx2";
        return 0;
    }
#endif
    return -1;
}

__attribute__((constructor)) static void choose_path(void) { scan_use("avx2"); }

const char *scan_line_end(const char *p, size_t n) { return line_end_fn(p, n); }

size_t scan_common_prefix(const char *a, const char *b, size_t n) { return prefix_fn(a, b, n); }

size_t scan_common_suffix(const char *a_end, const char *b_end, size_t n)
{
    return suffix_fn(a_end, b_end, n);
}

const char *scan_path(void) { return path; }
