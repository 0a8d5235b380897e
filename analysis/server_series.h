/* The server's view of a run, from the Prometheus text its /metrics served (REC_SERVER_METRICS
 * records, analysis/prom_text.h): known metric names of vLLM (vllm:), SGLang (sglang:),
 * TensorRT-LLM (trtllm:), Dynamo (dynamo_frontend_, dynamo_component_), llama.cpp
 * (llamacpp:) and strobe-emu (strobe_emu_) mapped to common series, kept per scrape in time
 * order; a window's summary is computed from them:
 *  - gauges (requests running and waiting, KV-cache usage, and the servers that publish ratios
 *    as gauges): mean and maximum over the scrapes inside the window; a gauge given for
 *    several label sets (models, data-parallel engines) is summed for counts of requests and
 *    averaged for ratios;
 *  - counters (prefix-cache hits and queries, speculative tokens accepted and drafted) and
 *    histograms (TTFT, inter-token latency, end-to-end latency, queue time): the change
 *    between the first and the last scrape inside the window, so the window's own requests;
 *    histogram percentiles interpolate linearly inside a bucket, as Prometheus's
 *    histogram_quantile does, so they are as coarse as the server's buckets.
 * Everything else a server exposes stays in the log as served (the raw text). */
#ifndef STROBE_SERVER_SERIES_H
#define STROBE_SERVER_SERIES_H
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

enum server_gauge {
    SG_RUNNING,         /* requests running (prefill or decode) */
    SG_WAITING,         /* requests queued */
    SG_KV_USAGE,        /* KV-cache usage, 0..1 as the server reports it */
    SG_PREFIX_HIT,      /* prefix-cache hit ratio, where published as a gauge */
    SG_SPEC_ACCEPT,     /* speculative-decoding acceptance ratio, where a gauge */
    SG_SPEC_ACCEPT_LEN, /* mean accepted draft length, tokens (SGLang) */
    SG_COUNT
};
enum server_counter {
    SC_PREFIX_HITS,
    SC_PREFIX_QUERIES,
    SC_SPEC_ACCEPTED,
    SC_SPEC_DRAFTED,
    SC_COUNT
};
enum server_hist { SH_TTFT, SH_ITL, SH_E2E, SH_QUEUE, SH_COUNT };

#define SERVER_HIST_MAX_BUCKETS 64

struct server_hist_snap {
    int present;
    size_t n; /* buckets, by le ascending (the last is +Inf) */
    double le[SERVER_HIST_MAX_BUCKETS], cum[SERVER_HIST_MAX_BUCKETS];
    double sum, count;
};

struct server_scrape {
    int64_t t;
    double gauge[SG_COUNT];                  /* NAN when not exposed */
    double counter[SC_COUNT];                /* NAN when not exposed */
    struct server_hist_snap *hist[SH_COUNT]; /* NULL when not exposed */
};

struct server_metrics {
    struct server_scrape *s;
    size_t n, cap;
    size_t failed;      /* scrapes that got no exposition */
    size_t malformed;   /* lines skipped as malformed, over all scrapes */
    const char *server; /* which naming was recognised: "vllm", ..., or NULL */
};

/* Parses one scrape's text and appends its mapped values (scrapes arrive in time order). */
void server_metrics_take(struct server_metrics *m, int64_t t, const char *text, size_t len);
void server_metrics_failed(struct server_metrics *m);
void server_metrics_free(struct server_metrics *m);

struct server_gauge_stat {
    size_t n;
    double mean, max;
};
struct server_hist_stat {
    double n, mean, p50, p90, p99; /* n: observations in the window; the rest in seconds */
};
struct server_window {
    size_t scrapes;
    double span_s; /* between the first and last scrape inside the window */
    struct server_gauge_stat gauge[SG_COUNT];
    double prefix_hit_ratio, spec_accept_ratio; /* from counters, else from gauges; NAN */
    struct server_hist_stat hist[SH_COUNT];     /* n 0 when unknown */
};

/* The summary of the scrapes in [t0, t1]. scrapes 0 when there are none. */
void server_metrics_window(const struct server_metrics *m, int64_t t0, int64_t t1,
                           struct server_window *out);

/* results.json's "server" object of a phase: the summary, with its units in its names. */
struct cJSON *server_window_json(const struct server_metrics *m, const struct server_window *w);
/* One line of the results table beside strobe's own TTFT p50 (seconds, NAN when none). */
void server_window_print(FILE *out, const struct server_metrics *m, const struct server_window *w,
                         double strobe_ttft_p50_s);

/* For output: the series' names (snake_case) */
extern const char *const server_gauge_name[SG_COUNT];
extern const char *const server_hist_name[SH_COUNT];

#endif
