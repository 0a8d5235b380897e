#include "oneshot.h"

#include "http_meta.h"
#include "json_num.h"
#include "redact.h"
#include "sse.h"

#include <cjson/cJSON.h>
#include <http_parser.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctx {
    struct oneshot_result *out;
    struct sse_framer sse;
    char body[8192];
    size_t body_len;
    int complete;
    struct http_meta meta;
    int not_sse; /* a 2xx that is no event stream: out->error says what arrived */
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

static int on_event(void *arg, const char *data, size_t len, int truncated, int is_error)
{
    (void)truncated;
    (void)is_error;
    struct ctx *c = arg;
    if (!(len == 6 && !memcmp(data, "[DONE]", 6))) take_usage(c->out, data, len);
    return 0;
}

static int on_headers(http_parser *hp)
{
    struct ctx *c = hp->data;
    c->out->status = hp->status_code;
    if (hp->status_code >= 200 && hp->status_code <= 299 &&
        http_meta_not_sse(&c->meta, c->out->error, sizeof c->out->error)) {
        c->not_sse = 1;
        http_parser_pause(hp, 1);
    }
    return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t n)
{
    http_meta_field(&((struct ctx *)hp->data)->meta, at, n);
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t n)
{
    http_meta_value(&((struct ctx *)hp->data)->meta, at, n);
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
    struct ctx *c = hp->data;
    if (c->out->status >= 200 && c->out->status <= 299) sse_feed(&c->sse, at, n, on_event, c);
    size_t room = sizeof c->body - c->body_len;
    if (n > room) n = room;
    memcpy(c->body + c->body_len, at, n);
    c->body_len += n;
    return 0;
}

static int on_complete(http_parser *hp)
{
    ((struct ctx *)hp->data)->complete = 1;
    return 0;
}

int oneshot_request(const struct transport_ops *ops, struct transport_ctx *tctx,
                    const struct endpoint *ep, const char *request, size_t len,
                    double timeout_s, struct oneshot_result *out)
{
    memset(out, 0, sizeof *out);
    out->prompt_tokens = out->completion_tokens = -1;
    struct ctx *c = calloc(1, sizeof *c);
    c->out = out;
    sse_init(&c->sse, 0);
    http_parser hp;
    http_parser_init(&hp, HTTP_RESPONSE);
    hp.data = c;
    http_parser_settings settings = {.on_header_field = on_header_field,
                                     .on_header_value = on_header_value,
                                     .on_headers_complete = on_headers, .on_body = on_body,
                                     .on_message_complete = on_complete};
    struct tconn tc = {0};
    int64_t deadline = clock_now_ns() + (int64_t)(timeout_s * 1e9);
    size_t sent = 0;
    int rc = -1;
    if (ops->open(tctx, &tc, ep)) {
        snprintf(out->error, sizeof out->error, "%s", tc.err);
        sse_free(&c->sse);
        free(c);
        return -1;
    }
    int ready = 0;
    char buf[16384];
    while (clock_now_ns() < deadline) {
        if (cancel_flag && *cancel_flag) {
            snprintf(out->error, sizeof out->error, "interrupted (SIGINT or SIGTERM)");
            goto done;
        }
        struct pollfd pfd = {tc.fd, POLLIN | (tc.want_write || (ready && sent < len) ? POLLOUT : 0), 0};
        poll(&pfd, 1, 50);
        if (!ready) {
            int p = ops->progress(&tc);
            if (p == T_ERROR) {
                snprintf(out->error, sizeof out->error, "%s", tc.err);
                goto done;
            }
            if (p != 1) continue;
            ready = 1;
        }
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
            if (n <= 0) {
                if (n == 0) http_parser_execute(&hp, &settings, NULL, 0);
                if (!c->complete)
                    snprintf(out->error, sizeof out->error, "connection closed before the response ended");
                goto finish;
            }
            http_parser_execute(&hp, &settings, buf, (size_t)n);
            if (c->not_sse) goto done;
            if (HTTP_PARSER_ERRNO(&hp) != HPE_OK) {
                snprintf(out->error, sizeof out->error, "HTTP parse error: %s",
                         http_errno_description(HTTP_PARSER_ERRNO(&hp)));
                goto done;
            }
            if (c->complete) goto finish;
        }
    }
    snprintf(out->error, sizeof out->error, "no complete response within %.0f s", timeout_s);
    goto done;
finish:
    if (out->status < 200 || out->status > 299) {
        /* a JSON error body: keep its message */
        if (!out->error[0]) take_usage(out, c->body, c->body_len);
        if (!out->error[0])
            snprintf(out->error, sizeof out->error, "%.*s", (int)(c->body_len > 200 ? 200 : c->body_len), c->body);
    } else if (c->body_len && c->body[0] == '{') {
        take_usage(out, c->body, c->body_len); /* a non-streamed answer */
    }
    rc = out->error[0] ? -1 : 0;
done:
    ops->close(&tc);
    sse_free(&c->sse);
    free(c);
    redact_str(out->error); /* a server may echo the API key in its error */
    return rc;
}
