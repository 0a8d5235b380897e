/* A response body gathered by libcurl (its CURLOPT_WRITEFUNCTION), kept NUL-terminated, for the
 * telemetry thread's HTTP sources (Redfish and emulator power, server metrics). */
#ifndef STROBE_HTTP_BODY_H
#define STROBE_HTTP_BODY_H
#include <stddef.h>

struct http_body {
    char *p; /* NUL-terminated once anything was received */
    size_t len, cap;
    size_t max;  /* 0: no limit; else a longer body stops the transfer */
    int too_big; /* the last transfer passed max */
};

/* libcurl's write callback; arg is the struct http_body. */
size_t http_body_collect(char *data, size_t size, size_t n, void *arg);
/* Empties it before a transfer. */
void http_body_reset(struct http_body *b);
void http_body_free(struct http_body *b);

#endif
