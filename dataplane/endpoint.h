/* A target URL, parsed and resolved once at start (never on the hot path). */
#ifndef STROBE_ENDPOINT_H
#define STROBE_ENDPOINT_H
#include <sys/socket.h>

struct endpoint {
    int tls;
    char host[256]; /* as written, without brackets; for Host:, SNI and verification */
    char host_header[300];
    int port;
    char base_path[512]; /* URL path without a trailing slash, e.g. "" or "/openai" */
    int path_endpoint;   /* the URL ended in 1: /v1/chat/completions, 2: /v1/completions;
                            0: neither (the base URL, or one ending in /v1) */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char addr_text[64];
};

/* Returns 0, or -1 with one sentence in err. A query, a fragment or credentials in the URL
 * are refused; a path ending in /v1, /v1/chat/completions or /v1/completions is the base
 * path without that ending. */
int endpoint_parse(struct endpoint *ep, const char *url, char *err, size_t errlen);
int endpoint_resolve(struct endpoint *ep, char *err, size_t errlen);

#endif
