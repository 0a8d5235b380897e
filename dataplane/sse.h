/* Server-sent events framing, incremental: bytes may be split anywhere across calls, several
 * events may arrive in one call, lines end in \n, \r\n or \r, ':' lines are comments.
 * Each complete event's data (data lines joined by \n) is handed to the callback.
 * No allocation: an event's data accumulates in the framer's fixed buffer; longer data is
 * cut and flagged. */
#ifndef STROBE_SSE_H
#define STROBE_SSE_H
#include <stddef.h>

#define SSE_MAX_EVENT 16384

struct sse_framer {
    char line[SSE_MAX_EVENT]; /* current line, then moved into data */
    size_t line_len;
    char data[SSE_MAX_EVENT];
    size_t data_len;
    int has_data;
    int truncated;   /* the current event's data overflowed SSE_MAX_EVENT */
    int after_cr;    /* last byte was \r: a following \n belongs to the same line end */
    int is_error;    /* "event: error" seen for the current event */
    size_t end_pos;  /* during the callback: index in the fed buffer just past the event's end */
};

/* Called per complete event; return non-zero to stop feeding. */
typedef int (*sse_event_fn)(void *arg, const char *data, size_t len, int truncated, int is_error);

void sse_init(struct sse_framer *f);
/* Returns 0, or the callback's non-zero value (the remaining input is not consumed). */
int sse_feed(struct sse_framer *f, const char *buf, size_t len, sse_event_fn fn, void *arg);

#endif
