/* The byte scans (byte_scan.h) on every path this build and CPU have (avx2, sse2, scalar)
 * against a byte loop: line ends and common prefixes and suffixes at every length from 0 to
 * 200 and every alignment within a 64-byte block, the differing byte or line end at every
 * position, and each vector's last lane, where a wrong shift or mask would show; random bytes
 * in blocks of their exact size, where the sanitizer build sees any load past their ends. */
#include "byte_scan.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

#define LEN_MAX 200

static const char *naive_line_end(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\n' || p[i] == '\r') return p + i;
    return NULL;
}

static size_t naive_prefix(const char *a, const char *b, size_t n)
{
    size_t i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

static size_t naive_suffix(const char *a_end, const char *b_end, size_t n)
{
    size_t i = 0;
    while (i < n && a_end[-1 - (long)i] == b_end[-1 - (long)i]) i++;
    return i;
}

/* Every length, alignment and position of the one byte that matters. Returns the mismatches. */
static size_t scan_all(void)
{
    static char a[LEN_MAX + 128], b[LEN_MAX + 128];
    size_t bad = 0;
    for (size_t align = 0; align < 64; align += 3) {
        for (size_t n = 0; n <= LEN_MAX; n++) {
            for (size_t at = 0; at <= n; at++) { /* at == n: no such byte */
                char *p = a + align, *q = b + (align * 7) % 64;
                for (size_t i = 0; i < n; i++) p[i] = q[i] = (char)('a' + (i * 13 + n) % 26);
                if (at < n) {
                    p[at] = (at & 1) ? '\r' : '\n';
                    q[at] = 'X';
                }
                if (scan_line_end(p, n) != naive_line_end(p, n)) bad++;
                if (scan_common_prefix(p, q, n) != naive_prefix(p, q, n)) bad++;
                if (scan_common_suffix(p + n, q + n, n) != naive_suffix(p + n, q + n, n)) bad++;
            }
        }
    }
    /* random bytes over a small alphabet: line ends and near misses everywhere */
    for (int t = 0; t < 100000; t++) {
        size_t n = (size_t)rand() % (LEN_MAX + 1), off = (size_t)rand() % 64;
        for (size_t i = 0; i < n; i++) {
            a[off + i] = "ab\n\r"[rand() % 4];
            b[off + i] = rand() % 8 ? a[off + i] : 'c';
        }
        size_t limit = n ? (size_t)rand() % (n + 1) : 0;
        /* in blocks of exactly their size: under ASan a load past either end fails */
        char *x = malloc(n ? n : 1), *y = malloc(n ? n : 1);
        memcpy(x, a + off, n);
        memcpy(y, b + off, n);
        if (scan_line_end(x, n) != naive_line_end(x, n)) bad++;
        if (scan_common_prefix(x, y, limit) != naive_prefix(x, y, limit)) bad++;
        if (scan_common_suffix(x + n, y + n, limit) != naive_suffix(x + n, y + n, limit)) bad++;
        free(x);
        free(y);
    }
    return bad;
}

int main(void)
{
    srand(11);
    const char *chosen = scan_path();
    const char *paths[] = {"avx2", "sse2", "scalar"};
    int ran = 0;
    for (int i = 0; i < 3; i++) {
        if (scan_use(paths[i])) continue; /* not in this build, or not on this CPU */
        ran++;
        CHECK(!strcmp(scan_path(), paths[i]), "asked for %s, in use %s", paths[i], scan_path());
        size_t bad = scan_all();
        CHECK(bad == 0, "%s: %zu scans differ from a byte loop", paths[i], bad);
    }
    CHECK(ran >= 1, "no scan path could be chosen");
    CHECK(scan_use("neon") == -1, "an unknown path is refused");
    CHECK(scan_use(chosen) == 0 && !strcmp(scan_path(), chosen),
          "the path chosen at load (%s) can be chosen again", chosen);
    return check_done("byte_scan");
}
