/* SSE framing: any bytes, split at any point, under a limit the input picks (a few bytes to
 * 8 MiB): an event's data never passes the limit, a cut event holds exactly the limit's
 * worth, and the grown buffer never passes it either; read whole and split, the events are
 * the same (their bytes, flags and ends: a whole read takes the framer's one-step and no-copy
 * paths, a split one its byte-exact path). */
#include "sse.h"

#include <stdint.h>
#include <stdlib.h>

static size_t limit;

/* What a reading saw: a hash of every event in order, and where in the input each ended. */
struct seen {
    struct sse_framer *f;
    size_t base; /* the input offset of the buffer being fed */
    uint64_t hash;
};

static void mix(struct seen *s, uint64_t v) { s->hash = (s->hash ^ v) * 1099511628211u; }

static int on_event(void *arg, const char *data, size_t len, int truncated, int is_error)
{
    struct seen *s = arg;
    if (!data || len > limit || (truncated && len != limit)) abort();
    mix(s, len);
    mix(s, (uint64_t)truncated << 1 | (uint64_t)is_error);
    mix(s, s->base + s->f->end_pos);
    for (size_t i = 0; i < len; i++) mix(s, (unsigned char)data[i]); /* ASan: every byte */
    return 0;
}

static void feed(struct seen *s, const uint8_t *data, size_t from, size_t to)
{
    s->base = from;
    sse_feed(s->f, (const char *)data + from, to - from, on_event, s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the last byte picks the limit: mostly small (cuts happen), 0 the default 8 MiB */
    limit = size && data[size - 1] ? (size_t)data[size - 1] * 29 : SSE_DEFAULT_MAX_EVENT;
    struct sse_framer f;
    sse_init(&f, limit);
    size_t cut = size ? data[0] % (size + 1) : 0;
    size_t cut2 = cut + (size > 1 ? data[1] % (size - cut + 1) : 0);
    struct seen split = {&f, 0, 14695981039346656037u}, whole = split;
    feed(&split, data, 0, cut);
    feed(&split, data, cut, cut2);
    feed(&split, data, cut2, size);
    if (f.data_cap > limit) abort();
    /* a second stream on the kept buffer, whole */
    sse_reset(&f);
    feed(&whole, data, 0, size);
    if (f.data_cap > limit) abort();
    if (whole.hash != split.hash) abort(); /* the cuts changed what was read */
    sse_free(&f);
    return 0;
}
