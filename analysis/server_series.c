#include "server_series.h"

#include "must_alloc.h"
#include "prom_text.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const server_gauge_name[SG_COUNT] = {
    "requests_running",       "requests_waiting",       "kv_cache_usage",
    "prefix_cache_hit_ratio", "spec_decode_acceptance", "spec_decode_accept_length_tokens"};
const char *const server_hist_name[SH_COUNT] = {"ttft_s", "itl_s", "e2e_latency_s", "queue_time_s"};

enum kind { K_GAUGE_SUM, K_GAUGE_MEAN, K_COUNTER, K_HIST };

/* A known name. rank orders names of one series inside a server's exposition: when a server
 * exposes an old and a new name for the same thing, the lower rank is the one taken. */
struct known {
    const char *name, *server;
    enum kind kind;
    int series, rank;
};

static const struct known KNOWN[] = {
    {"vllm:num_requests_running", "vllm", K_GAUGE_SUM, SG_RUNNING, 0},
    {"vllm:num_requests_waiting", "vllm", K_GAUGE_SUM, SG_WAITING, 0},
    {"vllm:kv_cache_usage_perc", "vllm", K_GAUGE_MEAN, SG_KV_USAGE, 0},
    {"vllm:gpu_cache_usage_perc", "vllm", K_GAUGE_MEAN, SG_KV_USAGE, 1},
    {"vllm:gpu_prefix_cache_hit_rate", "vllm", K_GAUGE_MEAN, SG_PREFIX_HIT, 0},
    {"vllm:spec_decode_draft_acceptance_rate", "vllm", K_GAUGE_MEAN, SG_SPEC_ACCEPT, 0},
    {"vllm:prefix_cache_hits", "vllm", K_COUNTER, SC_PREFIX_HITS, 0},
    {"vllm:prefix_cache_queries", "vllm", K_COUNTER, SC_PREFIX_QUERIES, 0},
    {"vllm:gpu_prefix_cache_hits", "vllm", K_COUNTER, SC_PREFIX_HITS, 1},
    {"vllm:gpu_prefix_cache_queries", "vllm", K_COUNTER, SC_PREFIX_QUERIES, 1},
    {"vllm:spec_decode_num_accepted_tokens", "vllm", K_COUNTER, SC_SPEC_ACCEPTED, 0},
    {"vllm:spec_decode_num_draft_tokens", "vllm", K_COUNTER, SC_SPEC_DRAFTED, 0},
    {"vllm:time_to_first_token_seconds", "vllm", K_HIST, SH_TTFT, 0},
    {"vllm:inter_token_latency_seconds", "vllm", K_HIST, SH_ITL, 0},
    {"vllm:time_per_output_token_seconds", "vllm", K_HIST, SH_ITL, 1},
    {"vllm:e2e_request_latency_seconds", "vllm", K_HIST, SH_E2E, 0},
    {"vllm:request_queue_time_seconds", "vllm", K_HIST, SH_QUEUE, 0},

    {"sglang:num_running_reqs", "sglang", K_GAUGE_SUM, SG_RUNNING, 0},
    {"sglang:num_queue_reqs", "sglang", K_GAUGE_SUM, SG_WAITING, 0},
    {"sglang:token_usage", "sglang", K_GAUGE_MEAN, SG_KV_USAGE, 0},
    {"sglang:cache_hit_rate", "sglang", K_GAUGE_MEAN, SG_PREFIX_HIT, 0},
    {"sglang:spec_accept_length", "sglang", K_GAUGE_MEAN, SG_SPEC_ACCEPT_LEN, 0},
    {"sglang:time_to_first_token_seconds", "sglang", K_HIST, SH_TTFT, 0},
    {"sglang:inter_token_latency_seconds", "sglang", K_HIST, SH_ITL, 0},
    {"sglang:time_per_output_token_seconds", "sglang", K_HIST, SH_ITL, 1},
    {"sglang:e2e_request_latency_seconds", "sglang", K_HIST, SH_E2E, 0},
    {"sglang:queue_time_seconds", "sglang", K_HIST, SH_QUEUE, 0},

    {"trtllm:kv_cache_utilization", "trtllm", K_GAUGE_MEAN, SG_KV_USAGE, 0},
    {"trtllm:kv_cache_hit_rate", "trtllm", K_GAUGE_MEAN, SG_PREFIX_HIT, 0},
    {"trtllm:time_to_first_token_seconds", "trtllm", K_HIST, SH_TTFT, 0},
    {"trtllm:time_per_output_token_seconds", "trtllm", K_HIST, SH_ITL, 0},
    {"trtllm:e2e_request_latency_seconds", "trtllm", K_HIST, SH_E2E, 0},
    {"trtllm:request_queue_time_seconds", "trtllm", K_HIST, SH_QUEUE, 0},

    {"dynamo_frontend_inflight_requests", "dynamo", K_GAUGE_SUM, SG_RUNNING, 0},
    {"dynamo_frontend_queued_requests", "dynamo", K_GAUGE_SUM, SG_WAITING, 0},
    {"dynamo_component_kvstats_gpu_cache_usage_percent", "dynamo", K_GAUGE_MEAN, SG_KV_USAGE, 0},
    {"dynamo_component_kvstats_gpu_prefix_cache_hit_rate", "dynamo", K_GAUGE_MEAN, SG_PREFIX_HIT,
     0},
    {"dynamo_frontend_time_to_first_token_seconds", "dynamo", K_HIST, SH_TTFT, 0},
    {"dynamo_frontend_inter_token_latency_seconds", "dynamo", K_HIST, SH_ITL, 0},
    {"dynamo_frontend_request_duration_seconds", "dynamo", K_HIST, SH_E2E, 0},

    {"llamacpp:requests_processing", "llamacpp", K_GAUGE_SUM, SG_RUNNING, 0},
    {"llamacpp:requests_deferred", "llamacpp", K_GAUGE_SUM, SG_WAITING, 0},
    {"llamacpp:kv_cache_usage_ratio", "llamacpp", K_GAUGE_MEAN, SG_KV_USAGE, 0},

    {"strobe_emu_requests_running", "strobe-emu", K_GAUGE_SUM, SG_RUNNING, 0},
    {"strobe_emu_requests_waiting", "strobe-emu", K_GAUGE_SUM, SG_WAITING, 0},
    {"strobe_emu_prefix_cache_hits", "strobe-emu", K_COUNTER, SC_PREFIX_HITS, 0},
    {"strobe_emu_prefix_cache_queries", "strobe-emu", K_COUNTER, SC_PREFIX_QUERIES, 0},
    {"strobe_emu_time_to_first_token_seconds", "strobe-emu", K_HIST, SH_TTFT, 0},
    {"strobe_emu_inter_token_latency_seconds", "strobe-emu", K_HIST, SH_ITL, 0},
};
#define NKNOWN (sizeof KNOWN / sizeof *KNOWN)

/* One scrape being read: per series, the rank taken and the label sets seen. */
struct reading {
    struct server_metrics *m;
    struct server_scrape *s;
    int gauge_rank[SG_COUNT], counter_rank[SC_COUNT], hist_rank[SH_COUNT];
    int gauge_sets[SG_COUNT];
    int gauge_mean[SG_COUNT]; /* the name taken is a ratio (K_GAUGE_MEAN): averaged */
};

static int strip(struct prom_str *name, const char *suffix)
{
    size_t n = strlen(suffix);
    if (name->len <= n || memcmp(name->p + name->len - n, suffix, n)) return 0;
    name->len -= n;
    return 1;
}

/* The entry a sample belongs to, and which part of a histogram it is (0 bucket, 1 sum,
 * 2 count; -1 otherwise). */
static const struct known *lookup(struct prom_str name, int *part)
{
    struct prom_str base = name;
    *part = -1;
    if (strip(&base, "_bucket"))
        *part = 0;
    else if (strip(&base, "_sum"))
        *part = 1;
    else if (strip(&base, "_count"))
        *part = 2;
    else
        strip(&base, "_total");
    for (size_t i = 0; i < NKNOWN; i++) {
        if (prom_str_is(base, KNOWN[i].name)) return &KNOWN[i];
        if (*part < 0 && prom_str_is(name, KNOWN[i].name)) return &KNOWN[i];
    }
    return NULL;
}

/* Whether a sample of rank `rank` counts for a series that has taken `*taken` so far (-1:
 * nothing yet); a better rank starts the series over. */
static int take_rank(int *taken, int rank, int *restart)
{
    *restart = *taken < 0 || rank < *taken;
    if (!*restart && rank > *taken) return 0;
    *taken = rank;
    return 1;
}

static void add_bucket(struct server_hist_snap *h, double le, double v)
{
    size_t i = 0;
    while (i < h->n && h->le[i] < le) i++;
    if (i < h->n && h->le[i] == le) {
        h->cum[i] += v;
        return;
    }
    if (h->n == SERVER_HIST_MAX_BUCKETS) return;
    memmove(&h->le[i + 1], &h->le[i], (h->n - i) * sizeof *h->le);
    memmove(&h->cum[i + 1], &h->cum[i], (h->n - i) * sizeof *h->cum);
    h->le[i] = le;
    h->cum[i] = v;
    h->n++;
}

static void take_hist(struct reading *r, const struct known *k, int part,
                      const struct prom_sample *smp)
{
    int restart;
    if (part < 0 || !take_rank(&r->hist_rank[k->series], k->rank, &restart)) return;
    struct server_hist_snap **hp = &r->s->hist[k->series];
    if (!*hp) *hp = must_calloc(1, sizeof **hp, "a server metric's histogram");
    if (restart) memset(*hp, 0, sizeof **hp);
    struct server_hist_snap *h = *hp;
    h->present = 1;
    if (part == 1) {
        h->sum += smp->value;
    } else if (part == 2) {
        h->count += smp->value;
    } else {
        const struct prom_str *le = prom_label(smp, "le");
        char buf[48];
        if (!le || le->len >= sizeof buf) return;
        memcpy(buf, le->p, le->len);
        buf[le->len] = 0;
        char *end;
        double bound = strtod(buf, &end);
        if (*end || isnan(bound)) return;
        add_bucket(h, bound, smp->value);
    }
}

static void on_sample(const struct prom_sample *smp, void *arg)
{
    struct reading *r = arg;
    int part, restart;
    const struct known *k = lookup(smp->name, &part);
    if (!k || isnan(smp->value)) return;
    if (!r->m->server) r->m->server = k->server;
    struct server_scrape *s = r->s;
    switch (k->kind) {
    case K_GAUGE_SUM:
    case K_GAUGE_MEAN:
        if (part >= 0 || !take_rank(&r->gauge_rank[k->series], k->rank, &restart)) return;
        if (restart) {
            s->gauge[k->series] = 0;
            r->gauge_sets[k->series] = 0;
        }
        s->gauge[k->series] += smp->value;
        r->gauge_sets[k->series]++;
        r->gauge_mean[k->series] = k->kind == K_GAUGE_MEAN;
        break;
    case K_COUNTER:
        if (part >= 0 || !take_rank(&r->counter_rank[k->series], k->rank, &restart)) return;
        if (restart) s->counter[k->series] = 0;
        s->counter[k->series] += smp->value;
        break;
    case K_HIST: take_hist(r, k, part, smp); break;
    }
}

void server_metrics_take(struct server_metrics *m, int64_t t, const char *text, size_t len)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->s = must_realloc(m->s, m->cap * sizeof *m->s, "the server's metrics scrapes");
    }
    struct server_scrape *s = &m->s[m->n++];
    memset(s, 0, sizeof *s);
    s->t = t;
    struct reading r = {.m = m, .s = s};
    for (int i = 0; i < SG_COUNT; i++) {
        s->gauge[i] = NAN;
        r.gauge_rank[i] = -1;
    }
    for (int i = 0; i < SC_COUNT; i++) {
        s->counter[i] = NAN;
        r.counter_rank[i] = -1;
    }
    for (int i = 0; i < SH_COUNT; i++) r.hist_rank[i] = -1;
    struct prom_stats st = prom_parse(text, len, on_sample, &r);
    m->malformed += st.malformed;
    /* ratios published per label set (per engine, per model) are averaged, counts summed */
    for (int g = 0; g < SG_COUNT; g++)
        if (r.gauge_mean[g] && r.gauge_sets[g] > 1) s->gauge[g] /= r.gauge_sets[g];
}

void server_metrics_failed(struct server_metrics *m) { m->failed++; }

void server_metrics_free(struct server_metrics *m)
{
    for (size_t i = 0; i < m->n; i++)
        for (int k = 0; k < SH_COUNT; k++) free(m->s[i].hist[k]);
    free(m->s);
    memset(m, 0, sizeof *m);
}

/* Prometheus's histogram_quantile over cumulative bucket counts. */
static double bucket_quantile(const double *le, const double *cum, size_t n, double q)
{
    if (!n || cum[n - 1] <= 0) return NAN;
    double rank = q * cum[n - 1];
    size_t i = 0;
    while (i < n && cum[i] < rank) i++;
    if (i == n) i = n - 1;
    if (isinf(le[i])) return i ? le[i - 1] : NAN;
    double lower = i ? le[i - 1] : (le[i] > 0 ? 0 : le[i]);
    double below = i ? cum[i - 1] : 0, in = cum[i] - below;
    if (in <= 0) return le[i];
    return lower + (le[i] - lower) * (rank - below) / in;
}

static void hist_delta(const struct server_hist_snap *a, const struct server_hist_snap *b,
                       struct server_hist_stat *out)
{
    static const struct server_hist_snap none; /* not yet exposed: nothing counted yet */
    memset(out, 0, sizeof *out);
    if (!b || !b->present) return;
    if (!a) a = &none;
    double cum[SERVER_HIST_MAX_BUCKETS];
    for (size_t i = 0; i < b->n; i++) {
        double before = 0;
        for (size_t j = 0; j < a->n; j++)
            if (a->le[j] == b->le[i]) before = a->cum[j];
        cum[i] = b->cum[i] - before;
        if (cum[i] < 0) return; /* the server restarted: its counters began again */
    }
    double count = b->count - a->count, sum = b->sum - a->sum;
    if (count <= 0) return;
    out->n = count;
    out->mean = sum / count;
    out->p50 = bucket_quantile(b->le, cum, b->n, 0.50);
    out->p90 = bucket_quantile(b->le, cum, b->n, 0.90);
    out->p99 = bucket_quantile(b->le, cum, b->n, 0.99);
}

static double counter_ratio(const struct server_scrape *a, const struct server_scrape *b, int num,
                            int den)
{
    /* a counter a server has not exposed yet has counted nothing yet (client libraries
     * create labelled series at their first increment) */
    double an = isnan(a->counter[num]) ? 0 : a->counter[num];
    double ad = isnan(a->counter[den]) ? 0 : a->counter[den];
    double dn = b->counter[num] - an, dd = b->counter[den] - ad;
    return isnan(dn) || isnan(dd) || dd <= 0 || dn < 0 ? NAN : dn / dd;
}

void server_metrics_window(const struct server_metrics *m, int64_t t0, int64_t t1,
                           struct server_window *out)
{
    memset(out, 0, sizeof *out);
    out->prefix_hit_ratio = out->spec_accept_ratio = NAN;
    size_t first = 0, last = 0;
    for (size_t i = 0; i < m->n; i++) {
        const struct server_scrape *s = &m->s[i];
        if (s->t < t0 || s->t > t1) continue;
        if (!out->scrapes++) first = i;
        last = i;
        for (int g = 0; g < SG_COUNT; g++) {
            if (isnan(s->gauge[g])) continue;
            struct server_gauge_stat *st = &out->gauge[g];
            st->mean += s->gauge[g];
            if (!st->n++ || s->gauge[g] > st->max) st->max = s->gauge[g];
        }
    }
    for (int g = 0; g < SG_COUNT; g++)
        if (out->gauge[g].n) out->gauge[g].mean /= (double)out->gauge[g].n;
    if (out->scrapes < 2) return;
    const struct server_scrape *a = &m->s[first], *b = &m->s[last];
    int64_t span; /* a damaged log's stamps too far apart for int64: no span */
    out->span_s = __builtin_sub_overflow(b->t, a->t, &span) ? NAN : (double)span / 1e9;
    out->prefix_hit_ratio = counter_ratio(a, b, SC_PREFIX_HITS, SC_PREFIX_QUERIES);
    if (isnan(out->prefix_hit_ratio) && out->gauge[SG_PREFIX_HIT].n)
        out->prefix_hit_ratio = out->gauge[SG_PREFIX_HIT].mean;
    out->spec_accept_ratio = counter_ratio(a, b, SC_SPEC_ACCEPTED, SC_SPEC_DRAFTED);
    if (isnan(out->spec_accept_ratio) && out->gauge[SG_SPEC_ACCEPT].n)
        out->spec_accept_ratio = out->gauge[SG_SPEC_ACCEPT].mean;
    for (int h = 0; h < SH_COUNT; h++) hist_delta(a->hist[h], b->hist[h], &out->hist[h]);
}

static void add_number(cJSON *o, const char *name, double v)
{
    if (isnan(v))
        cJSON_AddNullToObject(o, name);
    else
        cJSON_AddNumberToObject(o, name, v);
}

cJSON *server_window_json(const struct server_metrics *m, const struct server_window *w)
{
    cJSON *o = cJSON_CreateObject();
    if (m->server)
        cJSON_AddStringToObject(o, "server", m->server);
    else
        cJSON_AddNullToObject(o, "server");
    cJSON_AddNumberToObject(o, "scrapes_in_window", (double)w->scrapes);
    cJSON_AddNumberToObject(o, "span_s", w->span_s);
    cJSON_AddNumberToObject(o, "scrapes_failed_in_run", (double)m->failed);
    cJSON_AddNumberToObject(o, "malformed_lines_in_run", (double)m->malformed);
    for (int g = 0; g < SG_COUNT; g++) {
        if (!w->gauge[g].n || g == SG_PREFIX_HIT || g == SG_SPEC_ACCEPT) continue;
        cJSON *j = cJSON_AddObjectToObject(o, server_gauge_name[g]);
        cJSON_AddNumberToObject(j, "mean", w->gauge[g].mean);
        cJSON_AddNumberToObject(j, "max", w->gauge[g].max);
        cJSON_AddNumberToObject(j, "scrapes", (double)w->gauge[g].n);
    }
    add_number(o, "prefix_cache_hit_ratio", w->prefix_hit_ratio);
    add_number(o, "spec_decode_acceptance_ratio", w->spec_accept_ratio);
    for (int h = 0; h < SH_COUNT; h++) {
        if (w->hist[h].n <= 0) continue;
        cJSON *j = cJSON_AddObjectToObject(o, server_hist_name[h]);
        cJSON_AddNumberToObject(j, "observations", w->hist[h].n);
        add_number(j, "mean", w->hist[h].mean);
        add_number(j, "p50", w->hist[h].p50);
        add_number(j, "p90", w->hist[h].p90);
        add_number(j, "p99", w->hist[h].p99);
    }
    return o;
}

void server_window_print(FILE *out, const struct server_metrics *m, const struct server_window *w,
                         double strobe_ttft_p50_s)
{
    if (!w->scrapes) {
        fprintf(out, "      server: no metrics scraped inside the window (%zu scrapes failed)\n",
                m->failed);
        return;
    }
    char line[1024];
    size_t at = 0;
    at += (size_t)snprintf(line + at, sizeof line - at, "      server (%s, %zu scrapes):",
                           m->server ? m->server : "names not recognised", w->scrapes);
    if (w->gauge[SG_RUNNING].n)
        at += (size_t)snprintf(line + at, sizeof line - at, " running %.1f mean,",
                               w->gauge[SG_RUNNING].mean);
    if (w->gauge[SG_WAITING].n)
        at += (size_t)snprintf(line + at, sizeof line - at, " waiting %.1f mean,",
                               w->gauge[SG_WAITING].mean);
    if (w->gauge[SG_KV_USAGE].n)
        at += (size_t)snprintf(line + at, sizeof line - at, " KV cache %.1f %% mean,",
                               100 * w->gauge[SG_KV_USAGE].mean);
    if (!isnan(w->prefix_hit_ratio))
        at += (size_t)snprintf(line + at, sizeof line - at, " prefix-cache hits %.1f %%,",
                               100 * w->prefix_hit_ratio);
    if (!isnan(w->spec_accept_ratio))
        at += (size_t)snprintf(line + at, sizeof line - at, " draft acceptance %.1f %%,",
                               100 * w->spec_accept_ratio);
    if (w->hist[SH_TTFT].n > 0) {
        at += (size_t)snprintf(line + at, sizeof line - at, " its TTFT p50 %.4f s",
                               w->hist[SH_TTFT].p50);
        if (!isnan(strobe_ttft_p50_s))
            at += (size_t)snprintf(line + at, sizeof line - at, " (strobe's %.4f s)",
                                   strobe_ttft_p50_s);
        at += (size_t)snprintf(line + at, sizeof line - at, ",");
    }
    if (w->hist[SH_ITL].n > 0)
        at += (size_t)snprintf(line + at, sizeof line - at, " its ITL p50 %.2f ms,",
                               1e3 * w->hist[SH_ITL].p50);
    if (at >= sizeof line) at = sizeof line - 1;
    if (line[at - 1] == ',' || line[at - 1] == ':') line[at - 1] = 0;
    fprintf(out, "%s\n", line);
}
