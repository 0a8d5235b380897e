#include "live_tail.h"

#include "body_key.h"
#include "chunk_facts.h"
#include "log_records.h"
#include "must_alloc.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOKENS_WINDOW_NS 10000000000LL

struct live_req {
    uint64_t req_id; /* 0: empty slot */
    int64_t t_sched;
    int first_seen;
    uint64_t last_off; /* the last data event's body, to read its usage at the end */
    uint32_t last_len;
    int last_keyed;
};

struct ended {
    int64_t t;
    int64_t tokens;
};

struct live_tail {
    int events_fd, bodies_fd;
    uint64_t at; /* file offset of the next unread record */
    int phase;
    int64_t t_phase;
    struct live_req *map;
    size_t cap, used;
    double *ttft;
    size_t nttft, ttft_cap;
    struct ended *ends; /* a ring of recent ends */
    size_t ends_head, nends, ends_cap;
    struct chunk_reader rd;
    char *body;
    size_t body_cap;
    char key[BODY_KEY_MAX], keyed[BODY_KEY_MAX];
};

static size_t slot_of(const struct live_tail *t, uint64_t id)
{
    uint64_t h = id * 0x9e3779b97f4a7c15ULL;
    return (size_t)(h >> 20) & (t->cap - 1);
}

static struct live_req *find(struct live_tail *t, uint64_t id, int add)
{
    if (add && 2 * (t->used + 1) > t->cap) { /* grow at half full */
        struct live_req *old = t->map;
        size_t oldcap = t->cap;
        t->cap = t->cap ? t->cap * 2 : 4096;
        t->map = must_calloc(t->cap, sizeof *t->map, "the live progress");
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].req_id) {
                size_t k = slot_of(t, old[i].req_id);
                while (t->map[k].req_id) k = (k + 1) & (t->cap - 1);
                t->map[k] = old[i];
            }
        free(old);
    }
    if (!t->cap) return NULL;
    for (size_t k = slot_of(t, id);; k = (k + 1) & (t->cap - 1)) {
        if (t->map[k].req_id == id) return &t->map[k];
        if (!t->map[k].req_id) {
            if (!add) return NULL;
            t->used++;
            t->map[k] = (struct live_req){.req_id = id};
            return &t->map[k];
        }
    }
}

struct live_tail *live_tail_open(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/events.bin", dir);
    int ev = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof path, "%s/bodies.bin", dir);
    int bo = open(path, O_RDONLY | O_CLOEXEC);
    uint32_t head[4];
    if (ev < 0 || bo < 0 || pread(ev, head, sizeof head, 0) != sizeof head) {
        if (ev >= 0) close(ev);
        if (bo >= 0) close(bo);
        return NULL;
    }
    struct live_tail *t = calloc(1, sizeof *t);
    t->events_fd = ev;
    t->bodies_fd = bo;
    t->at = 16 + (uint64_t)head[3]; /* "STROBELG", version, header length, header */
    t->phase = -1;
    return t;
}

void live_tail_phase(struct live_tail *t, int phase)
{
    if (!t) return;
    t->phase = phase;
    t->t_phase = 0;
    if (t->map) memset(t->map, 0, t->cap * sizeof *t->map);
    t->used = 0;
    t->nttft = 0;
    t->nends = t->ends_head = 0;
}

/* The body of a record (keyed: put together, body_key.h) and its length, or NULL when it
 * cannot be read yet. */
static const char *body_of(struct live_tail *t, uint64_t off, uint32_t len, int keyed, size_t *got)
{
    if (len + 1 > t->body_cap) {
        t->body_cap = (size_t)len * 2 + 256;
        t->body = must_realloc(t->body, t->body_cap, "the live progress");
    }
    if (pread(t->bodies_fd, t->body, len, (off_t)off) != (ssize_t)len) return NULL;
    *got = len;
    if (!keyed) return t->body;
    struct body_keyed k;
    /* bodies.bin still grows: a key past its end fails the pread */
    if (body_key_parse(t->body, len, UINT64_MAX, &k) ||
        pread(t->bodies_fd, t->key, k.key_len, (off_t)k.key_off) != (ssize_t)k.key_len)
        return NULL;
    *got = body_key_join(&k, t->key, t->keyed);
    return t->keyed;
}

static void push_end(struct live_tail *t, int64_t when, int64_t tokens)
{
    if (t->nends == t->ends_cap) { /* grow, keeping the ring's order */
        size_t cap = t->ends_cap ? t->ends_cap * 2 : 1024;
        struct ended *e = must_calloc(cap, sizeof *e, "the live progress");
        for (size_t i = 0; i < t->nends; i++) e[i] = t->ends[(t->ends_head + i) % t->ends_cap];
        free(t->ends);
        t->ends = e;
        t->ends_cap = cap;
        t->ends_head = 0;
    }
    t->ends[(t->ends_head + t->nends++) % t->ends_cap] = (struct ended){when, tokens};
    /* forget ends older than the window */
    while (t->nends && when - t->ends[t->ends_head].t > TOKENS_WINDOW_NS) {
        t->ends_head = (t->ends_head + 1) % t->ends_cap;
        t->nends--;
    }
}

static void take(struct live_tail *t, const struct log_record *rec)
{
    struct chunk_facts cf;
    if (rec->type == REC_REQUEST_SENT) {
        struct rec_request_sent v = rec_request_sent_decode(rec);
        if (v.phase != t->phase) return;
        struct live_req *r = find(t, v.req_id, 1);
        r->t_sched = v.t_sched;
        if (!t->t_phase || v.t_sched < t->t_phase) t->t_phase = v.t_sched;
    } else if (rec->type == REC_EVENT) {
        struct rec_event v = rec_event_decode(rec);
        struct live_req *r = find(t, v.req_id, 0);
        if (!r || rec->len == 0) return;
        size_t len;
        if (rec->len == 6 && !v.body_keyed) { /* maybe "[DONE]": the usage is in the one before */
            const char *d = body_of(t, rec->off, rec->len, 0, &len);
            if (!d || !memcmp(d, "[DONE]", 6)) return;
        }
        r->last_off = rec->off;
        r->last_len = rec->len;
        r->last_keyed = v.body_keyed;
        if (r->first_seen) return;
        const char *data = body_of(t, rec->off, rec->len, v.body_keyed, &len);
        if (!data) return;
        chunk_facts_read(data, len, 0, &t->rd, &cf);
        if (cf.visible_bytes) { /* a token, as facts.c counts one */
            r->first_seen = 1;
            if (t->nttft == t->ttft_cap) {
                t->ttft_cap = t->ttft_cap ? t->ttft_cap * 2 : 1024;
                t->ttft = must_realloc(t->ttft, t->ttft_cap * sizeof *t->ttft, "the live progress");
            }
            t->ttft[t->nttft++] = (double)(v.t_stamp - r->t_sched) / 1e9;
        }
    } else if (rec->type == REC_REQUEST_END) {
        struct rec_request_end v = rec_request_end_decode(rec);
        struct live_req *r = find(t, v.req_id, 0);
        if (!r || !r->last_len) return;
        size_t len;
        const char *data = body_of(t, r->last_off, r->last_len, r->last_keyed, &len);
        if (!data) return;
        chunk_facts_read(data, len, 0, &t->rd, &cf);
        if (cf.has_usage) push_end(t, v.t_end, cf.completion_tokens);
    }
}

void live_tail_poll(struct live_tail *t)
{
    if (!t) return;
    struct log_record recs[1024];
    for (;;) {
        ssize_t n = pread(t->events_fd, recs, sizeof recs, (off_t)t->at);
        if (n < (ssize_t)sizeof *recs) return;
        size_t whole = (size_t)n / sizeof *recs; /* a torn last record waits for the next look */
        for (size_t i = 0; i < whole; i++) take(t, &recs[i]);
        t->at += whole * sizeof *recs;
        if (whole < sizeof recs / sizeof *recs) return;
    }
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double live_tail_ttft_p50(struct live_tail *t)
{
    if (!t || !t->nttft) return -1;
    qsort(t->ttft, t->nttft, sizeof *t->ttft, by_value);
    return t->ttft[t->nttft / 2];
}

double live_tail_tokens_per_s(struct live_tail *t, int64_t now_ns)
{
    if (!t || !t->nends) return -1;
    int64_t from = now_ns - TOKENS_WINDOW_NS;
    if (t->t_phase > from) from = t->t_phase;
    int64_t tokens = 0;
    for (size_t i = 0; i < t->nends; i++) {
        const struct ended *e = &t->ends[(t->ends_head + i) % t->ends_cap];
        if (e->t > from) tokens += e->tokens;
    }
    return now_ns > from ? (double)tokens / ((double)(now_ns - from) / 1e9) : -1;
}

void live_tail_close(struct live_tail *t)
{
    if (!t) return;
    close(t->events_fd);
    close(t->bodies_fd);
    free(t->map);
    free(t->ttft);
    free(t->ends);
    free(t->body);
    chunk_reader_free(&t->rd);
    free(t);
}
