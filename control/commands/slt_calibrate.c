/* Prompt calibration of `strobe slt` (slt_calibrate.h). */
#include "slt_calibrate.h"

#include "clock.h"
#include "oneshot.h"
#include "request_template.h"
#include "must_alloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One calibration probe: the server's usage.prompt_tokens for a prompt of `words` filler
 * words, asking for one output token. A busy or flaky server may refuse a probe: a failure
 * worth retrying (oneshot_worth_retrying) is tried again after a pause (oneshot_retry_pause),
 * up to 5 attempts within --request-timeout-s in all. A silent server is given one timeout, not
 * five: the next attempt would only wait as long again. The run's --idle-timeout-s applies as
 * it does to the run's requests: a server silent that long has failed the probe. */
static int probe(const struct calibration_target *c, int words, int index, int64_t *tokens,
                 char *err, size_t errlen)
{
    const struct endpoint *ep = c->ep;
    struct template_params tp = {ep,
                                 c->model,
                                 c->chat,
                                 words,
                                 1,
                                 0,
                                 c->extra_body,
                                 c->api_key,
                                 c->seed + 999 + (uint64_t)index};
    struct request_template t;
    if (template_build(&t, &tp, err, errlen)) return -1;
    char *req = must_malloc(t.len, "a calibration request");
    char note[512];
    snprintf(note, sizeof note,
             "strobe slt: waiting for %s to answer calibration request %d (one output token); "
             "it is given up to %g s (--request-timeout-s), %g s without a byte "
             "(--idle-timeout-s)",
             ep->host_header, index + 1, c->limits.request_s, c->limits.idle_s);
    struct oneshot_result r;
    int rc = -1, attempts = 0, noted = 0;
    int64_t start = clock_now_ns();
    struct oneshot_limits limits = oneshot_attempts_begin(c->limits);
    do {
        size_t len = template_fill(&t, 0, (uint64_t)(index * 8 + attempts) + 1, req, t.len);
        rc = oneshot_request_noted(c->ops, c->tctx, ep, req, len, &limits, noted ? NULL : note, &r);
        noted |= r.noted; /* said once, by whichever attempt waited */
        if (!rc && r.prompt_tokens < 0) rc = -1;
        attempts++;
    } while (rc && attempts < 5 && oneshot_worth_retrying(&r) &&
             !oneshot_retry_pause(attempts, &limits));
    free(req);
    template_free(&t);
    if (rc) {
        char what[400];
        oneshot_describe(&r, "no usage.prompt_tokens in the answer", attempts, start, what,
                         sizeof what);
        snprintf(err, errlen,
                 "calibration request to %s failed: %s; check --url, --model and "
                 "STROBE_API_KEY",
                 ep->host_header, what);
        return -1;
    }
    *tokens = r.prompt_tokens;
    return 0;
}

/* Linear calibration: two probes give the slope and the fixed overhead (chat template,
 * nonce) of usage.prompt_tokens over filler words; a third checks the fit and corrects once. */
int calibrate_linear(const struct calibration_target *c, struct calibration *out, char *err,
                     size_t errlen)
{
    int w[3] = {c->input_tokens / 4 + 8, c->input_tokens / 2 + 16, 0};
    int64_t tok[3];
    for (int i = 0; i < 3; i++) {
        if (i == 2) {
            double slope = (double)(tok[1] - tok[0]) / (w[1] - w[0]);
            if (slope <= 0) {
                snprintf(err, errlen,
                         "prompt calibration failed: the server's prompt_tokens did "
                         "not grow with the prompt (%lld then %lld)",
                         (long long)tok[0], (long long)tok[1]);
                return -1;
            }
            double overhead = (double)tok[0] - slope * w[0];
            w[2] = (int)lround((c->input_tokens - overhead) / slope);
            if (w[2] < 0) w[2] = 0;
        }
        if (probe(c, w[i], i, &tok[i], err, errlen)) return -1;
    }
    double slope = (double)(tok[1] - tok[0]) / (w[1] - w[0]);
    int corrected = w[2] + (int)lround((c->input_tokens - tok[2]) / slope);
    out->words = corrected < 0 ? 0 : corrected;
    /* from the words used: with none (a target below the template's own tokens) it is the
     * third probe's measured count, not the line's value below it */
    out->expected = tok[2] + (int64_t)lround((out->words - w[2]) * slope);
    return 0;
}

static int64_t prompt_tokens_by(struct tokenizer *t, int words)
{
    char *p = template_prompt_sample(words);
    int64_t n = (int64_t)tokenizer_count(t, p, strlen(p));
    free(p);
    return n;
}

/* Exact calibration with the model's tokenizer: one probe gives the server's overhead
 * (prompt_tokens minus the tokenizer's count of the prompt text: the chat template); the
 * word count is then chosen so that the tokenizer's count plus that overhead is the target
 * exactly, and a last probe asks the server to confirm. A server that disagrees (another
 * tokenizer, another template) shows as confirmed != expected in the header. */
int calibrate_exact(const struct calibration_target *c, struct tokenizer *t,
                    struct calibration *out, char *err, size_t errlen)
{
    int w0 = c->input_tokens / 2 + 16;
    int64_t server0;
    if (probe(c, w0, 0, &server0, err, errlen)) return -1;
    out->overhead = server0 - prompt_tokens_by(t, w0);
    int64_t goal = c->input_tokens - out->overhead;
    int w = w0 + (int)(goal - prompt_tokens_by(t, w0));
    if (w < 0) w = 0;
    /* words are about one token each: walk to the exact count (or the nearest below) */
    for (int step = 0; step < 64; step++) {
        int64_t n = prompt_tokens_by(t, w);
        if (n == goal) break;
        if (n < goal) {
            if (prompt_tokens_by(t, w + 1) > goal) break;
            w++;
        } else {
            if (w == 0) break;
            w--;
        }
    }
    out->words = w;
    out->content_tokens = prompt_tokens_by(t, w);
    out->expected = out->content_tokens + out->overhead;
    out->by_tokenizer = 1;
    return probe(c, w, 1, &out->confirmed, err, errlen);
}
