/* The token store keeps every token event exactly (analysis/facts.h, struct tok_event): one
 * request's events read with request_take_event and closed with request_finish, with visible
 * bytes, per-chunk usage counts (rising and falling) and gaps at, below and above what an
 * event's 8 bytes hold (16,383 bytes, int16 counts, int32 nanoseconds), and between them
 * ordinary ones, some with the emulator's own count; tok_time, tok_k and tok_bytes must give
 * back each event's own values, its two emulator flags must be right beside its bytes, and
 * only the events that do not fit may go to the wide list. */
#include "check.h"
#include "clock.h"
#include "request_facts.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct event {
    size_t bytes;   /* content bytes */
    int64_t gap_ns; /* since the previous event */
    int64_t k;      /* completion tokens this chunk adds (usage per chunk; may fall) */
    int emu;        /* the emulator's own count (x_emu_tokens), -1: none */
};

static const struct event events[] = {
    {1, 0, 1, -1},
    {16382, 1000000, 1, 1},
    {16382, 1000, 1, 2},
    {16383, 1000000, 1, 1},
    {20000, 2000, 1, -1},
    {5, 2147483647, 1, -1},
    {5, 2147483648LL, 1, -1},
    {7, 3000000000LL, 32767, -1},
    {7, 1000, 32768, -1},
    {9, 1000, 40000, -1},
    {3, 1, 2, -1},
    {70000, 5000, 1, 3},
    {4, 4, 1, -1},
    {6, 10, -32766, -1},
    {6, 10, -32767, -1},
    {6, 10, -40000, 7},
    {8, 10, 0, -1},
};
#define NEVENTS (sizeof events / sizeof events[0])

/* A chat chunk with `bytes` of content, the stream's cumulative completion tokens and the
 * emulator's own count when emu >= 0. */
static char *chunk(size_t bytes, int64_t cumulative, int emu, size_t *len)
{
    char *s = malloc(bytes + 512);
    int head = sprintf(s, "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                          "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"");
    memset(s + head, 'a', bytes);
    *len = (size_t)head + bytes;
    *len += (size_t)sprintf(s + *len,
                            "\"},\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":5,"
                            "\"completion_tokens\":%lld,\"total_tokens\":%lld}",
                            (long long)cumulative, (long long)cumulative + 5);
    *len += (size_t)(emu >= 0 ? sprintf(s + *len, ",\"x_emu_tokens\":%d}", emu)
                              : sprintf(s + *len, "}"));
    return s;
}

int main(void)
{
    struct run_facts f = {0};
    struct tok_store store = {0};
    struct tok_sink sink = {.store = &store, .f = &f};
    struct req_facts r = {.req_id = 7, .status = 200, .finish_reason = ""};
    struct pending p = {0};
    struct chunk_reader rd = {0};
    uint64_t sources[5] = {0};
    int64_t t = 1764400000LL * 1000000000LL, stamps[NEVENTS], cumulative = 0;
    for (size_t i = 0; i < NEVENTS; i++) {
        t += events[i].gap_ns;
        stamps[i] = t;
        cumulative += events[i].k;
        size_t len;
        char *data = chunk(events[i].bytes, cumulative, events[i].emu, &len);
        struct rec_event ev = {.ts_source = TS_KERNEL,
                               .req_id = 7,
                               .t_stamp = t,
                               .t_read = t + 1000,
                               .index = (int64_t)i,
                               .stream_offset = -1};
        request_take_event(&r, &p, &ev, data, len, sources, NULL, &rd);
        free(data);
    }
    struct rec_event done = {
        .ts_source = TS_KERNEL, .req_id = 7, .t_stamp = t + 1, .index = (int64_t)NEVENTS};
    request_take_event(&r, &p, &done, "[DONE]", 6, sources, NULL, &rd);
    r.t_done = t + 2;
    request_finish(&sink, &r, &p, 0);
    CHECK(!r.failed, "the request stands (%s)", r.reason);
    CHECK(r.count_rule == COUNT_SERVER, "every chunk's usage counts its tokens (rule %d)",
          (int)r.count_rule);
    CHECK(store.len == NEVENTS && r.tok_count == NEVENTS, "%zu events stored, %zu written",
          store.len, NEVENTS);
    size_t should_be_wide = 0;
    int64_t prev = r.t_first_token;
    for (size_t i = 0; i < NEVENTS && i < store.len; i++) {
        int64_t at = tok_time(&store, i, prev);
        prev = at;
        double k = tok_k(&store, i), bytes = tok_bytes(&store, i);
        CHECK(at == stamps[i], "event %zu's stamp: %lld, not %lld", i, (long long)at,
              (long long)stamps[i]);
        CHECK(k == (double)events[i].k, "event %zu's tokens: %g, not %lld", i, k,
              (long long)events[i].k);
        CHECK(bytes == (double)events[i].bytes, "event %zu's bytes: %g, not %zu", i, bytes,
              events[i].bytes);
        int64_t gap = i ? events[i].gap_ns : 0;
        should_be_wide += events[i].bytes >= 16383 || events[i].k > 32767 || events[i].k < -32766 ||
                          gap > 2147483647;
        unsigned flags = store.ev[i].bytes_flags & (TOK_EMU_COMPARED | TOK_EMU_DIFFERS);
        unsigned want =
            events[i].emu < 0
                ? 0
                : TOK_EMU_COMPARED | (events[i].emu != events[i].k ? TOK_EMU_DIFFERS : 0);
        CHECK(flags == want, "event %zu's emulator flags: %#x, not %#x", i, flags, want);
    }
    CHECK(store.nwide == should_be_wide, "%zu events in the wide list, %zu do not fit 8 bytes",
          store.nwide, should_be_wide);
    CHECK(sizeof(struct tok_event) == 8, "a token event takes %zu bytes, 8 meant",
          sizeof(struct tok_event));
    pending_pool_free(&sink.pool);
    chunk_reader_free(&rd);
    free(store.ev);
    free(store.wide);
    return check_done("test_tok_store");
}
