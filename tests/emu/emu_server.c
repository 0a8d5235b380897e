/* strobe-emu's event loop, connections and scheduler.
 *
 * Timing model (the README states it as formulas):
 *  - a request is admitted when fewer than max_batch requests are admitted, else it waits FIFO;
 *  - admitted requests are prefilled one at a time, FIFO, each taking uncached/prefill_tps;
 *  - after prefill a request decodes on its own step clock: each step lasts A + C·b, with b
 *    the number of decoding requests when the step begins, and yields 1..K+1 tokens;
 *  - every deadline is absolute and derived from the previous deadline, never from the time
 *    the loop woke up, so lateness never accumulates into the schedule.
 * Chunks carry x_emu_sched_ns (the deadline) and x_emu_sent_ns (just before write()). */
#include "emu_server.h"

#include "../../dataplane/clock.h"
#include "../../dataplane/fdlimit.h"
#include "emu_model.h"
#include "emu_wire.h"
#include "prefix_cache.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BODY (64u << 20)
#define SPIN_NS 30000          /* last stretch before a deadline is spun, not slept */
#define NANOSLEEP_WINDOW 300000 /* below this, sleep with clock_nanosleep instead of epoll */
#define EVENT_BUF (64 * 1024)

enum req_state { RS_DELAYED, RS_WAITING, RS_PREFILL_QUEUED, RS_PREFILLING, RS_DECODING,
                 RS_HEADER_DRIP, RS_DONE };

struct conn;

struct req {
    struct conn *conn; /* NULL once the client has gone */
    enum req_state state;
    int chat, stream, include_usage;
    int64_t prompt_tokens, cached_tokens;
    int target_tokens, reasoning_target, generated;
    const char *finish;
    uint64_t rng;
    int64_t arrival_ns;
    enum fault_kind fault;
    int has_fault;
    int fault_at_token;
    char id[48];
    char model[128];
    struct req *next; /* waiting / prefill FIFO */
    char *text;       /* non-streaming: accumulated output */
    size_t text_len, text_cap, reasoning_len;
    int timers; /* timers in the heap that point here */
};

struct conn {
    int fd;
    http_parser parser;
    char *in;
    size_t in_len, in_cap, in_parsed;
    char *out;
    size_t out_len, out_off, out_cap;
    char url[256];
    size_t url_len;
    char *body;
    size_t body_len, body_cap;
    int message_ready, keep_alive, close_after_write, epollout;
    struct req *req;
    struct conn *grave_next; /* closed, freed at the end of the loop iteration */
};

struct timer {
    int64_t due;
    struct req *req;
};

static struct {
    const struct emu_params *p;
    int epfd, listen_fd;
    struct timer *heap;
    size_t heap_len, heap_cap;
    struct req *wait_head, *wait_tail, *pf_head, *pf_tail;
    int admitted, decoding, prefill_busy;
    int64_t prefill_free_at;
    struct prefix_cache *cache;
    uint64_t fault_rng, request_seq;
    /* counters for /metrics */
    uint64_t requests_total, prompt_tokens_total, generation_tokens_total;
    uint64_t cache_query_tokens, cache_hit_tokens, faults_injected[FAULT_COUNT];
    double energy_j;
    int64_t energy_at_ns;
    int64_t started_ns;
    struct req *in_timer;   /* being processed: conn_close must not free it */
    struct conn *graveyard; /* closed connections, freed once no event can name them */
    char ev[EVENT_BUF];
} S;

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

/* ---------- energy ---------- */

static void set_decoding(int64_t t, int delta)
{
    if (t > S.energy_at_ns) {
        S.energy_j += model_power_w(S.p, S.decoding) * (double)(t - S.energy_at_ns) / 1e9;
        S.energy_at_ns = t;
    }
    S.decoding += delta;
}

/* ---------- timer heap ---------- */

static void heap_push(int64_t due, struct req *r)
{
    if (S.heap_len == S.heap_cap) {
        S.heap_cap = S.heap_cap ? S.heap_cap * 2 : 1024;
        S.heap = realloc(S.heap, S.heap_cap * sizeof *S.heap);
    }
    size_t i = S.heap_len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (S.heap[parent].due <= due) break;
        S.heap[i] = S.heap[parent];
        i = parent;
    }
    S.heap[i] = (struct timer){due, r};
    r->timers++;
}

static struct timer heap_pop(void)
{
    struct timer top = S.heap[0], last = S.heap[--S.heap_len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= S.heap_len) break;
        if (c + 1 < S.heap_len && S.heap[c + 1].due < S.heap[c].due) c++;
        if (S.heap[c].due >= last.due) break;
        S.heap[i] = S.heap[c];
        i = c;
    }
    if (S.heap_len) S.heap[i] = last;
    top.req->timers--;
    return top;
}

/* ---------- connection output ---------- */

static void conn_close(struct conn *c);

static void want_out(struct conn *c, int on)
{
    if (c->epollout == on) return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(S.epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->epollout = on;
}

/* Writes now if nothing is queued, queues the rest. Returns -1 if the connection died. */
static int conn_write(struct conn *c, const char *data, size_t len)
{
    if (c->out_len == c->out_off) {
        c->out_len = c->out_off = 0;
        while (len) {
            ssize_t w = send(c->fd, data, len, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                return -1;
            }
            data += w;
            len -= (size_t)w;
        }
    }
    if (len) {
        if (c->out_len + len > c->out_cap) {
            while (c->out_len + len > c->out_cap) c->out_cap = c->out_cap ? c->out_cap * 2 : 65536;
            c->out = realloc(c->out, c->out_cap);
        }
        memcpy(c->out + c->out_len, data, len);
        c->out_len += len;
        want_out(c, 1);
    }
    return 0;
}

static int conn_flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        c->out_off += (size_t)w;
    }
    c->out_len = c->out_off = 0;
    want_out(c, 0);
    if (c->close_after_write) return -1;
    return 0;
}

/* One SSE event as one HTTP chunk, in one write. */
static int send_event(struct conn *c, const char *event, size_t len)
{
    char head[20];
    int hn = snprintf(head, sizeof head, "%zx\r\n", len);
    static char frame[EVENT_BUF + 32];
    memcpy(frame, head, (size_t)hn);
    memcpy(frame + hn, event, len);
    memcpy(frame + hn + len, "\r\n", 2);
    return conn_write(c, frame, (size_t)hn + len + 2);
}

static void send_response(struct conn *c, int status, const char *ctype, const char *body,
                          size_t len)
{
    const char *reason = status == 200   ? "OK"
                         : status == 404 ? "Not Found"
                         : status == 400 ? "Bad Request"
                         : status == 405 ? "Method Not Allowed"
                         : status == 429 ? "Too Many Requests"
                         : status == 503 ? "Service Unavailable"
                                         : "Internal Server Error";
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
                      status, reason, ctype, len,
                      c->keep_alive ? "" : "Connection: close\r\n");
    if (!c->keep_alive) c->close_after_write = 1;
    if (conn_write(c, head, (size_t)hn) == 0) conn_write(c, body, len);
    if (c->close_after_write && c->out_len == c->out_off) conn_close(c);
}

/* ---------- requests ---------- */

static void req_detach_and_maybe_free(struct req *r)
{
    if (r == S.in_timer) return;
    if (r->timers == 0 && (r->state == RS_DONE || r->conn == NULL) &&
        r->state != RS_WAITING && r->state != RS_PREFILL_QUEUED) {
        free(r->text);
        free(r);
    }
}

static void fifo_push(struct req **head, struct req **tail, struct req *r)
{
    r->next = NULL;
    if (*tail) (*tail)->next = r; else *head = r;
    *tail = r;
}

static struct req *fifo_pop(struct req **head, struct req **tail)
{
    struct req *r = *head;
    if (r) {
        *head = r->next;
        if (!*head) *tail = NULL;
    }
    return r;
}

static void start_prefill(int64_t t);

static void admit(struct req *r, int64_t t)
{
    S.admitted++;
    r->state = RS_PREFILL_QUEUED;
    fifo_push(&S.pf_head, &S.pf_tail, r);
    if (!S.prefill_busy) start_prefill(t);
}

static void release_slot(int64_t t)
{
    S.admitted--;
    struct req *w;
    /* skip requests whose client left while they waited */
    while ((w = fifo_pop(&S.wait_head, &S.wait_tail))) {
        if (w->conn) {
            admit(w, t);
            return;
        }
        w->state = RS_DONE;
        req_detach_and_maybe_free(w);
    }
}

static void start_prefill(int64_t t)
{
    struct req *r;
    while ((r = fifo_pop(&S.pf_head, &S.pf_tail))) {
        if (!r->conn) { /* client gone before its prefill: give the slot back */
            r->state = RS_DONE;
            release_slot(t);
            req_detach_and_maybe_free(r);
            continue;
        }
        int64_t begin = t > S.prefill_free_at ? t : S.prefill_free_at;
        int64_t uncached = r->prompt_tokens - r->cached_tokens;
        S.prefill_free_at = begin + model_prefill_ns(S.p, uncached);
        S.prefill_busy = 1;
        r->state = RS_PREFILLING;
        heap_push(S.prefill_free_at, r);
        return;
    }
    S.prefill_busy = 0;
}

static void finish_request(struct req *r, int64_t t)
{
    if (r->state == RS_DECODING) {
        set_decoding(t, -1);
        release_slot(t);
    }
    r->state = RS_DONE;
    if (r->conn) r->conn->req = NULL;
}

static const char *const vocab[] = {
    " the", " model", " token", " stream", " latency", " of", " and", " to", " a", " in",
    " kernel", " buffer", " packet", " clock", " batch", " cache", " is", " we", " with", " for",
    " def", " return", " if", " else", "(", ")", ":", " x", " y", " =", " +", "\n",
};
#define VOCAB_N (sizeof vocab / sizeof vocab[0])

static struct wire_req wire_of(const struct req *r)
{
    return (struct wire_req){.id = r->id, .model = r->model,
                             .created = S.started_ns / 1000000000LL, .chat = r->chat};
}

static struct wire_usage usage_of(const struct req *r)
{
    int reasoning = r->generated < r->reasoning_target ? r->generated : r->reasoning_target;
    return (struct wire_usage){r->prompt_tokens, r->generated, r->cached_tokens, reasoning};
}

static void conn_after_response(struct conn *c);

/* End of a streamed response: finish chunk (with usage in finish-chunk style), usage chunk,
 * [DONE], and the chunked-encoding terminator. */
static void stream_finish(struct req *r, int64_t sched)
{
    struct conn *c = r->conn;
    struct wire_req w = wire_of(r);
    struct wire_usage u = usage_of(r);
    int usage_on_finish = r->include_usage && S.p->usage_style == USAGE_FINISH_CHUNK;
    int n = wire_chunk(S.ev, sizeof S.ev, &w, DELTA_FINISH, NULL, 0, r->finish,
                       usage_on_finish ? &u : NULL, clock_now_ns(), sched);
    if (send_event(c, S.ev, (size_t)n)) goto dead;
    if (r->include_usage && !usage_on_finish) {
        n = wire_usage_chunk(S.ev, sizeof S.ev, &w, &u, clock_now_ns());
        if (send_event(c, S.ev, (size_t)n)) goto dead;
    }
    static const char done[] = "data: [DONE]\n\n";
    if (send_event(c, done, sizeof done - 1) || conn_write(c, "0\r\n\r\n", 5)) goto dead;
    c->req = NULL;
    conn_after_response(c);
    return;
dead:
    conn_close(c);
}

static void full_finish(struct req *r)
{
    struct conn *c = r->conn;
    struct wire_req w = wire_of(r);
    struct wire_usage u = usage_of(r);
    size_t cap = r->text_len * 2 + 4096;
    char *body = malloc(cap);
    int n = wire_full_response(body, cap, &w, r->text + r->reasoning_len,
                               r->text_len - r->reasoning_len, r->text, r->reasoning_len,
                               r->finish, &u);
    c->req = NULL;
    send_response(c, 200, "application/json", body, (size_t)(n < 0 ? 0 : n));
    free(body);
    if (c->fd >= 0 && !c->close_after_write) conn_after_response(c);
}

static void inject_midstream_fault(struct req *r, int64_t sched)
{
    struct conn *c = r->conn;
    S.faults_injected[r->fault]++;
    if (r->fault == FAULT_RESET) {
        struct linger lg = {1, 0}; /* close with RST, as a crashed server would */
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        conn_close(c);
    } else if (r->fault == FAULT_MALFORMED) {
        int n = snprintf(S.ev, sizeof S.ev,
                         "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\",\"choices\":"
                         "[{\"index\":0,\"delta\":{\"content\":\n\n",
                         r->id);
        if (send_event(c, S.ev, (size_t)n)) conn_close(c);
    } else if (r->fault == FAULT_ERROR_EVENT) {
        char body[256];
        int n = wire_error_body(body, sizeof body, 500, "emulated engine failure mid-stream");
        n = snprintf(S.ev, sizeof S.ev, "data: %.*s\n\n", n, body);
        static const char done[] = "data: [DONE]\n\n";
        if (send_event(c, S.ev, (size_t)n) || send_event(c, done, sizeof done - 1) ||
            conn_write(c, "0\r\n\r\n", 5)) {
            conn_close(c);
            return;
        }
        finish_request(r, sched);
        conn_after_response(c);
    }
    (void)sched;
}

/* One decode step of r is due at `sched`. */
static void decode_step(struct req *r, int64_t sched)
{
    int k = model_draw_tokens(S.p, &r->rng);
    if (k > r->target_tokens - r->generated) k = r->target_tokens - r->generated;
    char text[1024];
    size_t tl = 0, reasoning_part = 0;
    for (int i = 0; i < k; i++) {
        const char *w = vocab[model_rng_next(&r->rng) % VOCAB_N];
        size_t wl = strlen(w);
        if (tl + wl >= sizeof text) break;
        memcpy(text + tl, w, wl);
        tl += wl;
        if (r->generated + i < r->reasoning_target) reasoning_part = tl;
    }
    int first_token = r->generated;
    r->generated += k;
    S.generation_tokens_total += (uint64_t)k;
    if (r->stream) {
        struct wire_req w = wire_of(r);
        /* a step that straddles the reasoning boundary sends two events, as real servers do */
        if (reasoning_part) {
            int n = wire_chunk(S.ev, sizeof S.ev, &w, DELTA_REASONING, text, reasoning_part,
                               NULL, NULL, clock_now_ns(), sched);
            if (send_event(r->conn, S.ev, (size_t)n)) goto dead;
        }
        if (tl > reasoning_part) {
            int n = wire_chunk(S.ev, sizeof S.ev, &w, DELTA_CONTENT, text + reasoning_part,
                               tl - reasoning_part, NULL, NULL, clock_now_ns(), sched);
            if (send_event(r->conn, S.ev, (size_t)n)) goto dead;
        }
    } else {
        if (r->text_len + tl > r->text_cap) {
            r->text_cap = (r->text_len + tl) * 2 + 256;
            r->text = realloc(r->text, r->text_cap);
        }
        memcpy(r->text + r->text_len, text, tl);
        r->text_len += tl;
        if (reasoning_part) r->reasoning_len = r->text_len - tl + reasoning_part;
    }
    if (r->has_fault && first_token <= r->fault_at_token && r->fault_at_token < r->generated &&
        r->fault != FAULT_STALL) {
        inject_midstream_fault(r, sched);
        if (!r->conn || r->state == RS_DONE) {
            if (r->state == RS_DECODING) finish_request(r, sched);
            return;
        }
    }
    if (r->generated >= r->target_tokens) {
        finish_request(r, sched);
        if (r->stream) stream_finish(r, sched); else full_finish(r);
        return;
    }
    int64_t next = sched + model_step_ns(S.p, S.decoding);
    if (r->has_fault && r->fault == FAULT_STALL && first_token <= r->fault_at_token &&
        r->fault_at_token < r->generated) {
        S.faults_injected[FAULT_STALL]++;
        next += (int64_t)(S.p->faults.seconds[FAULT_STALL] * 1e9);
    }
    heap_push(next, r);
    return;
dead:
    conn_close(r->conn);
}

static void begin_request(struct req *r, int64_t t);

static void on_timer_body(struct req *r, int64_t sched);

static void on_timer(struct req *r, int64_t sched)
{
    S.in_timer = r;
    on_timer_body(r, sched);
    S.in_timer = NULL;
    req_detach_and_maybe_free(r);
}

static void on_timer_body(struct req *r, int64_t sched)
{
    if (!r->conn) { /* client gone: release what it held */
        if (r->state == RS_PREFILLING) {
            r->state = RS_DONE;
            release_slot(sched);
            start_prefill(sched);
        } else if (r->state == RS_DECODING) {
            finish_request(r, sched);
        }
        r->state = RS_DONE;
        return;
    }
    switch (r->state) {
    case RS_DELAYED: begin_request(r, sched); break;
    case RS_PREFILLING:
        set_decoding(sched, +1);
        r->state = RS_DECODING;
        heap_push(sched + model_step_ns(S.p, S.decoding), r);
        start_prefill(sched);
        break;
    case RS_DECODING: decode_step(r, sched); break;
    case RS_HEADER_DRIP: {
        char line[64];
        int n = snprintf(line, sizeof line, "X-Emu-Endless: %llu\r\n",
                         (unsigned long long)(sched / 1000000));
        if (conn_write(r->conn, line, (size_t)n)) conn_close(r->conn);
        else heap_push(sched + 100000000LL, r);
        break;
    }
    default: break;
    }
}

/* The request has arrived (or its injected first-byte delay has passed). */
static void begin_request(struct req *r, int64_t t)
{
    struct conn *c = r->conn;
    if (r->stream) {
        static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                   "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
        if (conn_write(c, head, sizeof head - 1)) {
            conn_close(c);
            return;
        }
        if (r->chat) {
            struct wire_req w = wire_of(r);
            int n = wire_chunk(S.ev, sizeof S.ev, &w, DELTA_ROLE, NULL, 0, NULL, NULL,
                               clock_now_ns(), t);
            if (send_event(c, S.ev, (size_t)n)) {
                conn_close(c);
                return;
            }
        }
    }
    if (S.admitted < S.p->max_batch) {
        admit(r, t);
    } else {
        r->state = RS_WAITING;
        fifo_push(&S.wait_head, &S.wait_tail, r);
    }
}

/* ---------- request parsing ---------- */

static void render_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = realloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n);
    *len += n;
}

static void render_content(char **buf, size_t *len, size_t *cap, const cJSON *content)
{
    if (cJSON_IsString(content)) {
        render_append(buf, len, cap, content->valuestring, strlen(content->valuestring));
    } else if (cJSON_IsArray(content)) {
        const cJSON *part;
        cJSON_ArrayForEach(part, content)
        {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (cJSON_IsString(t)) render_append(buf, len, cap, t->valuestring, strlen(t->valuestring));
        }
    }
}

/* The rendered prompt whose bytes give prompt_tokens and prefix-cache blocks:
 * chat: for each message "ROLE\n" + content + tool-call names and arguments + "\n";
 * completions: the prompt text. */
static char *render_prompt(const cJSON *root, int chat, size_t *out_len)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    render_append(&buf, &len, &cap, "", 0);
    if (chat) {
        const cJSON *msg;
        cJSON_ArrayForEach(msg, cJSON_GetObjectItemCaseSensitive(root, "messages"))
        {
            const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
            if (cJSON_IsString(role)) render_append(&buf, &len, &cap, role->valuestring, strlen(role->valuestring));
            render_append(&buf, &len, &cap, "\n", 1);
            render_content(&buf, &len, &cap, cJSON_GetObjectItemCaseSensitive(msg, "content"));
            const cJSON *call;
            cJSON_ArrayForEach(call, cJSON_GetObjectItemCaseSensitive(msg, "tool_calls"))
            {
                const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
                const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
                if (cJSON_IsString(name)) render_append(&buf, &len, &cap, name->valuestring, strlen(name->valuestring));
                if (cJSON_IsString(args)) render_append(&buf, &len, &cap, args->valuestring, strlen(args->valuestring));
            }
            render_append(&buf, &len, &cap, "\n", 1);
        }
    } else {
        const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(root, "prompt");
        if (cJSON_IsString(prompt)) {
            render_append(&buf, &len, &cap, prompt->valuestring, strlen(prompt->valuestring));
        } else if (cJSON_IsArray(prompt)) {
            const cJSON *p;
            cJSON_ArrayForEach(p, prompt) if (cJSON_IsString(p))
                render_append(&buf, &len, &cap, p->valuestring, strlen(p->valuestring));
        }
    }
    *out_len = len;
    return buf;
}

static void reply_error(struct conn *c, int status, const char *msg)
{
    char body[512];
    int n = wire_error_body(body, sizeof body, status, msg);
    send_response(c, status, "application/json", body, (size_t)n);
}

static int json_flag(const cJSON *obj, const char *name)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, name));
}

static void handle_generation(struct conn *c, int chat, int64_t now)
{
    cJSON *root = cJSON_ParseWithLength(c->body, c->body_len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        reply_error(c, 400, "request body is not a JSON object");
        return;
    }
    if (chat && !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "messages"))) {
        cJSON_Delete(root);
        reply_error(c, 400, "'messages' must be an array");
        return;
    }
    if (!chat && !cJSON_GetObjectItemCaseSensitive(root, "prompt")) {
        cJSON_Delete(root);
        reply_error(c, 400, "'prompt' is required");
        return;
    }
    struct req *r = calloc(1, sizeof *r);
    r->conn = c;
    r->chat = chat;
    r->arrival_ns = now;
    r->stream = json_flag(root, "stream");
    r->include_usage =
        json_flag(cJSON_GetObjectItemCaseSensitive(root, "stream_options"), "include_usage");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    snprintf(r->model, sizeof r->model, "%s",
             cJSON_IsString(model) ? model->valuestring : S.p->model);
    for (char *q = r->model; *q; q++) if (*q == '"' || *q == '\\') *q = '_';
    snprintf(r->id, sizeof r->id, "%s-emu-%llu", chat ? "chatcmpl" : "cmpl",
             (unsigned long long)++S.request_seq);

    size_t rlen;
    char *rendered = render_prompt(root, chat, &rlen);
    r->prompt_tokens = model_prompt_tokens(rlen);
    r->cached_tokens = prefix_cache_lookup_insert(S.cache, rendered, rlen);
    if (r->cached_tokens > r->prompt_tokens) r->cached_tokens = r->prompt_tokens;
    uint64_t h = model_hash(1469598103934665603ULL, c->body, c->body_len);
    free(rendered);
    r->rng = S.p->seed ^ h;

    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");
    if (!cJSON_IsNumber(mt)) mt = cJSON_GetObjectItemCaseSensitive(root, "max_completion_tokens");
    int max_tokens = cJSON_IsNumber(mt) && mt->valuedouble >= 1 ? (int)mt->valuedouble
                                                                : S.p->default_max_tokens;
    const cJSON *mn = cJSON_GetObjectItemCaseSensitive(root, "min_tokens");
    int min_tokens = cJSON_IsNumber(mn) ? (int)mn->valuedouble : 0;
    int n = json_flag(root, "ignore_eos") ? max_tokens : model_natural_tokens(S.p, h);
    if (n < min_tokens) n = min_tokens;
    if (n >= max_tokens) {
        n = max_tokens;
        r->finish = "length";
    } else {
        r->finish = "stop";
    }
    r->target_tokens = n;
    r->reasoning_target = (int)floor(S.p->reasoning_fraction * n);
    cJSON_Delete(root);

    S.requests_total++;
    S.prompt_tokens_total += (uint64_t)r->prompt_tokens;
    S.cache_query_tokens += (uint64_t)r->prompt_tokens;
    S.cache_hit_tokens += (uint64_t)r->cached_tokens;

    /* at most one fault per request, drawn from the global fault stream */
    double u = (double)(model_rng_next(&S.fault_rng) >> 11) * 0x1.0p-53, acc = 0;
    for (int k = 0; k < FAULT_COUNT; k++) {
        acc += S.p->faults.probability[k];
        if (u < acc) {
            r->has_fault = 1;
            r->fault = (enum fault_kind)k;
            r->fault_at_token = (int)(model_rng_next(&S.fault_rng) % (uint64_t)(n > 1 ? n - 1 : 1));
            break;
        }
    }
    if (!r->stream && r->has_fault && r->fault >= FAULT_MALFORMED && r->fault <= FAULT_STALL)
        r->has_fault = 0; /* mid-stream faults need a stream */
    c->req = r;
    if (r->has_fault) {
        switch (r->fault) {
        case FAULT_HTTP500:
        case FAULT_HTTP503:
        case FAULT_HTTP429: {
            int status = r->fault == FAULT_HTTP500 ? 500 : r->fault == FAULT_HTTP503 ? 503 : 429;
            S.faults_injected[r->fault]++;
            c->req = NULL;
            r->state = RS_DONE;
            free(r);
            reply_error(c, status, status == 429 ? "emulated rate limit: slow down"
                                                 : "emulated server error");
            return;
        }
        case FAULT_ENDLESS_HEADERS:
            S.faults_injected[r->fault]++;
            r->state = RS_HEADER_DRIP;
            conn_write(c, "HTTP/1.1 200 OK\r\n", 17);
            heap_push(now + 100000000LL, r);
            return;
        case FAULT_SLOW_FIRST_BYTE:
            S.faults_injected[r->fault]++;
            r->state = RS_DELAYED;
            heap_push(now + (int64_t)(S.p->faults.seconds[r->fault] * 1e9), r);
            return;
        default: break;
        }
    }
    begin_request(r, now);
}

static void handle_metrics(struct conn *c, int64_t now)
{
    set_decoding(now, 0);
    char body[4096];
    size_t at = 0;
    int waiting = 0;
    for (struct req *w = S.wait_head; w; w = w->next) waiting++;
    at += (size_t)snprintf(body + at, sizeof body - at,
        "# HELP strobe_emu_requests_running Requests admitted (prefilling or decoding).\n"
        "# TYPE strobe_emu_requests_running gauge\nstrobe_emu_requests_running %d\n"
        "# HELP strobe_emu_requests_decoding Requests in the decode batch.\n"
        "# TYPE strobe_emu_requests_decoding gauge\nstrobe_emu_requests_decoding %d\n"
        "# HELP strobe_emu_requests_waiting Requests waiting for a batch slot.\n"
        "# TYPE strobe_emu_requests_waiting gauge\nstrobe_emu_requests_waiting %d\n"
        "# HELP strobe_emu_prefix_cache_queries_total Prompt tokens looked up in the prefix cache.\n"
        "# TYPE strobe_emu_prefix_cache_queries_total counter\nstrobe_emu_prefix_cache_queries_total %llu\n"
        "# HELP strobe_emu_prefix_cache_hits_total Prompt tokens found in the prefix cache.\n"
        "# TYPE strobe_emu_prefix_cache_hits_total counter\nstrobe_emu_prefix_cache_hits_total %llu\n"
        "# HELP strobe_emu_prompt_tokens_total Prompt tokens received.\n"
        "# TYPE strobe_emu_prompt_tokens_total counter\nstrobe_emu_prompt_tokens_total %llu\n"
        "# HELP strobe_emu_generation_tokens_total Output tokens generated.\n"
        "# TYPE strobe_emu_generation_tokens_total counter\nstrobe_emu_generation_tokens_total %llu\n"
        "# HELP strobe_emu_requests_total Generation requests received.\n"
        "# TYPE strobe_emu_requests_total counter\nstrobe_emu_requests_total %llu\n"
        "# HELP strobe_emu_power_watts Modelled accelerator power, all accelerators.\n"
        "# TYPE strobe_emu_power_watts gauge\nstrobe_emu_power_watts %.3f\n"
        "# HELP strobe_emu_energy_joules_total Modelled accelerator energy since start.\n"
        "# TYPE strobe_emu_energy_joules_total counter\nstrobe_emu_energy_joules_total %.6f\n"
        "# HELP strobe_emu_faults_injected_total Faults injected, by kind.\n"
        "# TYPE strobe_emu_faults_injected_total counter\n",
        S.admitted, S.decoding, waiting, (unsigned long long)S.cache_query_tokens,
        (unsigned long long)S.cache_hit_tokens, (unsigned long long)S.prompt_tokens_total,
        (unsigned long long)S.generation_tokens_total, (unsigned long long)S.requests_total,
        model_power_w(S.p, S.decoding), S.energy_j);
    for (int k = 0; k < FAULT_COUNT; k++)
        at += (size_t)snprintf(body + at, sizeof body - at,
                               "strobe_emu_faults_injected_total{kind=\"%s\"} %llu\n",
                               fault_name((enum fault_kind)k),
                               (unsigned long long)S.faults_injected[k]);
    send_response(c, 200, "text/plain; version=0.0.4", body, at);
}

/* Redfish Power resource (DMTF Power.v1_7_0 shape); energy in Oem as Redfish has no
 * cumulative energy field in Power. */
static void handle_power(struct conn *c, int64_t now)
{
    set_decoding(now, 0);
    char body[2048];
    double w = model_power_w(S.p, S.decoding);
    double cap = S.p->accelerators * S.p->power_max_w;
    int n = snprintf(body, sizeof body,
        "{\"@odata.id\":\"/redfish/v1/Chassis/emu/Power\",\"@odata.type\":\"#Power.v1_7_0.Power\","
        "\"Id\":\"Power\",\"Name\":\"Accelerator power\",\"PowerControl\":[{"
        "\"@odata.id\":\"/redfish/v1/Chassis/emu/Power#/PowerControl/0\",\"MemberId\":\"0\","
        "\"Name\":\"Accelerators\",\"PowerConsumedWatts\":%.3f,\"PowerCapacityWatts\":%.1f,"
        "\"PhysicalContext\":\"Accelerator\",\"Oem\":{\"StrobeEmu\":{\"EnergyJoules\":%.6f,"
        "\"TimestampNs\":%lld,\"Accelerators\":%d,\"Decoding\":%d,\"MaxBatch\":%d}}}]}",
        w, cap, S.energy_j, (long long)now, S.p->accelerators, S.decoding, S.p->max_batch);
    send_response(c, 200, "application/json", body, (size_t)n);
}

static void dispatch(struct conn *c)
{
    int64_t now = clock_now_ns();
    int post = c->parser.method == HTTP_POST, get = c->parser.method == HTTP_GET;
    c->url[c->url_len] = 0;
    char *q = strchr(c->url, '?');
    if (q) *q = 0;
    if (post && !strcmp(c->url, "/v1/chat/completions")) {
        handle_generation(c, 1, now);
    } else if (post && !strcmp(c->url, "/v1/completions")) {
        handle_generation(c, 0, now);
    } else if (get && !strcmp(c->url, "/v1/models")) {
        char body[512];
        int n = snprintf(body, sizeof body,
                         "{\"object\":\"list\",\"data\":[{\"id\":\"%s\",\"object\":\"model\","
                         "\"created\":%lld,\"owned_by\":\"strobe-emu\"}]}",
                         S.p->model, (long long)(S.started_ns / 1000000000LL));
        send_response(c, 200, "application/json", body, (size_t)n);
    } else if (get && !strcmp(c->url, "/health")) {
        send_response(c, 200, "text/plain", "ok\n", 3);
    } else if (get && !strcmp(c->url, "/metrics")) {
        handle_metrics(c, now);
    } else if (get && !strcmp(c->url, "/redfish/v1/Chassis/emu/Power")) {
        handle_power(c, now);
    } else {
        reply_error(c, 404, "no such endpoint");
    }
}

/* ---------- connections ---------- */

static int on_url(http_parser *hp, const char *at, size_t n)
{
    struct conn *c = hp->data;
    if (c->url_len + n >= sizeof c->url) return 1;
    memcpy(c->url + c->url_len, at, n);
    c->url_len += n;
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
    struct conn *c = hp->data;
    if (c->body_len + n > MAX_BODY) return 1;
    if (c->body_len + n > c->body_cap) {
        c->body_cap = (c->body_len + n) * 2;
        c->body = realloc(c->body, c->body_cap);
    }
    memcpy(c->body + c->body_len, at, n);
    c->body_len += n;
    return 0;
}

static int on_message_begin(http_parser *hp)
{
    struct conn *c = hp->data;
    c->url_len = 0;
    c->body_len = 0;
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    struct conn *c = hp->data;
    c->message_ready = 1;
    c->keep_alive = http_should_keep_alive(hp);
    http_parser_pause(hp, 1); /* one request at a time per connection */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Parses buffered input; dispatches at most one complete request. */
static void conn_process_input(struct conn *c)
{
    while (!c->req && c->fd >= 0 && c->in_parsed < c->in_len) {
        size_t n = http_parser_execute(&c->parser, &parser_settings, c->in + c->in_parsed,
                                       c->in_len - c->in_parsed);
        c->in_parsed += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e != HPE_OK && e != HPE_PAUSED) {
            c->keep_alive = 0;
            reply_error(c, 400, http_errno_description(e));
            return;
        }
        if (c->message_ready) {
            c->message_ready = 0;
            http_parser_pause(&c->parser, 0);
            dispatch(c);
        } else {
            break;
        }
    }
    if (c->fd >= 0 && c->in_parsed == c->in_len) c->in_len = c->in_parsed = 0;
}

static void conn_after_response(struct conn *c)
{
    if (c->fd < 0) return;
    if (!c->keep_alive) {
        c->close_after_write = 1;
        if (c->out_len == c->out_off) conn_close(c);
        return;
    }
    conn_process_input(c);
}

static void conn_close(struct conn *c)
{
    if (c->fd < 0) return;
    epoll_ctl(S.epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    if (c->req) {
        struct req *r = c->req;
        r->conn = NULL;
        c->req = NULL;
        req_detach_and_maybe_free(r);
    }
    c->grave_next = S.graveyard;
    S.graveyard = c;
}

static void conn_free(struct conn *c)
{
    free(c->in);
    free(c->out);
    free(c->body);
    free(c);
}

static void conn_read(struct conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 16384) {
            c->in_cap = c->in_cap ? c->in_cap * 2 : 65536;
            c->in = realloc(c->in, c->in_cap);
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            if (c->in_len > MAX_BODY + 65536) {
                c->keep_alive = 0;
                reply_error(c, 400, "request too large");
                return;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        conn_close(c);
        return;
    }
    conn_process_input(c);
}

static void accept_all(void)
{
    for (;;) {
        int fd = accept4(S.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        c->fd = fd;
        c->keep_alive = 1;
        http_parser_init(&c->parser, HTTP_REQUEST);
        c->parser.data = c;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(S.epfd, EPOLL_CTL_ADD, fd, &ev);
    }
}

static int open_listener(const struct emu_params *p)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    char port[16];
    snprintf(port, sizeof port, "%d", p->listen_port);
    int rc = getaddrinfo(p->listen_host, port, &hints, &res);
    if (rc) {
        fprintf(stderr, "strobe-emu: cannot resolve --listen host '%s': %s.\n", p->listen_host,
                gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 4096)) {
        fprintf(stderr, "strobe-emu: cannot listen on %s:%d: %s; pick another --listen port.\n",
                p->listen_host, p->listen_port, strerror(errno));
        freeaddrinfo(res);
        close(fd);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Sleeps until the next deadline or I/O: epoll with a nanosecond timeout while the deadline
 * is far, clock_nanosleep(TIMER_ABSTIME) then a spin for the last stretch. */
static int wait_io(struct epoll_event *evs, int max)
{
    if (!S.heap_len) return epoll_wait(S.epfd, evs, max, 200);
    /* I/O first: a request must not wait behind a run of near deadlines */
    int n = epoll_wait(S.epfd, evs, max, 0);
    if (n != 0) return n;
    int64_t due = S.heap[0].due, now = clock_now_ns();
    int64_t gap = due - now;
    if (gap <= 0) return 0;
    if (gap > NANOSLEEP_WINDOW) {
        int64_t wait = gap - NANOSLEEP_WINDOW / 2;
        struct timespec ts = clock_ns_to_timespec(wait);
        return epoll_pwait2(S.epfd, evs, max, &ts, NULL);
    }
    if (gap > SPIN_NS) {
        struct timespec ts = clock_ns_to_timespec(due - SPIN_NS);
        clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL);
    }
    while (clock_now_ns() < due) {
    }
    return 0;
}

int emu_serve(const struct emu_params *p)
{
    memset(&S, 0, sizeof S);
    S.p = p;
    fdlimit_raise(); /* thousands of concurrent streams need thousands of sockets */
    S.listen_fd = open_listener(p);
    if (S.listen_fd < 0) return 1;
    S.epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(S.epfd, EPOLL_CTL_ADD, S.listen_fd, &lev);
    S.cache = prefix_cache_new(p->kv_cache_tokens);
    S.fault_rng = p->seed * 0x9e3779b97f4a7c15ULL + 7;
    S.started_ns = S.energy_at_ns = clock_now_ns();
    /* the default 50 µs timer slack would be the largest pacing error */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    fprintf(stderr, "strobe-emu: listening on %s:%d, model %s\n", p->listen_host,
            p->listen_port, p->model);

    enum { MAXEV = 256 };
    struct epoll_event evs[MAXEV];
    while (!stop_flag) {
        int n = wait_io(evs, MAXEV);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                accept_all();
                continue;
            }
            if (c->fd < 0) continue;
            if (evs[i].events & EPOLLOUT)
                if (conn_flush(c)) conn_close(c);
            if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) conn_read(c);
        }
        while (S.heap_len && S.heap[0].due <= clock_now_ns()) {
            struct timer t = heap_pop();
            on_timer(t.req, t.due);
        }
        while (S.graveyard) {
            struct conn *c = S.graveyard;
            S.graveyard = c->grave_next;
            conn_free(c);
        }
    }
    fprintf(stderr, "strobe-emu: stopping after %llu requests\n",
            (unsigned long long)S.requests_total);
    prefix_cache_free(S.cache);
    close(S.listen_fd);
    close(S.epfd);
    return 0;
}
