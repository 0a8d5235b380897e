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
    int timed_out;   /* one of the three oneshot_limits ended it (error names which) */
    int interrupted; /* the cancel flag ended it */
    int noted;       /* oneshot_request_noted printed its note */
    char error[256]; /* empty on success */
};

/* A flag that, once non-zero (a signal handler sets it), ends a request in progress with
 * "interrupted"; NULL (the default) for none. */
void oneshot_set_cancel(const volatile sig_atomic_t *flag);

/* How long a request may take, as the workers apply the run's flags: in all
 * (--request-timeout-s), without a byte from the server since it began or since the last
 * byte (--idle-timeout-s), and to connect (--connect-timeout-s). Whichever ends it says so in
 * error, naming its flag, and sets timed_out. */
struct oneshot_limits {
    double request_s, idle_s, connect_s;
    int64_t until_ns; /* 0, or a clock_now_ns time that ends it sooner: a probe's attempts share
                         one --request-timeout-s */
};

int oneshot_request(const struct transport_ops *ops, struct transport_ctx *tctx,
                    const struct endpoint *ep, const char *request, size_t len,
                    const struct oneshot_limits *limits, struct oneshot_result *out);

/* As oneshot_request; when the response is not complete after ONESHOT_NOTE_AFTER_S, prints
 * `note` (one line, without its newline) on stderr once, so that a long wait is said while it
 * lasts instead of in silence. */
#define ONESHOT_NOTE_AFTER_S 5.0
int oneshot_request_noted(const struct transport_ops *ops, struct transport_ctx *tctx,
                          const struct endpoint *ep, const char *request, size_t len,
                          const struct oneshot_limits *limits, const char *note,
                          struct oneshot_result *out);

/* Whether a failed request is worth another attempt: a refused or reset connection, a 5xx,
 * 408 or 429, or an answer without usage may be the server's passing trouble. A timeout (any
 * of the three) is not (the next attempt would only wait as long again), nor an interruption, nor
 * any other client error (4xx: the request itself is wrong). */
int oneshot_worth_retrying(const struct oneshot_result *r);

/* `l` for a request of several attempts begun now: until_ns set, so that they share one
 * request_s in all. */
struct oneshot_limits oneshot_attempts_begin(struct oneshot_limits l);

/* The pause before attempt `attempts` + 1 of a request that failed in a way worth retrying:
 * 0.5 s doubling to 5 s (a server still loading its model refuses or answers 503 for a
 * while), within the attempts' l->until_ns (oneshot_attempts_begin). 0 after the pause, -1
 * when that would be past or the run was interrupted (no more attempts). */
int oneshot_retry_pause(int attempts, const struct oneshot_limits *l);

/* What the last of `attempts` failed requests, begun at `start` (clock_now_ns), came to: its
 * error (`if_none` when it had none), its HTTP status, and how many attempts took how long. */
void oneshot_describe(const struct oneshot_result *r, const char *if_none, int attempts,
                      int64_t start, char *buf, size_t len);

#endif
