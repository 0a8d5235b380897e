#include "agent_source.h"

#include "request_template.h"
#include "rng.h"
#include "must_alloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "d d … d\nPerformance replay cache namespace. Ignore the digits above.\n\n", JSON-escaped */
#define NONCE_DIGITS 32
static const char nonce_tail[] =
    "\\nPerformance replay cache namespace. Ignore the digits above.\\n\\n";
#define NONCE_JSON_LEN (NONCE_DIGITS * 2 - 1 + sizeof nonce_tail - 1)
#define TAIL_MAX       8192
_Static_assert(TAIL_MAX >= TEMPLATE_TAIL_FIELDS_MAX + 128, "the request tail fits");

struct agent {
    int id; /* global agent number in the iteration */
    size_t task, turn;
    int64_t ready_at;
    uint64_t rng;
    char *buf;       /* "{\"messages\":[" + messages so far, then the tail */
    size_t len, cap; /* len: up to the last message (the tail follows) */
    uint32_t built_base, built_msgs;
    int fresh; /* a new trajectory: rebuild from scratch */
    _Atomic uint64_t completed;
    uint64_t completed_mark; /* control's zero for the window (control thread only) */
    uint64_t trajectories;   /* started, for the nonce */
    int started;             /* has sent its first request in this iteration */
};

struct agent_set {
    struct agent_params p;
    int worker, phase, n;
    struct agent *agents;
    int *heap; /* agent indices by ready_at; agents in flight are not in it */
    int heap_len;
    struct request_source src;
    _Atomic int started; /* agents that have sent their first request (worker writes) */
};

static void heap_push(struct agent_set *s, int i)
{
    int k = s->heap_len++;
    while (k > 0) {
        int parent = (k - 1) / 2;
        if (s->agents[s->heap[parent]].ready_at <= s->agents[i].ready_at) break;
        s->heap[k] = s->heap[parent];
        k = parent;
    }
    s->heap[k] = i;
}

static int heap_pop(struct agent_set *s)
{
    int top = s->heap[0], last = s->heap[--s->heap_len], k = 0;
    for (;;) {
        int c = 2 * k + 1;
        if (c >= s->heap_len) break;
        if (c + 1 < s->heap_len &&
            s->agents[s->heap[c + 1]].ready_at < s->agents[s->heap[c]].ready_at)
            c++;
        if (s->agents[s->heap[c]].ready_at >= s->agents[last].ready_at) break;
        s->heap[k] = s->heap[c];
        k = c;
    }
    if (s->heap_len) s->heap[k] = last;
    return top;
}

static void take_next_task(struct agent_set *s, struct agent *a)
{
    for (size_t tries = 0; tries <= s->p.norder; tries++) {
        uint64_t pos = atomic_fetch_add_explicit(s->p.cursor, 1, memory_order_relaxed);
        a->task = s->p.order[pos % s->p.norder];
        if (s->p.replay->tasks[a->task].nturns) break; /* truncated to nothing: skip it */
    }
    a->turn = 0;
    a->fresh = 1;
    a->trajectories++;
}

static void reserve(struct agent *a, size_t need)
{
    if (need <= a->cap) return;
    a->cap = need + need / 4;
    a->buf = must_realloc(a->buf, a->cap, "an agent's request");
}

static void append(struct agent *a, const char *s, size_t n)
{
    reserve(a, a->len + n + TAIL_MAX);
    memcpy(a->buf + a->len, s, n);
    a->len += n;
}

/* What a turn asks for. The exact policy asks for the recorded output length with ignore_eos;
 * a turn recorded with 0 output tokens (strobe import writes one for an empty answer) asks
 * for 1, the least a server accepts (OpenAI's API and vLLM refuse max_tokens 0). The natural
 * policy, and a turn with no recorded length, let the model stop (16384 at most). */
static int turn_max_tokens(enum output_policy policy, const struct replay_turn *turn,
                           int *ignore_eos)
{
    *ignore_eos = policy == POLICY_EXACT && turn->target_output_tokens >= 0;
    if (!*ignore_eos) return 16384;
    return turn->target_output_tokens > 0 ? turn->target_output_tokens : 1;
}

/* Brings a->buf up to this turn's messages; returns the body length with the tail. */
static size_t build_body(struct agent_set *s, struct agent *a, const struct replay_task *t,
                         const struct replay_turn *turn)
{
    if (a->fresh || turn->rebuild || turn->base != a->built_base || turn->nmsgs < a->built_msgs) {
        reserve(a, t->max_body_bytes + NONCE_JSON_LEN + TAIL_MAX + 64);
        a->len = 0;
        append(a, "{\"messages\":[", 13);
        const char *m0 = t->msgs[turn->base];
        long at = t->nonce_at[turn->base];
        if (at >= 0) {
            append(a, m0, (size_t)at);
            /* the nonce: new per trajectory, per agent, per iteration */
            uint64_t r = a->rng ^ (a->trajectories * 0x9e3779b97f4a7c15ULL);
            char digits[NONCE_DIGITS * 2];
            uint64_t x = 0;
            for (int i = 0; i < NONCE_DIGITS; i++) {
                if (i % 16 == 0) x = splitmix64(&r);
                digits[2 * i] = (char)('0' + x % 10);
                x /= 10;
                digits[2 * i + 1] = ' ';
            }
            append(a, digits, NONCE_DIGITS * 2 - 1);
            append(a, nonce_tail, sizeof nonce_tail - 1);
            append(a, m0 + at, t->msg_len[turn->base] - (size_t)at);
        } else {
            append(a, m0, t->msg_len[turn->base]);
        }
        a->built_base = turn->base;
        a->built_msgs = 1;
        a->fresh = 0;
    }
    for (uint32_t i = a->built_msgs; i < turn->nmsgs; i++) {
        append(a, ",", 1);
        append(a, t->msgs[turn->base + i], t->msg_len[turn->base + i]);
    }
    a->built_msgs = turn->nmsgs;
    /* the tail, written after the messages and overwritten next turn */
    int ignore_eos;
    int max_tokens = turn_max_tokens(s->p.policy, turn, &ignore_eos);
    size_t tools_len = turn->tools >= 0 ? t->tools_len[turn->tools] : 0;
    reserve(a, a->len + tools_len + TAIL_MAX);
    char *tail = a->buf + a->len;
    /* tail_fields (model, stream, stream_options, extras) is at most
     * TEMPLATE_TAIL_FIELDS_MAX bytes, so the tail fits TAIL_MAX */
    int n = snprintf(tail, TAIL_MAX, "],\"max_tokens\":%d%s%s", max_tokens,
                     ignore_eos ? ",\"ignore_eos\":true" : "", s->p.tail_fields);
    size_t tl = (size_t)n;
    if (tools_len) {
        memcpy(tail + tl, ",\"tools\":", 9);
        tl += 9;
        memcpy(tail + tl, t->tools[turn->tools], tools_len);
        tl += tools_len;
    }
    tail[tl++] = '}';
    return a->len + tl;
}

static int next(void *arg, int64_t now, char *head, size_t head_cap, struct request_spec *spec,
                int64_t *next_due)
{
    struct agent_set *s = arg;
    if (!s->heap_len) {
        *next_due = INT64_MAX;
        return 0;
    }
    struct agent *a = &s->agents[s->heap[0]];
    if (a->ready_at > now) {
        *next_due = a->ready_at;
        return 0;
    }
    heap_pop(s);
    if (!a->started) {
        a->started = 1; /* only this worker writes the count: no locked increment */
        atomic_store_explicit(&s->started,
                              atomic_load_explicit(&s->started, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    }
    const struct replay_task *t = &s->p.replay->tasks[a->task];
    const struct replay_turn *turn = &t->turns[a->turn];
    size_t body_len = build_body(s, a, t, turn);
    int hl = snprintf(
        head, head_cap,
        "POST %s/v1/chat/completions HTTP/1.1\r\nHost: %s\r\nUser-Agent: strobe/" STROBE_VERSION
        "\r\n"
        "Accept: text/event-stream\r\nAccept-Encoding: identity\r\n"
        "Content-Type: application/json\r\n%s%s%s"
        "Content-Length: %zu\r\n" REQUEST_ID_HEADER "%0*d\r\n\r\n",
        s->p.ep->base_path, s->p.ep->host_header, s->p.api_key ? "Authorization: Bearer " : "",
        s->p.api_key ? s->p.api_key : "", s->p.api_key ? "\r\n" : "", body_len, REQUEST_ID_DIGITS,
        0);
    spec->body = a->buf;
    spec->body_len = body_len;
    spec->head_len = (size_t)hl;
    /* the worker writes the id there once it has numbered the request */
    spec->request_id_at = (size_t)hl - 4 - REQUEST_ID_DIGITS;
    spec->tag = AGENT_TAG(a - s->agents, a->task, a->turn);
    spec->t_sched = a->ready_at;
    return 1;
}

/* Tool time after a turn: the override, else the recorded delay, else a log-normal draw with
 * median 1 s clipped to [0.05, 5] s (methodology.md §6.14); capped by --max-tool-time. */
static double tool_delay_s(struct agent_set *s, struct agent *a, const struct replay_turn *turn)
{
    double d;
    if (s->p.tool_time_s >= 0) {
        d = s->p.tool_time_s;
    } else if (turn->tool_delay_ms >= 0) {
        d = turn->tool_delay_ms / 1000.0;
    } else {
        double u1 = ((double)(splitmix64(&a->rng) >> 11) + 0.5) * 0x1.0p-53;
        double u2 = ((double)(splitmix64(&a->rng) >> 11) + 0.5) * 0x1.0p-53;
        double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
        d = exp(0.7 * z); /* median 1 s */
        d = d < 0.05 ? 0.05 : d > 5 ? 5 : d;
    }
    return d > s->p.max_tool_time_s ? s->p.max_tool_time_s : d;
}

static void ended(void *arg, uint64_t tag, int ok, int64_t t_end)
{
    (void)ok; /* the history is recorded: a failed turn does not change what comes next */
    struct agent_set *s = arg;
    struct agent *a = &s->agents[AGENT_TAG_AGENT(tag)];
    const struct replay_task *t = &s->p.replay->tasks[a->task];
    double delay = tool_delay_s(s, a, &t->turns[a->turn]);
    if (++a->turn >= t->nturns) {
        atomic_fetch_add_explicit(&a->completed, 1, memory_order_relaxed);
        struct log_record rec =
            rec_trajectory_done_encode(&(struct rec_trajectory_done){.worker = (uint16_t)s->worker,
                                                                     .t = t_end,
                                                                     .phase = s->phase,
                                                                     .agent = a->id,
                                                                     .task = (int64_t)a->task});
        eventlog_put(s->p.log, s->worker, &rec, NULL, 0);
        take_next_task(s, a);
        delay = 0; /* the next task starts at once */
    }
    a->ready_at = t_end + (int64_t)(delay * 1e9);
    heap_push(s, (int)(a - s->agents));
}

struct agent_set *agent_set_new(const struct agent_params *p, int worker, int phase, int first,
                                int count, int total, int64_t t0, double stagger_s)
{
    struct agent_set *s = must_calloc(1, sizeof *s, "a worker's agents");
    s->p = *p;
    s->worker = worker;
    s->phase = phase;
    s->n = count;
    s->agents = must_calloc((size_t)count, sizeof *s->agents, "a worker's agents");
    s->heap = must_calloc((size_t)count, sizeof *s->heap, "a worker's agents");
    for (int i = 0; i < count; i++) {
        struct agent *a = &s->agents[i];
        a->id = first + i;
        a->rng =
            p->seed ^ ((uint64_t)(phase + 1) << 32) ^ (uint64_t)(first + i) * 0x2545f4914f6cdd1dULL;
        take_next_task(s, a);
        a->ready_at = t0 + (int64_t)(stagger_s * 1e9 * (first + i) / (total ? total : 1));
        heap_push(s, i);
    }
    s->src = (struct request_source){next, ended, s};
    return s;
}

struct request_source *agent_set_source(struct agent_set *s) { return &s->src; }

void agent_set_mark(struct agent_set *s)
{
    for (int i = 0; i < s->n; i++)
        s->agents[i].completed_mark =
            atomic_load_explicit(&s->agents[i].completed, memory_order_relaxed);
}

void agent_set_progress(struct agent_set *s, uint64_t *completed, uint64_t *fewest)
{
    uint64_t sum = 0, least = UINT64_MAX;
    for (int i = 0; i < s->n; i++) {
        uint64_t c = atomic_load_explicit(&s->agents[i].completed, memory_order_relaxed) -
                     s->agents[i].completed_mark;
        sum += c;
        if (c < least) least = c;
    }
    *completed = sum;
    *fewest = s->n ? least : UINT64_MAX;
}

int agent_set_started(struct agent_set *s)
{
    return atomic_load_explicit(&s->started, memory_order_relaxed);
}

size_t agent_set_bytes(struct agent_set *s)
{
    size_t b = sizeof *s + (size_t)s->n * (sizeof *s->agents + sizeof *s->heap);
    for (int i = 0; i < s->n; i++) b += s->agents[i].cap;
    return b;
}

void agent_set_free(struct agent_set *s)
{
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->agents[i].buf);
    free(s->agents);
    free(s->heap);
    free(s);
}
