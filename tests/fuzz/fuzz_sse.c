/* SSE framing: any bytes, split at any point, under a limit the input picks (a few bytes to
 * 8 MiB): an event's data never passes the limit, a cut event holds exactly the limit's
 * worth, and the grown buffer never passes it either. */
#include "sse.h"

#include <stdint.h>
#include <stdlib.h>

static size_t limit;

static int on_event(void *arg, const char *data, size_t len, int truncated, int is_error)
{
    (void)arg;
    (void)is_error;
    if (!data || len > limit || (truncated && len != limit)) abort();
    volatile unsigned char sum = 0; /* every byte read: ASan sees a short buffer */
    for (size_t i = 0; i < len; i++) sum ^= (unsigned char)data[i];
    (void)sum;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the last byte picks the limit: mostly small (cuts happen), 0 the default 8 MiB */
    limit = size && data[size - 1] ? (size_t)data[size - 1] * 29 : SSE_DEFAULT_MAX_EVENT;
    struct sse_framer f;
    sse_init(&f, limit);
    size_t cut = size ? data[0] % (size + 1) : 0;
    size_t cut2 = cut + (size > 1 ? data[1] % (size - cut + 1) : 0);
    sse_feed(&f, (const char *)data, cut, on_event, NULL);
    sse_feed(&f, (const char *)data + cut, cut2 - cut, on_event, NULL);
    sse_feed(&f, (const char *)data + cut2, size - cut2, on_event, NULL);
    if (f.data_cap > limit) abort();
    /* a second stream on the kept buffer */
    sse_reset(&f);
    sse_feed(&f, (const char *)data, size, on_event, NULL);
    if (f.data_cap > limit) abort();
    sse_free(&f);
    return 0;
}
