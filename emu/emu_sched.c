/* strobe-emu's scheduler: the performance model driven on an absolute schedule.
 *  - a request is admitted when fewer than max_batch requests are admitted, else it waits FIFO;
 *  - admitted requests are prefilled one at a time, FIFO, each taking uncached/prefill_tps;
 *  - after prefill a request decodes on its own step clock: each step lasts A + C·b, with b
 *    the number of decoding requests when the step begins, and yields 1..K+1 tokens;
 *  - every deadline is absolute and derived from the previous deadline, never from the time
 *    the loop woke up, so lateness never accumulates into the schedule;
 *  - unpaced (no step time, emu_params_unpaced), a step is due as soon as the previous one
 *    is written;
 *  - backpressure: a step waits while its connection holds more than output_limit() bytes
 *    unsent, and is due again once the connection has taken them.
 * Chunks carry x_emu_sched_ns (the deadline) and x_emu_sent_ns (just before write()). */
#include "emu_state.h"

#include "clock.h"
#include "emu_model.h"
#include "emu_wire.h"
#include "rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void start_prefill(int64_t t);

/* ---------- energy ---------- */

void emu_sched_set_decoding(int64_t t, int delta)
{
    if (t > emu_state.energy_at_ns) {
        emu_state.energy_j += emu_model_power_w(emu_state.p, emu_state.decoding) *
                              (double)(t - emu_state.energy_at_ns) / 1e9;
        emu_state.energy_at_ns = t;
    }
    emu_state.decoding += delta;
}

/* ---------- timer heap ---------- */

void emu_sched_heap_push(int64_t due, struct req *r)
{
    if (emu_state.heap_len == emu_state.heap_cap) {
        emu_state.heap_cap = emu_state.heap_cap ? emu_state.heap_cap * 2 : 1024;
        emu_state.heap = realloc(emu_state.heap, emu_state.heap_cap * sizeof *emu_state.heap);
    }
    size_t i = emu_state.heap_len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (emu_state.heap[parent].due <= due) break;
        emu_state.heap[i] = emu_state.heap[parent];
        i = parent;
    }
    emu_state.heap[i] = (struct timer){due, r};
    r->timers++;
}

struct timer emu_sched_heap_pop(void)
{
    struct timer top = emu_state.heap[0], last = emu_state.heap[--emu_state.heap_len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= emu_state.heap_len) break;
        if (c + 1 < emu_state.heap_len && emu_state.heap[c + 1].due < emu_state.heap[c].due) c++;
        if (emu_state.heap[c].due >= last.due) break;
        emu_state.heap[i] = emu_state.heap[c];
        i = c;
    }
    if (emu_state.heap_len) emu_state.heap[i] = last;
    top.req->timers--;
    return top;
}

/* ---------- backpressure ---------- */

/* Unpaced, a step waits for any unsent byte: the stream goes as fast as the connection takes
 * it. Paced, a client slower than the schedule makes the emulator hold at most about this
 * much per connection; the deadlines stay absolute, so the steps after the wait go out late
 * and their x_emu_sched_ns says by how much. */
#define PACED_OUTPUT_LIMIT (1u << 20)

static size_t output_limit(void)
{
    return emu_params_unpaced(emu_state.p) ? 0 : PACED_OUTPUT_LIMIT;
}

static size_t unsent(const struct conn *c) { return c->out_len - c->out_off; }

void emu_sched_output_taken(struct req *r)
{
    if (!r->blocked || (r->conn && unsent(r->conn) > output_limit())) return;
    r->blocked = 0;
    /* unpaced, a step's deadline is when it could begin */
    emu_sched_heap_push(emu_params_unpaced(emu_state.p) ? clock_now_ns() : r->blocked_due, r);
}

/* ---------- requests ---------- */

void emu_sched_req_maybe_free(struct req *r)
{
    if (r == emu_state.in_timer) return;
    if (r->timers == 0 && (r->state == RS_DONE || r->conn == NULL) && r->state != RS_WAITING &&
        r->state != RS_PREFILL_QUEUED) {
        free(r->text);
        free(r);
    }
}

static void fifo_push(struct req **head, struct req **tail, struct req *r)
{
    r->next = NULL;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
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

static void admit(struct req *r, int64_t t)
{
    emu_state.admitted++;
    r->state = RS_PREFILL_QUEUED;
    fifo_push(&emu_state.pf_head, &emu_state.pf_tail, r);
    if (!emu_state.prefill_busy) start_prefill(t);
}

static void release_slot(int64_t t)
{
    emu_state.admitted--;
    struct req *w;
    /* skip requests whose client left while they waited */
    while ((w = fifo_pop(&emu_state.wait_head, &emu_state.wait_tail))) {
        if (w->conn) {
            admit(w, t);
            return;
        }
        w->state = RS_DONE;
        emu_sched_req_maybe_free(w);
    }
}

static void start_prefill(int64_t t)
{
    struct req *r;
    while ((r = fifo_pop(&emu_state.pf_head, &emu_state.pf_tail))) {
        if (!r->conn) { /* client gone before its prefill: give the slot back */
            r->state = RS_DONE;
            release_slot(t);
            emu_sched_req_maybe_free(r);
            continue;
        }
        int64_t begin = t > emu_state.prefill_free_at ? t : emu_state.prefill_free_at;
        int64_t uncached = r->prompt_tokens - r->cached_tokens;
        emu_state.prefill_free_at = begin + emu_model_prefill_ns(emu_state.p, uncached);
        emu_state.prefill_busy = 1;
        r->state = RS_PREFILLING;
        emu_sched_heap_push(emu_state.prefill_free_at, r);
        return;
    }
    emu_state.prefill_busy = 0;
}

static void finish_request(struct req *r, int64_t t)
{
    if (r->state == RS_DECODING) {
        emu_sched_set_decoding(t, -1);
        release_slot(t);
    }
    r->state = RS_DONE;
    if (r->conn) r->conn->req = NULL;
}

/* Each word is one token in o200k and in DeepSeek V3, and no two of them merge when
 * concatenated, so a tokenizer on a chunk's text gives exactly the tokens sent. */
static const char *const vocab[] = {
    " the",  " model", " token",  " stream", " latency", " of",     " and",   " to",
    " a",    " in",    " kernel", " buffer", " packet",  " clock",  " batch", " cache",
    " is",   " we",    " with",   " for",    " def",     " return", " if",    " else",
    " time", " rate",  " node",   " path",   " x",       " y",      " state", " data",
};
#define VOCAB_N (sizeof vocab / sizeof vocab[0])

static struct wire_req wire_of(const struct req *r)
{
    return (struct wire_req){.id = r->id,
                             .model = r->model,
                             .created = emu_state.started_ns / 1000000000LL,
                             .chat = r->chat};
}

static struct wire_usage usage_of(const struct req *r)
{
    int reasoning = r->generated < r->reasoning_target ? r->generated : r->reasoning_target;
    return (struct wire_usage){r->prompt_tokens, r->generated, r->cached_tokens, reasoning};
}

/* End of a streamed response: finish chunk (with usage in finish-chunk style), usage chunk,
 * [DONE], and the chunked-encoding terminator. */
static int add_timings(const struct req *r, int n)
{
    int64_t first = r->first_token_ns ? r->first_token_ns : r->arrival_ns;
    int64_t last = r->last_token_ns ? r->last_token_ns : first;
    struct wire_timings t = {.prompt_n = r->prompt_tokens - r->cached_tokens,
                             .predicted_n = r->generated,
                             .prompt_ms = (double)(first - r->arrival_ns) / 1e6,
                             .predicted_ms = (double)(last - first) / 1e6};
    int m = emu_wire_add_timings(emu_state.ev, sizeof emu_state.ev, n, &t);
    return m < 0 ? n : m;
}

static void stream_finish(struct req *r, int64_t sched)
{
    struct conn *c = r->conn;
    struct wire_req w = wire_of(r);
    struct wire_usage u = usage_of(r);
    int usage_on_finish = r->include_usage && emu_state.p->usage_style == USAGE_FINISH_CHUNK;
    int n = emu_wire_chunk(emu_state.ev, sizeof emu_state.ev, &w, DELTA_FINISH, NULL, 0, r->finish,
                           usage_on_finish || r->continuous_usage ? &u : NULL, clock_now_ns(),
                           sched, -1);
    int usage_chunk = r->include_usage && !usage_on_finish;
    /* llama.cpp puts its timings in the stream's last chunk */
    if (emu_state.p->timings && !usage_chunk) n = add_timings(r, n);
    if (emu_server_send_event(c, emu_state.ev, (size_t)n)) goto dead;
    if (usage_chunk) {
        n = emu_wire_usage_chunk(emu_state.ev, sizeof emu_state.ev, &w, &u, clock_now_ns());
        if (emu_state.p->timings) n = add_timings(r, n);
        if (emu_server_send_event(c, emu_state.ev, (size_t)n)) goto dead;
    }
    static const char done[] = "data: [DONE]\n\n";
    if (emu_server_send_event(c, done, sizeof done - 1) || emu_server_conn_write(c, "0\r\n\r\n", 5))
        goto dead;
    c->req = NULL;
    emu_server_conn_after_response(c);
    return;
dead:
    emu_server_conn_close(c);
}

static void full_finish(struct req *r)
{
    struct conn *c = r->conn;
    struct wire_req w = wire_of(r);
    struct wire_usage u = usage_of(r);
    size_t cap = r->text_len * 2 + 4096;
    char *body = malloc(cap);
    int n = emu_wire_full_response(body, cap, &w, r->text + r->reasoning_len,
                                   r->text_len - r->reasoning_len, r->text, r->reasoning_len,
                                   r->finish, &u);
    c->req = NULL;
    emu_server_send_response(c, 200, "application/json", body, (size_t)(n < 0 ? 0 : n));
    free(body);
    if (!c->closed && !c->close_after_write) emu_server_conn_after_response(c);
}

static void inject_midstream_fault(struct req *r, int64_t sched)
{
    struct conn *c = r->conn;
    emu_state.faults_injected[r->fault]++;
    if (r->fault == FAULT_RESET) {
        emu_server_conn_reset(c);
    } else if (r->fault == FAULT_MALFORMED) {
        int n = snprintf(emu_state.ev, sizeof emu_state.ev,
                         "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\",\"choices\":"
                         "[{\"index\":0,\"delta\":{\"content\":\n\n",
                         r->id);
        if (emu_server_send_event(c, emu_state.ev, (size_t)n)) emu_server_conn_close(c);
    } else if (r->fault == FAULT_ERROR_EVENT) {
        char body[256];
        int n = emu_wire_error_body(body, sizeof body, 500, "emulated engine failure mid-stream");
        n = snprintf(emu_state.ev, sizeof emu_state.ev, "data: %.*s\n\n", n, body);
        static const char done[] = "data: [DONE]\n\n";
        if (emu_server_send_event(c, emu_state.ev, (size_t)n) ||
            emu_server_send_event(c, done, sizeof done - 1) ||
            emu_server_conn_write(c, "0\r\n\r\n", 5)) {
            emu_server_conn_close(c);
            return;
        }
        finish_request(r, sched);
        emu_server_conn_after_response(c);
    }
    (void)sched;
}

/* One decode step of r is due at `sched`. */
static void decode_step(struct req *r, int64_t sched)
{
    int k = emu_model_draw_tokens(emu_state.p, &r->rng);
    if (k > r->target_tokens - r->generated) k = r->target_tokens - r->generated;
    char text[1024];
    size_t tl = 0, reasoning_part = 0;
    int reasoning_tokens = 0;
    for (int i = 0; i < k; i++) {
        const char *w = vocab[splitmix64(&r->rng) % VOCAB_N];
        size_t wl = strlen(w);
        if (tl + wl >= sizeof text) break;
        memcpy(text + tl, w, wl);
        tl += wl;
        if (r->generated + i < r->reasoning_target) reasoning_part = tl, reasoning_tokens++;
    }
    int first_token = r->generated;
    r->generated += k;
    emu_state.generation_tokens_total += (uint64_t)k;
    if (k > 0) {
        int64_t now = clock_now_ns();
        if (first_token == 0) {
            emu_hist_observe(&emu_state.ttft, (double)(now - r->arrival_ns) / 1e9);
            r->first_token_ns = now;
        } else
            emu_hist_observe(&emu_state.itl, (double)(now - r->last_token_ns) / 1e9);
        r->last_token_ns = now;
    }
    if (r->stream) {
        struct wire_req w = wire_of(r);
        /* a step that straddles the reasoning boundary sends two events, as real servers do */
        struct wire_usage u = usage_of(r);
        if (reasoning_part) {
            u.completion_tokens = first_token + reasoning_tokens;
            int n = emu_wire_chunk(emu_state.ev, sizeof emu_state.ev, &w, DELTA_REASONING, text,
                                   reasoning_part, NULL, r->continuous_usage ? &u : NULL,
                                   clock_now_ns(), sched, reasoning_tokens);
            if (emu_server_send_event(r->conn, emu_state.ev, (size_t)n)) goto dead;
        }
        if (tl > reasoning_part) {
            u.completion_tokens = r->generated;
            int n = emu_wire_chunk(emu_state.ev, sizeof emu_state.ev, &w, DELTA_CONTENT,
                                   text + reasoning_part, tl - reasoning_part, NULL,
                                   r->continuous_usage ? &u : NULL, clock_now_ns(), sched,
                                   k - reasoning_tokens);
            if (emu_server_send_event(r->conn, emu_state.ev, (size_t)n)) goto dead;
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
        if (r->stream)
            stream_finish(r, sched);
        else
            full_finish(r);
        return;
    }
    int64_t next = emu_params_unpaced(emu_state.p)
                       ? clock_now_ns()
                       : sched + emu_model_step_ns(emu_state.p, emu_state.decoding);
    if (r->has_fault && r->fault == FAULT_STALL && first_token <= r->fault_at_token &&
        r->fault_at_token < r->generated) {
        emu_state.faults_injected[FAULT_STALL]++;
        next += (int64_t)(emu_state.p->faults.seconds[FAULT_STALL] * 1e9);
    }
    emu_sched_heap_push(next, r);
    return;
dead:
    emu_server_conn_close(r->conn);
}

static void on_timer_body(struct req *r, int64_t sched);

void emu_sched_on_timer(struct req *r, int64_t sched)
{
    emu_state.in_timer = r;
    on_timer_body(r, sched);
    emu_state.in_timer = NULL;
    emu_sched_req_maybe_free(r);
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
    case RS_DELAYED: emu_sched_begin_request(r, sched); break;
    case RS_PREFILLING:
        emu_sched_set_decoding(sched, +1);
        r->state = RS_DECODING;
        emu_sched_heap_push(sched + emu_model_step_ns(emu_state.p, emu_state.decoding), r);
        start_prefill(sched);
        break;
    case RS_DECODING:
        if (unsent(r->conn) > output_limit()) {
            r->blocked = 1;
            r->blocked_due = sched;
        } else {
            decode_step(r, sched);
        }
        break;
    case RS_HEADER_DRIP: {
        char line[64];
        int n = snprintf(line, sizeof line, "X-Emu-Endless: %llu\r\n",
                         (unsigned long long)(sched / 1000000));
        if (emu_server_conn_write(r->conn, line, (size_t)n))
            emu_server_conn_close(r->conn);
        else
            emu_sched_heap_push(sched + 100000000LL, r);
        break;
    }
    default: break;
    }
}

/* The request has arrived (or its injected first-byte delay has passed). */
void emu_sched_begin_request(struct req *r, int64_t t)
{
    struct conn *c = r->conn;
    if (r->stream) {
        static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                   "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
        if (emu_server_conn_write(c, head, sizeof head - 1)) {
            emu_server_conn_close(c);
            return;
        }
        if (r->chat) {
            struct wire_req w = wire_of(r);
            struct wire_usage u = usage_of(r);
            int n = emu_wire_chunk(emu_state.ev, sizeof emu_state.ev, &w, DELTA_ROLE, NULL, 0, NULL,
                                   r->continuous_usage ? &u : NULL, clock_now_ns(), t, -1);
            if (emu_server_send_event(c, emu_state.ev, (size_t)n)) {
                emu_server_conn_close(c);
                return;
            }
        }
    }
    if (emu_state.admitted < emu_state.p->max_batch) {
        admit(r, t);
    } else {
        r->state = RS_WAITING;
        fifo_push(&emu_state.wait_head, &emu_state.wait_tail, r);
    }
}

int emu_sched_waiting_count(void)
{
    int n = 0;
    for (struct req *w = emu_state.wait_head; w; w = w->next) n++;
    return n;
}
