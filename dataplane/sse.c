#include "sse.h"

#include <string.h>

void sse_init(struct sse_framer *f)
{
    f->line_len = f->data_len = 0;
    f->has_data = f->truncated = f->after_cr = f->is_error = 0;
}

static void append(char *dst, size_t *len, const char *src, size_t n, int *truncated)
{
    if (*len + n > SSE_MAX_EVENT) {
        n = SSE_MAX_EVENT - *len;
        *truncated = 1;
    }
    memcpy(dst + *len, src, n);
    *len += n;
}

/* A complete line: a field, a comment, or the blank line that ends an event. */
static int end_line(struct sse_framer *f, sse_event_fn fn, void *arg)
{
    const char *l = f->line;
    size_t n = f->line_len;
    f->line_len = 0;
    if (n == 0) {
        int rc = 0;
        if (f->has_data) rc = fn(arg, f->data, f->data_len, f->truncated, f->is_error);
        f->data_len = 0;
        f->has_data = f->truncated = f->is_error = 0;
        return rc;
    }
    if (l[0] == ':') return 0;
    const char *colon = memchr(l, ':', n);
    size_t name_len = colon ? (size_t)(colon - l) : n;
    const char *value = colon ? colon + 1 : l + n;
    size_t value_len = (size_t)(l + n - value);
    if (value_len && value[0] == ' ') value++, value_len--;
    if (name_len == 4 && !memcmp(l, "data", 4)) {
        if (f->has_data) append(f->data, &f->data_len, "\n", 1, &f->truncated);
        append(f->data, &f->data_len, value, value_len, &f->truncated);
        f->has_data = 1;
    } else if (name_len == 5 && !memcmp(l, "event", 5)) {
        f->is_error = value_len == 5 && !memcmp(value, "error", 5);
    }
    return 0;
}

int sse_feed(struct sse_framer *f, const char *buf, size_t len, sse_event_fn fn, void *arg)
{
    size_t i = 0;
    while (i < len) {
        if (f->after_cr) {
            f->after_cr = 0;
            if (buf[i] == '\n') {
                i++;
                continue;
            }
        }
        /* find the next line end in one scan rather than byte by byte */
        const char *nl = memchr(buf + i, '\n', len - i);
        const char *cr = memchr(buf + i, '\r', nl ? (size_t)(nl - (buf + i)) : len - i);
        const char *end = cr ? cr : nl;
        size_t take = end ? (size_t)(end - (buf + i)) : len - i;
        int dummy = 0;
        append(f->line, &f->line_len, buf + i, take, f->has_data ? &f->truncated : &dummy);
        i += take;
        if (!end) break;
        i++;
        if (end == cr) f->after_cr = 1;
        f->end_pos = i;
        int rc = end_line(f, fn, arg);
        if (rc) return rc;
    }
    return 0;
}
