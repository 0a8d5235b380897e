/* The response parsing the workers and the one-shot client share (http_response.h), fed as
 * a worker feeds it: each response whole, cut at every point into two reads, and a byte at a
 * time; every way must end the same. Covers the end of a response (and bytes glued after
 * it), statuses outside 100-599, bodies that are no event stream, error bodies, bodies ended
 * by the connection's close, closes mid-response, events over the limit, and stream offsets. */
#include "check.h"
#include "http_response.h"

#include <stdio.h>
#include <string.h>

#define MAX_EVENTS 8

struct got {
    struct http_response r;
    char errbody[128];
    int n;
    char ev[MAX_EVENTS][64];
    int64_t end[MAX_EVENTS]; /* stream offset just past each event */
};

static int on_event(void *arg, const char *data, size_t len, int truncated, int is_error)
{
    (void)is_error;
    struct got *g = arg;
    if (truncated) return http_response_cut(&g->r, (uint32_t)g->n, len);
    if (g->n < MAX_EVENTS) {
        snprintf(g->ev[g->n], sizeof g->ev[0], "%.*s", (int)len, data);
        g->end[g->n] = http_response_event_end(&g->r);
    }
    g->n++;
    return 0;
}

/* Feeds text in reads of `piece` bytes (the first cut at `first`), stopping where the
 * response ends or fails; then, if eof and it had not ended, the connection closes. */
static enum http_response_state run(struct got *g, const char *text, size_t first, size_t piece,
                                    int eof)
{
    size_t len = strlen(text), at = 0;
    enum http_response_state st = HTTP_RESPONSE_MORE;
    while (at < len && st == HTTP_RESPONSE_MORE) {
        size_t n = at == 0 && first ? first : piece;
        if (n > len - at) n = len - at;
        st = http_response_feed(&g->r, text + at, n, (int64_t)at);
        at += n;
    }
    if (st == HTTP_RESPONSE_MORE && eof) st = http_response_eof(&g->r, len > 0);
    return st;
}

struct want {
    enum http_response_state st;
    enum req_error error; /* when FAILED */
    int status, keep_alive, events;
    const char *errbody; /* the errbody, whole ("" for none) */
};

static void expect(const char *name, const char *text, int eof, size_t max_event, int keep_ok_body,
                   struct want w)
{
    size_t len = strlen(text);
    /* piece 0 below: the whole text in one read; then every first cut; then byte by byte */
    for (size_t way = 0; way <= len + 1; way++) {
        size_t first = way <= len ? way : 0, piece = way <= len ? len : 1;
        struct got g = {.n = 0};
        http_response_init(&g.r, max_event, g.errbody, sizeof g.errbody - 1, on_event, &g,
                           keep_ok_body);
        enum http_response_state st = run(&g, text, first, piece, eof);
        g.errbody[g.r.errbody_len] = 0;
        int same = st == w.st && g.r.status == w.status && g.n == w.events &&
                   (st != HTTP_RESPONSE_FAILED || g.r.error == w.error) &&
                   (st != HTTP_RESPONSE_DONE || g.r.keep_alive == w.keep_alive) &&
                   !strcmp(g.errbody, w.errbody);
        CHECK(same,
              "%s (first read %zu, then %zu): expected state %d error %d status %d keep-alive %d "
              "events %d errbody '%s'; got %d %d %d %d %d '%s'",
              name, first, piece, w.st, w.error, w.status, w.keep_alive, w.events, w.errbody, st,
              g.r.error, g.r.status, g.r.keep_alive, g.n, g.errbody);
        /* each event's end lies just past its blank line in the stream */
        for (int i = 0; i < g.n && i < MAX_EVENTS; i++)
            CHECK(g.end[i] >= 2 && (size_t)g.end[i] <= len && text[g.end[i] - 1] == '\n' &&
                      text[g.end[i] - 2] == '\n',
                  "%s (first read %zu, then %zu): event %d ends at stream offset %lld, past its "
                  "blank line",
                  name, first, piece, i, (long long)g.end[i]);
        http_response_free(&g.r);
        if (!same) return; /* one report per case */
    }
}

#define SSE_HEAD   "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
#define TWO_EVENTS "data: {\"a\":1}\n\n: comment\n\ndata: [DONE]\n\n"

int main(void)
{
    struct want ok2 = {HTTP_RESPONSE_DONE, ERR_NONE, 200, 1, 2, ""};
    expect("chunked",
           SSE_HEAD "Transfer-Encoding: chunked\r\n\r\n"
                    "12;ext=1\r\ndata: {\"a\":1}\n\n: c\r\n16\r\nomment\n\ndata: [DONE]\n\n\r\n"
                    "0\r\nX-Trailer: t\r\n\r\n",
           0, 0, 0, ok2);
    /* plain chunks, as servers send them: taken without http-parser once the first is done */
    expect("chunked, plain chunks",
           SSE_HEAD "Transfer-Encoding: chunked\r\n\r\n"
                    "9\r\ndata: x\n\n\r\n00B\r\ndata: yy\n\n:\r\nA\r\n\ndata: z\n\n\r\n"
                    "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n",
           0, 0, 0, (struct want){HTTP_RESPONSE_DONE, ERR_NONE, 200, 1, 4, ""});
    /* Debian's http-parser is built lenient: any two bytes end a chunk's data; the chunk is
     * handed to it, so whichever way it is read, the answer is the same */
    expect("chunked, a chunk's data not ended by CRLF",
           SSE_HEAD "Transfer-Encoding: chunked\r\n\r\n"
                    "9\r\ndata: x\n\n\r\n9\r\ndata: y\n\nXY9\r\ndata: z\n\n\r\n0\r\n\r\n",
           0, 0, 0, (struct want){HTTP_RESPONSE_DONE, ERR_NONE, 200, 1, 3, ""});
    expect("chunked, a size that is no number",
           SSE_HEAD "Transfer-Encoding: chunked\r\n\r\n"
                    "9\r\ndata: x\n\n\r\nzz\r\ndata: y\n\n\r\n0\r\n\r\n",
           0, 0, 0,
           (struct want){HTTP_RESPONSE_FAILED, ERR_HTTP_PARSE, 200, 1, 1,
                         "HTTP parse error: invalid character in chunk size header"});
    expect("chunked, an event over the limit",
           SSE_HEAD "Transfer-Encoding: chunked\r\n\r\n"
                    "a\r\ndata: ok\n\n\r\n22\r\ndata: 0123456789abcdefghijklmn\n\n\r\n"
                    "9\r\ndata: x\n\n\r\n0\r\n\r\n",
           0, 16, 0,
           (struct want){HTTP_RESPONSE_FAILED, ERR_EVENT_TOO_LONG, 200, 1, 1,
                         "SSE event 1 of the response is longer than 16 bytes: raise "
                         "--max-event-bytes (now 16)"});
    expect("content-length", SSE_HEAD "Content-Length: 40\r\n\r\n" TWO_EVENTS, 0, 0, 0, ok2);
    expect("HTTP/1.0: not kept", "HTTP/1.0 200 OK\r\nContent-Length: 40\r\n\r\n" TWO_EVENTS, 0, 0,
           0, (struct want){HTTP_RESPONSE_DONE, ERR_NONE, 200, 0, 2, ""});
    expect("Connection: close: not kept",
           SSE_HEAD "Connection: close\r\nContent-Length: 40\r\n\r\n" TWO_EVENTS, 0, 0, 0,
           (struct want){HTTP_RESPONSE_DONE, ERR_NONE, 200, 0, 2, ""});
    expect("ended by the close", SSE_HEAD "Connection: close\r\n\r\n" TWO_EVENTS, 1, 0, 0,
           (struct want){HTTP_RESPONSE_DONE, ERR_NONE, 200, 0, 2, ""});
    expect("closed mid-response", SSE_HEAD "Content-Length: 40\r\n\r\ndata: x\n\n", 1, 0, 0,
           (struct want){HTTP_RESPONSE_FAILED, ERR_RESET, 200, 1, 1,
                         "server closed the connection mid-response"});
    expect("closed before responding", "", 1, 0, 0,
           (struct want){HTTP_RESPONSE_FAILED, ERR_RESET, 0, 1, 0,
                         "server closed the connection before responding"});
    expect("status 00", "HTTP/1.1 00 OK\r\nContent-Length: 40\r\n\r\n" TWO_EVENTS, 0, 0, 0,
           (struct want){HTTP_RESPONSE_FAILED, ERR_HTTP_PARSE, 0, 1, 0,
                         "HTTP status 0 is not a status (100-599)"});
    expect("status 600", "HTTP/1.1 600 OK\r\nContent-Length: 40\r\n\r\n" TWO_EVENTS, 0, 0, 0,
           (struct want){HTTP_RESPONSE_FAILED, ERR_HTTP_PARSE, 0, 1, 0,
                         "HTTP status 600 is not a status (100-599)"});
    expect("not HTTP", "SSH-2.0-OpenSSH\r\n", 0, 0, 0,
           (struct want){HTTP_RESPONSE_FAILED, ERR_HTTP_PARSE, 0, 1, 0,
                         "HTTP parse error: invalid constant string"});
    expect("JSON for a stream",
           "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 0, 0,
           0,
           (struct want){HTTP_RESPONSE_FAILED, ERR_NOT_SSE, 200, 1, 0,
                         "the server sent Content-Type application/json, not text/event-stream: "
                         "it did not stream the answer"});
    expect("gzip", SSE_HEAD "Content-Encoding: gzip\r\nContent-Length: 40\r\n\r\n" TWO_EVENTS, 0, 0,
           0,
           (struct want){HTTP_RESPONSE_FAILED, ERR_NOT_SSE, 200, 1, 0,
                         "the body is gzip-compressed (Content-Encoding: gzip); strobe asks for "
                         "identity: turn compression off on the server or proxy"});
    expect(
        "503: the error body is kept, the stream is not framed",
        "HTTP/1.1 503 Busy\r\nContent-Length: 25\r\n\r\ndata: x\n\n{\"error\":\"busy\"}", 0, 0, 0,
        (struct want){HTTP_RESPONSE_DONE, ERR_NONE, 503, 1, 0, "data: x\n\n{\"error\":\"busy\"}"});
#define TEN "0123456789"
    expect("a long error body is cut at the buffer (127 bytes here)",
           "HTTP/1.1 500 E\r\nContent-Length: 130\r\n\r\n" TEN TEN TEN TEN TEN TEN TEN TEN TEN TEN
               TEN TEN TEN,
           0, 0, 0,
           (struct want){HTTP_RESPONSE_DONE, ERR_NONE, 500, 1, 0,
                         TEN TEN TEN TEN TEN TEN TEN TEN TEN TEN TEN TEN "0123456"});
    expect("a 500 closed mid-body keeps its body",
           "HTTP/1.1 500 E\r\nContent-Length: 30\r\n\r\n{\"error\"", 1, 0, 0,
           (struct want){HTTP_RESPONSE_FAILED, ERR_RESET, 500, 1, 0, "{\"error\""});
    expect("an event over the limit",
           SSE_HEAD "Content-Length: 42\r\n\r\ndata: ok\n\ndata: "
                    "0123456789abcdefghijklmn\n\n",
           0, 16, 0,
           (struct want){HTTP_RESPONSE_FAILED, ERR_EVENT_TOO_LONG, 200, 1, 1,
                         "SSE event 1 of the response is longer than 16 bytes: raise "
                         "--max-event-bytes (now 16)"});
    expect("keep_ok_body: a non-streamed answer is kept",
           "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"usage\":1}", 0, 0, 1,
           (struct want){HTTP_RESPONSE_DONE, ERR_NONE, 200, 1, 0, "{\"usage\":1}"});
    expect("keep_ok_body: a stream closed mid-response says so",
           SSE_HEAD "Content-Length: 40\r\n\r\ndata: x\n\n", 1, 0, 1,
           (struct want){HTTP_RESPONSE_FAILED, ERR_RESET, 200, 1, 1,
                         "server closed the connection mid-response"});

    /* a second response glued to the first in one read is not parsed, and the connection is
     * not kept; read apart, the first ends where it ends (kept) */
    const char one[] = SSE_HEAD "Content-Length: 40\r\n\r\n" TWO_EVENTS;
    char glued[2 * sizeof one];
    snprintf(glued, sizeof glued, "%s%s", one, one);
    struct got g = {.n = 0};
    http_response_init(&g.r, 0, g.errbody, sizeof g.errbody, on_event, &g, 0);
    enum http_response_state st = run(&g, glued, 0, sizeof glued, 0);
    CHECK(st == HTTP_RESPONSE_DONE && g.n == 2 && !g.r.keep_alive,
          "glued: the first response's 2 events, connection not kept; got state %d, %d events, "
          "keep-alive %d",
          st, g.n, g.r.keep_alive);
    CHECK(!strcmp(g.ev[0], "{\"a\":1}") && !strcmp(g.ev[1], "[DONE]"), "glued: events '%s' '%s'",
          g.ev[0], g.ev[1]);
    /* the same parser, reset, reads the next response on the connection */
    http_response_reset(&g.r);
    g.n = 0;
    st = run(&g, one, 0, sizeof one, 0);
    CHECK(st == HTTP_RESPONSE_DONE && g.n == 2 && g.r.keep_alive && g.r.status == 200,
          "after a reset: the next response; got state %d, %d events", st, g.n);
    http_response_free(&g.r);
    return check_done("http_response");
}
