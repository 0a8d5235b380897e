/* One blocking request outside any run (calibration, probes): connect, send, read the whole
 * response through the same transport and the same response parsing as the workers
 * (dataplane/http_response.h: status check, SSE framing, not-SSE bodies, error bodies), then
 * pull usage out of it. Control-plane only; never on the hot path. */
#ifndef STROBE_ONESHOT_H
#define STROBE_ONESHOT_H
#include "transport.h"
#include <signal.h>
#include <stdint.h>

struct oneshot_result {
    int status;
    int64_t prompt_tokens, completion_tokens; /* -1 when the response had no usage */
    char error[256];                          /* empty on success */
};

/* A flag that, once non-zero (a signal handler sets it), ends a request in progress with
 * "interrupted"; NULL (the default) for none. */
void oneshot_set_cancel(const volatile sig_atomic_t *flag);

int oneshot_request(const struct transport_ops *ops, struct transport_ctx *tctx,
                    const struct endpoint *ep, const char *request, size_t len, double timeout_s,
                    struct oneshot_result *out);

#endif
