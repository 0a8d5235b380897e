/* One HTTP/1.1 response read as strobe reads every answer, by the workers (worker.c, on the
 * hot path) and by the control plane's one-shot client (control/oneshot.c): http-parser over
 * the received bytes, the SSE framer over a 2xx body, the headers' word on whether that body
 * is a stream, the server's error body for any other status, and the keep-alive decision.
 *
 * It stops at the response's end (the parser is paused there): bytes after it are no part of
 * it, and the connection is then not kept. What ended a response that did not complete is
 * classified into enum req_error with a reason text in errbody.
 *
 * Hot-path cost: once http-parser has completed a 2xx stream's first chunk, the whole chunks
 * of the form "SIZE\r\n" data "\r\n" that follow, in this read and the next ones, are taken
 * here with no call into http-parser; it takes everything else (the headers, the first chunk,
 * a chunk split across reads, extensions, the last chunk and trailers), and stops after each
 * chunk it completes so that the chunks after it come back here. Each SSE event reaches the
 * caller's callback straight from the framer. Nothing is
 * allocated but the framer's event buffer (sse.h: it grows only for an event larger than any
 * before). The caller keeps its own per-event work (stamps, records) in that callback. */
#ifndef STROBE_HTTP_RESPONSE_H
#define STROBE_HTTP_RESPONSE_H
#include "http_meta.h"
#include "log_records.h"
#include "sse.h"

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

enum http_response_state {
    HTTP_RESPONSE_MORE,   /* the response goes on: feed the next read */
    HTTP_RESPONSE_DONE,   /* it is complete (any status); keep_alive says if the connection is */
    HTTP_RESPONSE_FAILED, /* error says how, errbody why */
};

struct http_response {
    http_parser hp;
    struct sse_framer sse;
    struct http_meta meta;                /* Content-Type and Content-Encoding */
    const http_parser_settings *settings; /* keep_ok_body picks it: no test per chunk */
    sse_event_fn on_event;                /* per SSE event of a 2xx body; see http_response_cut */
    void *arg;
    int status;           /* 100-599 once the headers are complete; 0 before, or if not one */
    int complete;         /* the whole response arrived */
    int keep_alive;       /* the connection may carry the next request (valid once complete) */
    int bad_status_line;  /* a status outside 100-599 */
    int not_sse;          /* a 2xx whose headers say the body is no SSE stream */
    int at_chunk;         /* http-parser stopped where a chunk of a 2xx stream starts */
    enum req_error error; /* once FAILED */
    /* The server's body for a non-2xx status (and for a 2xx too with keep_ok_body), cut at
     * errbody_cap; or, once FAILED, the reason. The caller's buffer: a caller may write its own
     * reasons here (transport errors) so that one text travels with the request. */
    char *errbody;
    size_t errbody_cap, errbody_len;
    /* during on_event: where the fed bytes lie in the connection's stream */
    const char *feed_buf;
    int64_t feed_off;  /* stream offset of feed_buf[0] */
    int64_t body_base; /* stream offset of the body bytes being framed */
};

/* max_event: longest SSE event data kept (0: SSE_DEFAULT_MAX_EVENT). errbody: the caller's
 * buffer of errbody_cap bytes. keep_ok_body: also keep a 2xx body there (a control-plane
 * client reading a non-streamed answer; the workers do not copy a stream). Ready to feed. */
void http_response_init(struct http_response *r, size_t max_event, char *errbody,
                        size_t errbody_cap, sse_event_fn on_event, void *arg, int keep_ok_body);
/* Ready for a new response (on the same or a new connection); the framer's buffer is kept. */
void http_response_reset(struct http_response *r);
void http_response_free(struct http_response *r);

/* Why feeding stopped before the read's end, or the read ended the response (cold). */
enum http_response_state http_response_stopped(struct http_response *r, size_t used, size_t n);

/* One read's bytes; stream_off: the offset of buf[0] in the connection's stream (for
 * http_response_event_end). */
enum http_response_state http_response_feed(struct http_response *r, const char *buf, size_t n,
                                            int64_t stream_off);

/* The connection closed (EOF): a body delimited by the close ends here, and the connection
 * is not kept. Otherwise FAILED with ERR_RESET; the reason (unless errbody already holds the
 * server's error body) says whether any of the response (had_bytes) had arrived. */
enum http_response_state http_response_eof(struct http_response *r, int had_bytes);

/* For on_event, given an event the framer had to cut (truncated: longer than max_event, or
 * no memory): the response fails with ERR_EVENT_TOO_LONG naming the limit and the flag. Its
 * return value is on_event's (non-zero: stop). index: the event's, from 0; len: what was kept. */
int http_response_cut(struct http_response *r, uint32_t index, size_t len);

/* During on_event: the stream offset just past the event's last byte. */
static inline int64_t http_response_event_end(const struct http_response *r)
{
    return r->body_base + (int64_t)r->sse.end_pos;
}

#endif
