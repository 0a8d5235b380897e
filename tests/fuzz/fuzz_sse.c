/* SSE framing: any bytes, split at any point; every event's data fits the framer's buffer. */
#include "sse.h"

#include <stdint.h>
#include <stdlib.h>

static int on_event(void *arg, const char *data, size_t len, int truncated, int is_error)
{
    (void)arg;
    (void)data;
    (void)is_error;
    if (len > SSE_MAX_EVENT || (truncated && len != SSE_MAX_EVENT)) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sse_framer f;
    sse_init(&f);
    size_t cut = size ? data[0] % (size + 1) : 0;
    sse_feed(&f, (const char *)data, cut, on_event, NULL);
    sse_feed(&f, (const char *)data + cut, size - cut, on_event, NULL);
    return 0;
}
