/* Prompt calibration of `strobe slt`: filler words chosen so that each request carries
 * --input-tokens prompt tokens by the server's own count (usage.prompt_tokens), from probes
 * that ask for one output token. A probe that fails in a way worth retrying is tried again
 * after a pause, up to 5 attempts within the request timeout in all; one that times out
 * (in all, without a byte for the idle timeout, or connecting) is not. */
#ifndef STROBE_SLT_CALIBRATE_H
#define STROBE_SLT_CALIBRATE_H
#include "endpoint.h"
#include "oneshot.h"
#include "tokenizer.h"
#include "transport.h"

#include <stdint.h>

/* The server and what a probe sends it. */
struct calibration_target {
    const struct endpoint *ep;
    const struct transport_ops *ops;
    struct transport_ctx *tctx;
    const char *api_key, *model, *extra_body;
    int chat; /* /v1/chat/completions, else /v1/completions */
    uint64_t seed;
    struct oneshot_limits limits; /* the run's request, idle and connect timeouts */
    int input_tokens;             /* the prompt tokens each request should carry */
};

struct calibration {
    int words;
    int64_t expected; /* prompt tokens each request should carry, by the server's count */
    int by_tokenizer; /* the exact method ran */
    int64_t content_tokens, overhead, confirmed; /* tokenizer's prompt, template, server's count */
};

/* Linear: two probes give the slope and the fixed overhead; a third checks the fit. 0, or -1
 * with one sentence in err. */
int calibrate_linear(const struct calibration_target *c, struct calibration *out, char *err,
                     size_t errlen);
/* Exact, with the model's tokenizer t: one probe gives the template's overhead, a last one
 * confirms (confirmed != expected: the server counts otherwise). 0, or -1 with err. */
int calibrate_exact(const struct calibration_target *c, struct tokenizer *t,
                    struct calibration *out, char *err, size_t errlen);

#endif
