/* What a streamed answer's headers say about its body: Content-Type and Content-Encoding,
 * kept from http_parser's header callbacks (once per response, never per chunk), so that a
 * 200 whose body is not an SSE stream fails saying what arrived instead of as malformed
 * chunks. */
#ifndef STROBE_HTTP_META_H
#define STROBE_HTTP_META_H
#include <stddef.h>

struct http_meta {
    char field[24]; /* the header name being read (longer names are not ours) */
    size_t field_len;
    int in_value; /* the last callback was a value */
    int which;    /* the header the value belongs to: 0 other, 1 type, 2 encoding */
    char type[80], encoding[40];
    size_t type_len, encoding_len;
};

void http_meta_reset(struct http_meta *m);
/* http_parser's on_header_field and on_header_value, fed through. */
void http_meta_field(struct http_meta *m, const char *at, size_t n);
void http_meta_value(struct http_meta *m, const char *at, size_t n);
/* 0 when the body can be an SSE stream strobe reads (text/event-stream or no Content-Type,
 * identity or no Content-Encoding); else 1 with one clause saying what arrived in why. */
int http_meta_not_sse(const struct http_meta *m, char *why, size_t n);

#endif
