#include "oneshot.h"

#include "http_response.h"
#include "json_num.h"
#include "redact.h"
#include "must_alloc.h"

#include <cjson/cJSON.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ctx {
    struct oneshot_result *out;
    struct http_response rsp; /* the workers' response parsing, keeping a 2xx body too */
    char body[8192];          /* rsp.errbody: the body (any status), or why the response failed */
};
static const volatile sig_atomic_t *cancel_flag;

void oneshot_set_cancel(const volatile sig_atomic_t *flag) { cancel_flag = flag; }

static void take_usage(struct oneshot_result *o, const char *json, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(json, len);
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    json_int64(pt, &o->prompt_tokens);
    json_int64(ct, &o->completion_tokens);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (cJSON_IsString(m)) snprintf(o->error, sizeof o->error, "%s", m->valuestring);
    cJSON_Delete(j);
}

/* Per SSE event: the usage (or error) it may carry. An event the framer had to cut carries
 * no whole JSON: it is passed over (the answer's text is of no interest here). */
static int on_event(void *arg, const char *data, size_t len, int truncated, int is_error)
{
    (void)is_error;
    struct ctx *c = arg;
    if (!truncated && !(len == 6 && !memcmp(data, "[DONE]", 6))) take_usage(c->out, data, len);
    return 0;
}

int oneshot_worth_retrying(const struct oneshot_result *r)
{
    if (r->timed_out || r->interrupted) return 0;
    return !(r->status >= 400 && r->status < 500 && r->status != 408 && r->status != 429);
}

struct oneshot_limits oneshot_attempts_begin(struct oneshot_limits l)
{
    l.until_ns = clock_now_ns() + (int64_t)(l.request_s * 1e9);
    return l;
}

int oneshot_retry_pause(int attempts, const struct oneshot_limits *l)
{
    double pause_s = 0.5;
    for (int i = 1; i < attempts && pause_s < 5; i++) pause_s *= 2;
    if (pause_s > 5) pause_s = 5;
    int64_t until = clock_now_ns() + (int64_t)(pause_s * 1e9);
    if (until >= l->until_ns) return -1;
    while (clock_now_ns() < until) {
        if (cancel_flag && *cancel_flag) return -1;
        struct timespec nap = {0, 50000000L};
        nanosleep(&nap, NULL);
    }
    return 0;
}

void oneshot_describe(const struct oneshot_result *r, const char *if_none, int attempts,
                      int64_t start, char *buf, size_t len)
{
    char status[32] = "", tries[64] = ""; /* none: no response came; it was tried once */
    if (r->status) snprintf(status, sizeof status, " (HTTP %d)", r->status);
    if (attempts > 1)
        snprintf(tries, sizeof tries, " (%d attempts in %.1f s)", attempts,
                 (double)(clock_now_ns() - start) / 1e9);
    snprintf(buf, len, "%s%s%s", r->error[0] ? r->error : if_none, status, tries);
}

int oneshot_request(const struct transport_ops *ops, struct transport_ctx *tctx,
                    const struct endpoint *ep, const char *request, size_t len,
                    const struct oneshot_limits *limits, struct oneshot_result *out)
{
    return oneshot_request_noted(ops, tctx, ep, request, len, limits, NULL, out);
}

int oneshot_request_noted(const struct transport_ops *ops, struct transport_ctx *tctx,
                          const struct endpoint *ep, const char *request, size_t len,
                          const struct oneshot_limits *limits, const char *note,
                          struct oneshot_result *out)
{
    memset(out, 0, sizeof *out);
    out->prompt_tokens = out->completion_tokens = -1;
    struct ctx *c = must_calloc(1, sizeof *c, "a probe request");
    c->out = out;
    http_response_init(&c->rsp, 0, c->body, sizeof c->body, on_event, c, 1);
    struct tconn tc = {0};
    int64_t start = clock_now_ns(), deadline = start + (int64_t)(limits->request_s * 1e9);
    if (limits->until_ns && limits->until_ns < deadline) deadline = limits->until_ns;
    int64_t idle_ns = (int64_t)(limits->idle_s * 1e9),
            connect_ns = (int64_t)(limits->connect_s * 1e9);
    int64_t last_rx = start; /* as the workers count it: from the start, then from each byte */
    int64_t note_at = note ? start + (int64_t)(ONESHOT_NOTE_AFTER_S * 1e9) : INT64_MAX;
    size_t sent = 0;
    int rc = -1;
    if (ops->open(tctx, &tc, ep)) {
        snprintf(out->error, sizeof out->error, "%s", tc.err);
        http_response_free(&c->rsp);
        free(c);
        return -1;
    }
    int ready = 0, got = 0;
    char buf[16384];
    /* I/O first, limits after, as the workers do: a byte or a connect that woke the poll
     * counts before any limit is judged */
    for (int first = 1;; first = 0) {
        if (cancel_flag && *cancel_flag) {
            snprintf(out->error, sizeof out->error, "interrupted (SIGINT or SIGTERM)");
            out->interrupted = 1;
            goto done;
        }
        if (clock_now_ns() >= note_at) {
            fprintf(stderr, "%s\n", note);
            note_at = INT64_MAX;
            out->noted = 1;
        }
        struct pollfd pfd = {tc.fd, POLLIN | (tc.want_write || (ready && sent < len) ? POLLOUT : 0),
                             0};
        poll(&pfd, 1, first ? 0 : 50); /* a connect done at once goes on at once */
        if (!ready) {
            int p = ops->progress(&tc);
            if (p == T_ERROR) {
                snprintf(out->error, sizeof out->error, "%s", tc.err);
                goto done;
            }
            ready = p == 1;
        }
        if (ready) {
            while (sent < len) {
                ssize_t w = ops->send(&tc, request + sent, len - sent);
                if (w == T_AGAIN) break;
                if (w < 0) {
                    snprintf(out->error, sizeof out->error, "%s", tc.err);
                    goto done;
                }
                sent += (size_t)w;
            }
            if (ops->flush(&tc) == T_ERROR) {
                snprintf(out->error, sizeof out->error, "%s", tc.err);
                goto done;
            }
            for (;;) {
                struct rx_stamp st;
                ssize_t n = ops->recv(&tc, buf, sizeof buf, &st);
                if (n == T_AGAIN) break;
                if (n < 0) {
                    snprintf(out->error, sizeof out->error, "%s",
                             tc.err[0] ? tc.err : "connection closed before the response ended");
                    goto done;
                }
                last_rx = clock_now_ns();
                /* EOF ends a body delimited by the connection's close */
                enum http_response_state rs = n ? http_response_feed(&c->rsp, buf, (size_t)n, 0)
                                                : http_response_eof(&c->rsp, got);
                got = 1;
                out->status = c->rsp.status;
                if (rs == HTTP_RESPONSE_DONE) goto finish;
                if (rs == HTTP_RESPONSE_FAILED) {
                    /* a bad status line, a parse error, no event stream: the reason */
                    snprintf(out->error, sizeof out->error, "%.*s", (int)c->rsp.errbody_len,
                             c->body);
                    goto done;
                }
            }
        }
        /* in the workers' order (check_timeouts): in all, connecting, then without a byte */
        int64_t now = clock_now_ns();
        if (now >= deadline)
            snprintf(out->error, sizeof out->error,
                     "no complete response within %g s (--request-timeout-s)", limits->request_s);
        else if (!ready && now - start > connect_ns)
            snprintf(out->error, sizeof out->error,
                     "connect timed out after %g s (--connect-timeout-s)", limits->connect_s);
        else if (now - last_rx > idle_ns)
            snprintf(out->error, sizeof out->error, "nothing received for %g s (--idle-timeout-s)",
                     limits->idle_s);
        else
            continue;
        out->timed_out = 1;
        goto done;
    }
finish:
    if (out->status < 200 || out->status > 299) {
        /* a JSON error body: keep its message */
        size_t n = c->rsp.errbody_len;
        if (!out->error[0]) take_usage(out, c->body, n);
        if (!out->error[0])
            snprintf(out->error, sizeof out->error, "%.*s", (int)(n > 200 ? 200 : n), c->body);
        if (!out->error[0]) /* an empty error body still fails the request */
            snprintf(out->error, sizeof out->error, "HTTP %d with an empty body", out->status);
    } else if (c->rsp.errbody_len && c->body[0] == '{') {
        take_usage(out, c->body, c->rsp.errbody_len); /* a non-streamed answer */
    }
    rc = out->error[0] ? -1 : 0;
done:
    ops->close(&tc);
    http_response_free(&c->rsp);
    free(c);
    redact_str(out->error); /* a server may echo the API key in its error */
    return rc;
}
