#include "endpoint.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int endpoint_parse(struct endpoint *ep, const char *url, char *err, size_t errlen)
{
    memset(ep, 0, sizeof *ep);
    const char *p;
    if (!strncmp(url, "http://", 7)) {
        p = url + 7;
        ep->port = 80;
    } else if (!strncmp(url, "https://", 8)) {
        p = url + 8;
        ep->tls = 1;
        ep->port = 443;
    } else {
        snprintf(err, errlen, "--url '%s' must start with http:// or https://", url);
        return -1;
    }
    /* a query or fragment would be dropped or sent wrongly: refuse it by name */
    const char *qf = strpbrk(p, "?#");
    if (qf) {
        snprintf(err, errlen,
                 "--url '%s' has a %s ('%c…'); strobe sends requests to the base URL "
                 "plus /v1/…: give http[s]://HOST:PORT[/PATH] without it",
                 url, *qf == '?' ? "query" : "fragment", *qf);
        return -1;
    }
    const char *slash = strchr(p, '/');
    size_t authlen = slash ? (size_t)(slash - p) : strlen(p);
    if (memchr(p, '@', authlen)) {
        /* not echoed: what comes before '@' is a password */
        snprintf(err, errlen,
                 "--url holds credentials (USER:PASSWORD@HOST); strobe does not send "
                 "them: give the API key in STROBE_API_KEY and the URL without them");
        return -1;
    }
    char auth[300];
    if (authlen == 0 || authlen >= sizeof auth) {
        snprintf(err, errlen, "--url '%s' has no usable host", url);
        return -1;
    }
    memcpy(auth, p, authlen);
    auth[authlen] = 0;
    char *host = auth, *port = NULL;
    if (auth[0] == '[') {
        char *close = strchr(auth, ']');
        if (!close) {
            snprintf(err, errlen, "--url '%s' has an IPv6 address without ']'", url);
            return -1;
        }
        *close = 0;
        host = auth + 1;
        if (close[1] == ':')
            port = close + 2;
        else if (close[1]) {
            snprintf(err, errlen, "--url '%s': unexpected text after ']'", url);
            return -1;
        }
    } else {
        char *colon = strchr(auth, ':');
        if (colon) {
            *colon = 0;
            port = colon + 1;
        }
    }
    if (port) {
        char *end;
        long v = strtol(port, &end, 10);
        /* digits only: strtol also takes " 1" and "+1" */
        if (*port < '0' || *port > '9' || *end || v < 1 || v > 65535) {
            snprintf(err, errlen, "--url '%s' has a bad port '%s': give a number from 1 to 65535",
                     url, port);
            return -1;
        }
        ep->port = (int)v;
    }
    if (!*host || strlen(host) >= sizeof ep->host) {
        snprintf(err, errlen, "--url '%s' has no usable host", url);
        return -1;
    }
    snprintf(ep->host, sizeof ep->host, "%s", host);
    int v6 = strchr(host, ':') != NULL;
    int default_port = ep->port == (ep->tls ? 443 : 80);
    if (default_port)
        snprintf(ep->host_header, sizeof ep->host_header, v6 ? "[%s]" : "%s", host);
    else
        snprintf(ep->host_header, sizeof ep->host_header, v6 ? "[%s]:%d" : "%s:%d", host, ep->port);
    if (slash) {
        size_t n = strlen(slash);
        while (n > 0 && slash[n - 1] == '/') n--;
        /* a URL with the endpoint's full path is understood: requests are sent as
         * base + /v1/chat/completions or /v1/completions, whichever the command sends
         * (run_env checks that it is the one named here) */
        static const char *const ends[] = {"/v1/chat/completions", "/v1/completions"};
        for (int i = 0; i < 2; i++) {
            size_t el = strlen(ends[i]);
            if (n >= el && !strncmp(slash + n - el, ends[i], el)) {
                ep->path_endpoint = i + 1;
                n -= el;
                break;
            }
        }
        /* accept a URL that already ends in /v1: endpoints are appended as /v1/... */
        if (!ep->path_endpoint && n >= 3 && !strncmp(slash + n - 3, "/v1", 3)) n -= 3;
        if (n >= sizeof ep->base_path) {
            snprintf(err, errlen, "--url path is too long");
            return -1;
        }
        memcpy(ep->base_path, slash, n);
        ep->base_path[n] = 0;
    }
    return 0;
}

int endpoint_resolve(struct endpoint *ep, char *err, size_t errlen)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    char port[16];
    snprintf(port, sizeof port, "%d", ep->port);
    struct addrinfo *res;
    int rc = getaddrinfo(ep->host, port, &hints, &res);
    if (rc) {
        snprintf(err, errlen, "cannot resolve host '%s': %s; check --url", ep->host,
                 gai_strerror(rc));
        return -1;
    }
    memcpy(&ep->addr, res->ai_addr, res->ai_addrlen);
    ep->addrlen = res->ai_addrlen;
    void *a = res->ai_family == AF_INET6 ? (void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                                         : (void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
    inet_ntop(res->ai_family, a, ep->addr_text, sizeof ep->addr_text);
    freeaddrinfo(res);
    return 0;
}
