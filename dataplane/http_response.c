#include "http_response.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static struct http_response *of(http_parser *hp) { return hp->data; }

static int on_header_field(http_parser *hp, const char *at, size_t n)
{
    http_meta_field(&of(hp)->meta, at, n); /* once per response, never per chunk */
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t n)
{
    http_meta_value(&of(hp)->meta, at, n);
    return 0;
}

static int on_headers_complete(http_parser *hp)
{
    struct http_response *r = of(hp);
    if (hp->status_code < 100 || hp->status_code > 599) {
        /* http-parser takes any digits; such a response is malformed, not a success */
        r->bad_status_line = 1;
        http_parser_pause(hp, 1);
        return 0;
    }
    r->status = hp->status_code;
    if (r->status >= 200 && r->status <= 299 &&
        http_meta_not_sse(&r->meta, r->errbody, r->errbody_cap)) {
        /* JSON or a compressed body: say what arrived, not "malformed chunk JSON" */
        r->errbody_len = strlen(r->errbody);
        r->not_sse = 1;
        http_parser_pause(hp, 1);
    }
    return 0;
}

static void keep_body(struct http_response *r, const char *at, size_t n)
{
    size_t room = r->errbody_cap - r->errbody_len;
    if (n > room) n = room;
    memcpy(r->errbody + r->errbody_len, at, n);
    r->errbody_len += n;
}

/* A 2xx body goes to the framer (its events to on_event), any other is kept. */
static int on_body(http_parser *hp, const char *at, size_t n)
{
    struct http_response *r = of(hp);
    if (r->status >= 200 && r->status <= 299) {
        r->body_base = r->feed_off + (int64_t)(at - r->feed_buf);
        if (sse_feed(&r->sse, at, n, r->on_event, r->arg)) http_parser_pause(hp, 1); /* cut */
    } else {
        keep_body(r, at, n);
    }
    return 0;
}

/* keep_ok_body: a 2xx body is also kept (after the framer, which may stop the response) */
static int on_body_kept(http_parser *hp, const char *at, size_t n)
{
    struct http_response *r = of(hp);
    on_body(hp, at, n);
    if (r->status >= 200 && r->status <= 299) keep_body(r, at, n);
    return 0;
}

/* A 2xx stream's chunk is complete: the parser stops, and the chunks that follow whole in the
 * read are taken by take_chunks (the parser stands at a chunk's start, as it would resume). */
static int on_chunk_complete(http_parser *hp)
{
    struct http_response *r = of(hp);
    /* (the last chunk's comes after its trailers, where the message completes next) */
    if (r->status >= 200 && r->status <= 299 && !(hp->flags & F_TRAILING)) {
        r->at_chunk = 1;
        http_parser_pause(hp, 1);
    }
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    struct http_response *r = of(hp);
    r->complete = 1;
    r->keep_alive = http_should_keep_alive(hp);
    /* stop at the response's end: bytes after it in the same read are not this response's */
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings settings_stream = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_complete = on_chunk_complete,
    .on_message_complete = on_message_complete,
};

static const http_parser_settings settings_kept = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body_kept,
    .on_message_complete = on_message_complete,
};

void http_response_init(struct http_response *r, size_t max_event, char *errbody,
                        size_t errbody_cap, sse_event_fn on_event, void *arg, int keep_ok_body)
{
    memset(r, 0, sizeof *r);
    sse_init(&r->sse, max_event);
    r->settings = keep_ok_body ? &settings_kept : &settings_stream;
    r->on_event = on_event;
    r->arg = arg;
    r->errbody = errbody;
    r->errbody_cap = errbody_cap;
    http_response_reset(r);
}

void http_response_reset(struct http_response *r)
{
    http_parser_init(&r->hp, HTTP_RESPONSE);
    r->hp.data = r;
    sse_reset(&r->sse);
    http_meta_reset(&r->meta);
    r->status = r->complete = r->bad_status_line = r->not_sse = r->at_chunk = 0;
    r->keep_alive = 1;
    r->error = ERR_NONE;
    r->errbody_len = 0;
}

void http_response_free(struct http_response *r) { sse_free(&r->sse); }

static enum http_response_state failed(struct http_response *r, enum req_error e)
{
    r->error = e;
    return HTTP_RESPONSE_FAILED;
}

/* A reason replaces whatever errbody held. */
__attribute__((format(printf, 2, 3))) static void reason(struct http_response *r, const char *fmt,
                                                         ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->errbody, r->errbody_cap, fmt, ap);
    va_end(ap);
    r->errbody_len = n < 0 ? 0 : (size_t)n < r->errbody_cap ? (size_t)n : r->errbody_cap - 1;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* From a chunk's start: the whole chunks in buf[0, n) of the plain form "SIZE\r\n" data
 * "\r\n" (SIZE > 0, at most 15 hex digits), each body to the framer as on_body would. Stops
 * at the first chunk that is not whole here or not of that form (http-parser takes it, and
 * says what is wrong with it), or when the framer cut an event (*cut). Returns bytes taken. */
static size_t take_chunks(struct http_response *r, const char *buf, size_t n, int *cut)
{
    size_t at = 0;
    for (;;) {
        const char *p = buf + at;
        size_t left = n - at, digits = 0, size = 0;
        int d;
        while (digits < left && digits < 15 && (d = hex_digit(p[digits])) >= 0) {
            size = size * 16 + (size_t)d;
            digits++;
        }
        if (!size || left - digits < 2 || p[digits] != '\r' || p[digits + 1] != '\n') return at;
        size_t data = digits + 2;
        if (size > left - data || left - data - size < 2) return at;
        if (p[data + size] != '\r' || p[data + size + 1] != '\n') return at;
        r->body_base = r->feed_off + (int64_t)(p + data - r->feed_buf);
        if (sse_feed(&r->sse, p + data, size, r->on_event, r->arg)) {
            *cut = 1;
            return at;
        }
        at += data + size + 2;
    }
}

enum http_response_state http_response_feed(struct http_response *r, const char *buf, size_t n,
                                            int64_t stream_off)
{
    r->feed_buf = buf;
    r->feed_off = stream_off;
    size_t at = 0;
    for (;;) {
        if (r->at_chunk) {
            int cut = 0;
            at += take_chunks(r, buf + at, n - at, &cut);
            /* (the parser is not paused: the cut's reason, ERR_EVENT_TOO_LONG, is what ends it) */
            if (cut) return http_response_stopped(r, at, n);
            /* all taken: the next read starts at a chunk's start too (and a call to the parser
             * with no bytes would say EOF) */
            if (at == n) return HTTP_RESPONSE_MORE;
            r->at_chunk = 0;
        }
        at += http_parser_execute(&r->hp, r->settings, buf + at, n - at);
        enum http_errno e = HTTP_PARSER_ERRNO(&r->hp);
        if (at == n && e == HPE_OK) return HTTP_RESPONSE_MORE;
        /* every stop (the end, a bad status, no stream, a cut event, a chunk) pauses it */
        if (e != HPE_PAUSED || !r->at_chunk) return http_response_stopped(r, at, n);
        http_parser_pause(&r->hp, 0);
        if (at == n) return HTTP_RESPONSE_MORE;
    }
}

enum http_response_state http_response_stopped(struct http_response *r, size_t used, size_t n)
{
    if (r->error == ERR_EVENT_TOO_LONG) return HTTP_RESPONSE_FAILED; /* the rest is not read */
    if (r->complete) {
        /* bytes after the response, before the next request: the server misbehaves */
        if (used != n) r->keep_alive = 0;
        return HTTP_RESPONSE_DONE;
    }
    if (r->bad_status_line) {
        reason(r, "HTTP status %d is not a status (100-599)", (int)r->hp.status_code);
        return failed(r, ERR_HTTP_PARSE);
    }
    if (r->not_sse) return failed(r, ERR_NOT_SSE); /* the reason was written with the headers */
    reason(r, "HTTP parse error: %s", http_errno_description(HTTP_PARSER_ERRNO(&r->hp)));
    return failed(r, ERR_HTTP_PARSE);
}

enum http_response_state http_response_eof(struct http_response *r, int had_bytes)
{
    http_parser_execute(&r->hp, r->settings, NULL, 0);
    if (r->complete) {
        r->keep_alive = 0;
        return HTTP_RESPONSE_DONE;
    }
    /* keep a server's error body (a 2xx body kept by keep_ok_body is none) */
    if (!r->errbody_len || (r->status >= 200 && r->status <= 299))
        reason(r, "%s",
               had_bytes ? "server closed the connection mid-response"
                         : "server closed the connection before responding");
    return failed(r, ERR_RESET);
}

int http_response_cut(struct http_response *r, uint32_t index, size_t len)
{
    /* a cut event is not handed on (it would be torn JSON); the response ends here */
    size_t max = r->sse.max_event;
    reason(r,
           len < max ? "no memory to hold SSE event %u of the response beyond %zu bytes "
                       "(--max-event-bytes is %zu)"
                     : "SSE event %u of the response is longer than %zu bytes: raise "
                       "--max-event-bytes (now %zu)",
           index, len, max);
    r->error = ERR_EVENT_TOO_LONG;
    return 1;
}
