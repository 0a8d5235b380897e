/* Server-sent events framing, incremental: bytes may be split anywhere across calls, several
 * events may arrive in one call, lines end in \n, \r\n or \r, ':' lines are comments.
 * Each complete event's data (data lines joined by \n) is handed to the callback.
 * An event whose data is one line lying whole within one fed buffer, with the blank line that
 * ends it, is handed to the callback where it lies (no copy: the common case, a chunk per
 * read); "data: VALUE\n\n" whole in the buffer is taken in one step. Other data lines are appended
 * into one event buffer (no line buffer): it starts at SSE_INITIAL_CAP on the first event,
 * doubles when a larger event arrives, up to max_event, and is kept across events and
 * sse_reset, so a stream of like-sized events does not allocate. Data beyond max_event (or
 * beyond what memory allows) is cut and flagged. The callback's data is valid during the call. */
#ifndef STROBE_SSE_H
#define STROBE_SSE_H
#include <stddef.h>

#define SSE_INITIAL_CAP       2048
#define SSE_DEFAULT_MAX_EVENT ((size_t)8 << 20)

struct sse_framer {
    char *data; /* the current event's data (heap, kept; NULL before the first data) */
    size_t data_len, data_cap;
    size_t max_event; /* longest data kept per event; longer is cut and flagged */
    int has_data;
    int truncated;   /* the current event's data was cut (max_event, or no memory) */
    int after_cr;    /* last byte was \r: a following \n belongs to the same line end */
    int is_error;    /* "event: error" seen for the current event */
    int field;       /* where the current line is: its name, a data or event value, skipped */
    int value_start; /* the next value byte is the first (a leading space is dropped) */
    size_t name_len; /* bytes of the current line's field name so far */
    char name[8];    /* its first bytes: only "data" and "event" matter */
    size_t ev_len;   /* the event field's value so far (enough of it to tell "error") */
    char ev[8];
    size_t end_pos;     /* during the callback: index in the fed buffer just past the event's end */
    const char *direct; /* during one sse_feed: the event's first data line, still in its buffer */
    size_t direct_len;
};

/* Called per complete event; return non-zero to stop feeding. */
typedef int (*sse_event_fn)(void *arg, const char *data, size_t len, int truncated, int is_error);

/* A framer with no buffer yet; max_event 0 means SSE_DEFAULT_MAX_EVENT. */
void sse_init(struct sse_framer *f, size_t max_event);
/* A new stream on the same framer: its buffer is kept. */
void sse_reset(struct sse_framer *f);
void sse_free(struct sse_framer *f);
/* Returns 0, or the callback's non-zero value (the remaining input is not consumed). */
int sse_feed(struct sse_framer *f, const char *buf, size_t len, sse_event_fn fn, void *arg);

#endif
