#include "sse.h"

#include "byte_scan.h"

#include <stdlib.h>
#include <string.h>

enum { F_NAME, F_DATA, F_EVENT, F_SKIP };

void sse_init(struct sse_framer *f, size_t max_event)
{
    memset(f, 0, sizeof *f);
    f->max_event = max_event ? max_event : SSE_DEFAULT_MAX_EVENT;
}

void sse_reset(struct sse_framer *f)
{
    f->data_len = f->name_len = f->ev_len = 0;
    f->has_data = f->truncated = f->after_cr = f->is_error = f->value_start = 0;
    f->direct = NULL;
    f->direct_len = 0;
    f->field = F_NAME;
}

void sse_free(struct sse_framer *f)
{
    free(f->data);
    f->data = NULL;
    f->data_cap = 0;
}

/* Room for `need` bytes: doubles (from SSE_INITIAL_CAP) up to max_event. 0, or -1 when
 * memory ran out (the buffer is left as it was). */
static int grow(struct sse_framer *f, size_t need)
{
    size_t cap = f->data_cap ? f->data_cap : SSE_INITIAL_CAP;
    while (cap < need) cap = cap > f->max_event / 2 ? f->max_event : cap * 2;
    if (cap > f->max_event) cap = f->max_event;
    char *d = realloc(f->data, cap);
    if (!d) return -1;
    f->data = d;
    f->data_cap = cap;
    return 0;
}

static void append(struct sse_framer *f, const char *src, size_t n);

/* The data line still in the caller's buffer goes into the event buffer: the buffer is about
 * to be left, or more data joins it. */
static void keep_direct(struct sse_framer *f)
{
    if (!f->direct) return;
    const char *d = f->direct;
    f->direct = NULL;
    append(f, d, f->direct_len);
    f->direct_len = 0;
}

/* Appends to the event's data; what would pass max_event is cut and the event flagged. */
static void append(struct sse_framer *f, const char *src, size_t n)
{
    keep_direct(f);
    if (f->truncated) return;
    if (n > f->max_event - f->data_len) {
        n = f->max_event - f->data_len;
        f->truncated = 1;
    }
    if (f->data_len + n > f->data_cap && grow(f, f->data_len + n)) {
        n = f->data_cap - f->data_len;
        f->truncated = 1;
    }
    if (n) memcpy(f->data + f->data_len, src, n);
    f->data_len += n;
}

/* Bytes of the current line (no line end among them). */
static void line_bytes(struct sse_framer *f, const char *p, size_t n)
{
    while (n) {
        if (f->field == F_NAME) {
            const char *colon = memchr(p, ':', n);
            size_t k = colon ? (size_t)(colon - p) : n;
            if (f->name_len < sizeof f->name) {
                size_t keep = sizeof f->name - f->name_len < k ? sizeof f->name - f->name_len : k;
                memcpy(f->name + f->name_len, p, keep);
            }
            f->name_len += k;
            if (!colon) return;
            p += k + 1;
            n -= k + 1;
            /* the name is complete: a comment (empty name) or an unknown field is skipped */
            if (f->name_len == 4 && !memcmp(f->name, "data", 4)) {
                f->field = F_DATA;
                if (f->has_data) append(f, "\n", 1);
                f->has_data = 1;
            } else if (f->name_len == 5 && !memcmp(f->name, "event", 5)) {
                f->field = F_EVENT;
                f->ev_len = 0;
            } else {
                f->field = F_SKIP;
            }
            f->value_start = 1;
            continue;
        }
        if (f->field == F_SKIP) return;
        if (f->value_start) {
            f->value_start = 0;
            if (p[0] == ' ') {
                p++;
                n--;
                continue;
            }
        }
        if (f->field == F_DATA) {
            /* the first data bytes of an event stay where they are until more data comes or
             * sse_feed returns: an event in one data line, within one read, is not copied */
            if (!f->data_len && !f->direct && !f->truncated && n <= f->max_event) {
                f->direct = p;
                f->direct_len = n;
            } else {
                append(f, p, n);
            }
        } else {
            if (f->ev_len < sizeof f->ev) {
                size_t keep = sizeof f->ev - f->ev_len < n ? sizeof f->ev - f->ev_len : n;
                memcpy(f->ev + f->ev_len, p, keep);
            }
            f->ev_len += n;
        }
        return;
    }
}

/* A complete line: a field, a comment, or the blank line that ends an event. */
static int end_line(struct sse_framer *f, sse_event_fn fn, void *arg)
{
    int field = f->field;
    f->field = F_NAME;
    f->value_start = 0;
    if (field == F_NAME) {
        size_t n = f->name_len;
        f->name_len = 0;
        if (n == 0) {
            int rc = 0;
            if (f->direct) /* the whole of its data, in the fed buffer */
                rc = fn(arg, f->direct, f->direct_len, 0, f->is_error);
            else if (f->has_data) /* data stays NULL while every data line was empty */
                rc = fn(arg, f->data ? f->data : "", f->data_len, f->truncated, f->is_error);
            f->direct = NULL;
            f->direct_len = 0;
            f->data_len = 0;
            f->has_data = f->truncated = f->is_error = 0;
            return rc;
        }
        /* a field without a colon: its value is empty */
        if (n == 4 && !memcmp(f->name, "data", 4)) {
            if (f->has_data) append(f, "\n", 1);
            f->has_data = 1;
        } else if (n == 5 && !memcmp(f->name, "event", 5)) {
            f->is_error = 0;
        }
        return 0;
    }
    f->name_len = 0;
    if (field == F_EVENT) f->is_error = f->ev_len == 5 && !memcmp(f->ev, "error", 5);
    return 0;
}

/* At a line's start, with no data yet for the event, the line ending at end (its first \n or
 * \r, or NULL): the whole event "data: VALUE\n\n" when buf[0, n) holds it so (the form servers
 * send), its value's length in *value_len; else NULL, and the line is read byte-exact by
 * line_bytes and end_line. */
static const char *one_line_event(const struct sse_framer *f, const char *buf, size_t n,
                                  const char *end, size_t *value_len)
{
    if (f->field != F_NAME || f->name_len || f->has_data || n < 8 || memcmp(buf, "data: ", 6) ||
        !end || *end != '\n' || end + 1 == buf + n || end[1] != '\n')
        return NULL;
    *value_len = (size_t)(end - (buf + 6));
    return *value_len <= f->max_event ? buf + 6 : NULL;
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
        const char *end = scan_line_end(buf + i, len - i);
        size_t value_len;
        const char *value = one_line_event(f, buf + i, len - i, end, &value_len);
        if (value) {
            i = (size_t)(value - buf) + value_len + 2;
            f->end_pos = i;
            int is_error = f->is_error; /* an "event: error" line before it */
            f->is_error = 0;
            int rc = fn(arg, value, value_len, 0, is_error);
            if (rc) return rc;
            continue;
        }
        size_t take = end ? (size_t)(end - (buf + i)) : len - i;
        line_bytes(f, buf + i, take);
        i += take;
        if (!end) break;
        i++;
        if (*end == '\r') f->after_cr = 1;
        f->end_pos = i;
        int rc = end_line(f, fn, arg);
        if (rc) {
            keep_direct(f);
            return rc;
        }
    }
    keep_direct(f); /* buf is the caller's only until we return */
    return 0;
}
