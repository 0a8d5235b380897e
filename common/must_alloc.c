#include "must_alloc.h"

#include <errno.h> /* program_invocation_short_name: strobe or strobe-emu */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* size 0: not known */
static _Noreturn void out_of_memory(size_t size, const char *what)
{
    char bytes[48] = "";
    if (size) snprintf(bytes, sizeof bytes, " %zu bytes", size);
    fprintf(stderr,
            "%s: out of memory allocating%s for %s; free memory (or raise the process's limit, "
            "ulimit -v) and run again, or make the run smaller.\n",
            program_invocation_short_name, bytes, what);
    exit(1);
}

void *must_malloc(size_t size, const char *what)
{
    void *p = malloc(size ? size : 1);
    if (!p) out_of_memory(size, what);
    return p;
}

void *must_calloc(size_t n, size_t size, const char *what)
{
    if (size && n > (size_t)-1 / size) out_of_memory(0, what);
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) out_of_memory(n * size, what);
    return p;
}

void *must_realloc(void *p, size_t size, const char *what)
{
    void *q = realloc(p, size ? size : 1);
    if (!q) out_of_memory(size, what);
    return q;
}

char *must_strdup(const char *s, const char *what)
{
    size_t n = strlen(s) + 1;
    char *p = must_malloc(n, what);
    memcpy(p, s, n);
    return p;
}

void *must_have(void *p, const char *what)
{
    if (!p) out_of_memory(0, what);
    return p;
}
