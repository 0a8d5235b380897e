/* The Prometheus text parser (every part of a sample line, escapes, families, malformed lines
 * skipped) and the mapping of each server's documented metric names to strobe's common
 * series, read from hand-written expositions in tests/data/prometheus/. */
#include "check.h"
#include "prom_text.h"
#include "server_series.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

struct seen {
    int n;
    char name[8][64], family[8][64], label[8][64];
    enum prom_type type[8];
    double value[8];
    int has_ts[8];
    long long ts[8];
};

static void collect(const struct prom_sample *s, void *arg)
{
    struct seen *z = arg;
    if (z->n == 8) return;
    int i = z->n++;
    snprintf(z->name[i], 64, "%.*s", (int)s->name.len, s->name.p);
    snprintf(z->family[i], 64, "%.*s", (int)s->family.len, s->family.p);
    if (s->nlabels)
        snprintf(z->label[i], 64, "%.*s=%.*s", (int)s->label_name[s->nlabels - 1].len,
                 s->label_name[s->nlabels - 1].p, (int)s->label_value[s->nlabels - 1].len,
                 s->label_value[s->nlabels - 1].p);
    z->type[i] = s->type;
    z->value[i] = s->value;
    z->has_ts[i] = s->has_timestamp;
    z->ts[i] = s->timestamp_ms;
}

static void test_parser(void)
{
    const char text[] = "# HELP a_seconds A histogram.\n"
                        "# TYPE a_seconds histogram\n"
                        "a_seconds_bucket{le=\"0.5\"} 3\n"
                        "a_seconds_bucket{le=\"+Inf\",} 4 1700000000000\r\n"
                        "  \n"
                        "b{path=\"C:\\\\dir\",msg=\"say \\\"hi\\\"\\nbye\"} -Inf\n"
                        "bad line here\n"
                        "c{x=\"unterminated} 1\n"
                        "d NaN # {trace_id=\"1\"} 1\n"
                        "e{} 2.5e3\n"
                        "# EOF\n"
                        "f 7";
    struct seen z = {0};
    struct prom_stats st = prom_parse(text, strlen(text), collect, &z);
    CHECK(st.samples == 6, "6 well-formed samples, got %zu", st.samples);
    CHECK(st.malformed == 2 && st.first_bad_line == 7,
          "2 malformed lines, the first on line 7; got %zu, line %zu (%s)", st.malformed,
          st.first_bad_line, st.first_error);
    CHECK(!strcmp(z.family[0], "a_seconds") && z.type[0] == PROM_HISTOGRAM,
          "a bucket belongs to its histogram family: %s %d", z.family[0], z.type[0]);
    CHECK(!strcmp(z.label[1], "le=+Inf"), "a trailing comma in the labels: [%s]", z.label[1]);
    CHECK(z.has_ts[1] && z.ts[1] == 1700000000000LL && NEAR(z.value[1], 4),
          "a timestamp after the value, with a trailing comma and CRLF: %d %lld %g", z.has_ts[1],
          z.ts[1], z.value[1]);
    CHECK(!strcmp(z.label[2], "msg=say \"hi\"\nbye"), "escapes undone: [%s]", z.label[2]);
    CHECK(isinf(z.value[2]) && z.value[2] < 0 && z.type[2] == PROM_UNTYPED,
          "-Inf, untyped outside its family: %g %d", z.value[2], z.type[2]);
    CHECK(isnan(z.value[3]) && !z.has_ts[3], "NaN with an exemplar: %g", z.value[3]);
    CHECK(NEAR(z.value[4], 2500) && !strcmp(z.name[4], "e"), "empty braces: %s %g", z.name[4],
          z.value[4]);
    CHECK(!strcmp(z.name[5], "f") && NEAR(z.value[5], 7), "a last line without newline: %s %g",
          z.name[5], z.value[5]);
    /* bounds: nothing read past len */
    char *cut = malloc(5);
    memcpy(cut, "x 12", 4);
    st = prom_parse(cut, 4, NULL, NULL);
    CHECK(st.samples == 1, "a buffer without NUL is read to len only");
    free(cut);
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("FAIL cannot open %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    char *b = malloc(*len + 1);
    *len = fread(b, 1, *len, f);
    fclose(f);
    return b;
}

/* Two scrapes of one exposition, the second with every counter and bucket doubled (the
 * window's change equals the first scrape's totals). */
static void two_scrapes(const char *dir, const char *name, struct server_metrics *m,
                        struct server_window *w)
{
    size_t len;
    char *text = slurp(dir, name, &len);
    memset(m, 0, sizeof *m);
    server_metrics_take(m, 1000000000LL, "", 0); /* a scrape before anything was counted */
    server_metrics_take(m, 2000000000LL, text, len);
    free(text);
    server_metrics_window(m, 1000000000LL, 2000000000LL, w);
}

static void test_servers(const char *dir)
{
    struct server_metrics m;
    struct server_window w;

    two_scrapes(dir, "vllm.txt", &m, &w);
    CHECK(m.server && !strcmp(m.server, "vllm"), "vllm recognised: %s", m.server);
    CHECK(w.scrapes == 2 && NEAR(w.span_s, 1), "two scrapes a second apart");
    CHECK(NEAR(w.gauge[SG_RUNNING].max, 64), "running summed over engines: %g",
          w.gauge[SG_RUNNING].max);
    CHECK(NEAR(w.gauge[SG_WAITING].max, 2), "waiting: %g", w.gauge[SG_WAITING].max);
    CHECK(NEAR(w.gauge[SG_KV_USAGE].max, 0.6), "KV usage averaged over engines: %g",
          w.gauge[SG_KV_USAGE].max);
    CHECK(NEAR(w.prefix_hit_ratio, 0.25), "prefix hits / queries: %g", w.prefix_hit_ratio);
    CHECK(NEAR(w.spec_accept_ratio, 0.75), "accepted / drafted: %g", w.spec_accept_ratio);
    CHECK(NEAR(w.hist[SH_TTFT].n, 100) && NEAR(w.hist[SH_TTFT].mean, 0.3),
          "TTFT count and mean: %g %g", w.hist[SH_TTFT].n, w.hist[SH_TTFT].mean);
    /* 50th of 100: inside (0.1, 0.5], 40 of its 80 -> 0.1 + 0.4 * 40/80 = 0.3 */
    CHECK(NEAR(w.hist[SH_TTFT].p50, 0.3), "TTFT p50 interpolated in its bucket: %g",
          w.hist[SH_TTFT].p50);
    CHECK(NEAR(w.hist[SH_TTFT].p99, 0.5 + 0.5 * 9.0 / 10.0), "TTFT p99: %g", w.hist[SH_TTFT].p99);
    CHECK(NEAR(w.hist[SH_ITL].n, 200) && NEAR(w.hist[SH_ITL].p50, 0.01),
          "ITL from inter_token_latency, not the older time_per_output_token: n %g p50 %g",
          w.hist[SH_ITL].n, w.hist[SH_ITL].p50);
    server_metrics_free(&m);

    two_scrapes(dir, "sglang.txt", &m, &w);
    CHECK(m.server && !strcmp(m.server, "sglang"), "sglang recognised");
    CHECK(NEAR(w.gauge[SG_RUNNING].max, 48) && NEAR(w.gauge[SG_WAITING].max, 5),
          "sglang running/queue: %g %g", w.gauge[SG_RUNNING].max, w.gauge[SG_WAITING].max);
    CHECK(NEAR(w.gauge[SG_KV_USAGE].max, 0.28), "sglang token usage");
    CHECK(NEAR(w.prefix_hit_ratio, 0.4), "sglang hit rate from its gauge: %g", w.prefix_hit_ratio);
    CHECK(NEAR(w.gauge[SG_SPEC_ACCEPT_LEN].max, 2.5), "sglang accept length");
    CHECK(NEAR(w.hist[SH_TTFT].n, 50) && NEAR(w.hist[SH_TTFT].p50, 0.1 + 0.15 * 5.0 / 30.0),
          "sglang TTFT p50 %g", w.hist[SH_TTFT].p50);
    CHECK(NEAR(w.hist[SH_ITL].mean, 0.01), "sglang ITL mean %g", w.hist[SH_ITL].mean);
    server_metrics_free(&m);

    two_scrapes(dir, "trtllm.txt", &m, &w);
    CHECK(m.server && !strcmp(m.server, "trtllm"), "trtllm recognised");
    CHECK(NEAR(w.gauge[SG_KV_USAGE].max, 0.9) && NEAR(w.prefix_hit_ratio, 0.125),
          "trtllm KV and reuse");
    CHECK(NEAR(w.hist[SH_TTFT].p50, 0.02), "trtllm TTFT p50 %g", w.hist[SH_TTFT].p50);
    server_metrics_free(&m);

    two_scrapes(dir, "dynamo.txt", &m, &w);
    CHECK(m.server && !strcmp(m.server, "dynamo"), "dynamo recognised");
    CHECK(NEAR(w.gauge[SG_RUNNING].max, 12) && NEAR(w.gauge[SG_WAITING].max, 3) &&
              NEAR(w.gauge[SG_KV_USAGE].max, 0.25),
          "dynamo gauges");
    CHECK(NEAR(w.hist[SH_TTFT].p50, 0.1) && NEAR(w.hist[SH_TTFT].mean, 0.1), "dynamo TTFT");
    server_metrics_free(&m);

    two_scrapes(dir, "llamacpp.txt", &m, &w);
    CHECK(m.server && !strcmp(m.server, "llamacpp"), "llama.cpp recognised");
    CHECK(NEAR(w.gauge[SG_RUNNING].max, 4) && NEAR(w.gauge[SG_WAITING].max, 1) &&
              NEAR(w.gauge[SG_KV_USAGE].max, 0.125),
          "llama.cpp gauges");
    CHECK(w.hist[SH_TTFT].n == 0, "llama.cpp has no TTFT histogram");
    server_metrics_free(&m);

    /* a counter that went down (a restarted server) gives no figure rather than a wrong one */
    memset(&m, 0, sizeof m);
    const char *hi =
        "strobe_emu_prefix_cache_hits_total 10\nstrobe_emu_prefix_cache_queries_total 20\n";
    const char *lo =
        "strobe_emu_prefix_cache_hits_total 1\nstrobe_emu_prefix_cache_queries_total 30\n";
    server_metrics_take(&m, 1, hi, strlen(hi));
    server_metrics_take(&m, 2, lo, strlen(lo));
    server_metrics_window(&m, 0, 3, &w);
    CHECK(isnan(w.prefix_hit_ratio), "a reset counter gives no ratio: %g", w.prefix_hit_ratio);
    server_metrics_window(&m, 5, 9, &w);
    CHECK(w.scrapes == 0, "no scrape inside the window");
    server_metrics_free(&m);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_server_series tests/data/prometheus\n");
        return 2;
    }
    test_parser();
    test_servers(argv[1]);
    return check_done("test_server_series");
}
