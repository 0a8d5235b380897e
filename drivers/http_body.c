#include "http_body.h"

#include <stdlib.h>
#include <string.h>

size_t http_body_collect(char *data, size_t size, size_t n, void *arg)
{
    struct http_body *b = arg;
    size_t add = size * n;
    if (b->max && b->len + add > b->max) {
        b->too_big = 1;
        return 0; /* curl stops with a write error */
    }
    if (b->len + add + 1 > b->cap) {
        size_t cap = (b->len + add + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) return 0; /* out of memory: curl stops with a write error, the read fails */
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, add);
    b->len += add;
    b->p[b->len] = 0;
    return add;
}

void http_body_reset(struct http_body *b)
{
    b->len = 0;
    b->too_big = 0;
}

void http_body_free(struct http_body *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}
