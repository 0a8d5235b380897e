/* `strobe slt`: the System Load Test. Closed loop at fixed concurrency per phase; phases
 * 1, 2, 4 … 64, then +64 until system output throughput plateaus (or a given list).
 * Each phase: staggered ramp-up over the first half of --ramp-s, a measured window of
 * --phase-s, then a drain (no new requests; in-flight ones finish, up to --drain-s). */
#include "commands.h"

#include "tokenizer.h"

#include "run_env.h"
#include "run_flags.h"
#include "num_arg.h"
#include "eventlog.h"
#include "oneshot.h"
#include "prices.h"
#include "request_template.h"
#include "results.h"
#include "worker.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PHASES 4096

struct slt_config {
    struct run_flags f; /* target, run directory, TLS, threads, timeouts, seed, power */
    const char *endpoint;
    int conc[MAX_PHASES];
    int nconc, auto_ladder, max_concurrency;
    double phase_s, ramp_s, drain_s;
    int input_tokens, output_tokens, ignore_eos;
    const char *accelerator_type, *prices_file, *price_basis;
    int accelerators;
    double reference_speed, price_per_hour;
};

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: strobe slt [--url URL --model NAME] --out RUN_DIR [options]\n\n"
        "System Load Test: closed loop at fixed concurrency per phase; 1,000 input and 1,000\n"
        "output tokens per query, streaming. Without --url, strobe starts its built-in\n"
        "emulator (strobe-emu) on loopback and measures that.\n\n"
        "  --concurrency LIST|auto e.g. 1,2,4 (default auto: 1,2,4,…,64 then +64 to plateau)\n"
        "  --max-concurrency N     cap of the auto ladder (default 1024)\n"
        "  --phase-s SECONDS       measured window per phase (default 180)\n"
        "  --ramp-s SECONDS        ramp-up before the window, not measured (default 30)\n"
        "  --drain-s SECONDS       longest wait for in-flight requests after a phase (default "
        "600)\n"
        "  --input-tokens N        prompt tokens, calibrated on usage.prompt_tokens (default "
        "1000)\n"
        "  --output-tokens N       max_tokens (default 1000)\n"
        "  --ignore-eos            send ignore_eos: true so every answer has --output-tokens\n"
        "  --endpoint chat|completions   /v1/chat/completions (default) or /v1/completions\n"
        "  --accelerator-type NAME --accelerators N   the system, for cost per million tokens\n"
        "  --reference-speed N     output tokens/s per query for the cost figure (default 30)\n"
        "  --price-per-hour USD    per accelerator, instead of the price table\n"
        "  --prices FILE           price table (default: the one shipped in control/prices.json)\n"
        "  --price-basis committed|on-demand   (default committed, on-demand when none)\n");
    run_flags_usage(f);
    fprintf(
        f,
        "\nThe API key, if any, is read from STROBE_API_KEY and never written anywhere.\n"
        "Exit status: 0 done and valid, 1 run failed, 2 bad command line, 3 interrupted (results\n"
        "kept), 4 done but not valid (the reason is printed; results are kept).\n");
}

static int parse_args(int argc, char **argv, struct slt_config *c)
{
    memset(c, 0, sizeof *c);
    run_flags_defaults(&c->f);
    c->auto_ladder = 1;
    c->max_concurrency = 1024;
    c->phase_s = 180;
    c->ramp_s = 30;
    c->drain_s = 600;
    c->input_tokens = 1000;
    c->output_tokens = 1000;
    c->endpoint = "chat";
    enum {
        O_CONC = 256,
        O_MAXC,
        O_PHASE,
        O_RAMP,
        O_DRAIN,
        O_IN,
        O_OUTT,
        O_EOS,
        O_EP,
        O_ATYPE,
        O_ACC,
        O_REF,
        O_PPH,
        O_PRICES,
        O_PBASIS,
        O_HELP
    };
    static const struct option own[] = {{"concurrency", 1, 0, O_CONC},
                                        {"max-concurrency", 1, 0, O_MAXC},
                                        {"phase-s", 1, 0, O_PHASE},
                                        {"ramp-s", 1, 0, O_RAMP},
                                        {"drain-s", 1, 0, O_DRAIN},
                                        {"input-tokens", 1, 0, O_IN},
                                        {"output-tokens", 1, 0, O_OUTT},
                                        {"ignore-eos", 0, 0, O_EOS},
                                        {"endpoint", 1, 0, O_EP},
                                        {"accelerator-type", 1, 0, O_ATYPE},
                                        {"accelerators", 1, 0, O_ACC},
                                        {"reference-speed", 1, 0, O_REF},
                                        {"price-per-hour", 1, 0, O_PPH},
                                        {"prices", 1, 0, O_PRICES},
                                        {"price-basis", 1, 0, O_PBASIS},
                                        {"help", 0, 0, O_HELP},
                                        {0, 0, 0, 0}};
    struct option *opts = run_flags_table(own);
    int o, rc = 0;
    double v;
    opterr = 0;
    optind = 1;
    while (!rc && (o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int taken = run_flags_take(&c->f, o, optarg, argv[optind - 1], "slt");
        if (taken) {
            rc = taken == 2 ? 2 : 0;
            continue;
        }
        switch (o) {
        case O_EOS: c->ignore_eos = 1; break;
        case O_ATYPE: c->accelerator_type = optarg; break;
        case O_PRICES: c->prices_file = optarg; break;
        case O_PBASIS:
            if (strcmp(optarg, "committed") && strcmp(optarg, "on-demand"))
                rc = run_flags_bad("slt", "--price-basis must be committed or on-demand, got '%s'",
                                   optarg);
            c->price_basis = optarg;
            break;
        case O_EP:
            if (strcmp(optarg, "chat") && strcmp(optarg, "completions"))
                rc = run_flags_bad("slt", "--endpoint must be chat or completions, got '%s'",
                                   optarg);
            c->endpoint = optarg;
            break;
        case O_CONC:
            if (!strcmp(optarg, "auto")) {
                c->auto_ladder = 1;
                break;
            }
            c->auto_ladder = 0;
            c->nconc = 0;
            for (const char *p = optarg; *p && !rc;) {
                char *end;
                errno = 0;
                long n = strtol(p, &end, 10);
                if (end != p && (errno == ERANGE || n > 1000000) && (!*end || *end == ','))
                    rc = run_flags_bad(
                        "slt",
                        "--concurrency: %s holds a number too large (it overflows or is "
                        "over 1000000)",
                        optarg);
                else if (end == p || n < 1 || (*end && *end != ',') || c->nconc == MAX_PHASES)
                    rc = run_flags_bad(
                        "slt",
                        "--concurrency must be 'auto' or a list like 1,2,4 of positive "
                        "integers, got '%s'",
                        optarg);
                else
                    c->conc[c->nconc++] = (int)n;
                p = *end ? end + 1 : end;
            }
            break;
        case O_HELP:
        case 'h': usage(stdout); exit(0);
        case '?':
            rc = run_flags_bad("slt", "unknown option or missing value in '%s'", argv[optind - 1]);
            break;
        default: {
            /* counts are whole; seconds stay below 10^8 so their nanoseconds fit 64 bits */
            int whole = o == O_MAXC || o == O_IN || o == O_OUTT || o == O_ACC;
            double hi = o == O_MAXC                ? 1000000
                        : whole                    ? 100000000
                        : o == O_REF || o == O_PPH ? INFINITY
                                                   : 1e8;
            if (num_arg("slt", run_flag_name(opts, o), optarg, 0, hi, whole, &v)) {
                rc = 2;
                break;
            }
            switch (o) {
            case O_MAXC: c->max_concurrency = (int)v; break;
            case O_PHASE: c->phase_s = v; break;
            case O_RAMP: c->ramp_s = v; break;
            case O_DRAIN: c->drain_s = v; break;
            case O_IN: c->input_tokens = (int)v; break;
            case O_OUTT: c->output_tokens = (int)v; break;
            case O_ACC: c->accelerators = (int)v; break;
            case O_REF: c->reference_speed = v; break;
            case O_PPH: c->price_per_hour = v; break;
            }
        }
        }
    }
    free(opts);
    if (rc) return rc;
    if (optind < argc) return run_flags_bad("slt", "unexpected argument '%s'", argv[optind]);
    if ((rc = run_flags_check(&c->f, "slt"))) return rc;
    if (c->phase_s <= 0) return run_flags_bad("slt", "--phase-s must be > 0");
    if (c->output_tokens < 1) return run_flags_bad("slt", "--output-tokens must be >= 1");
    if (c->max_concurrency < 1) return run_flags_bad("slt", "--max-concurrency must be >= 1");
    return 0;
}

/* Concurrency of phase k of the auto ladder: 1, 2, 4, …, 64, then +64. */
static int ladder(int k) { return k <= 6 ? 1 << k : 64 * (k - 5); }

/* One calibration probe: the server's usage.prompt_tokens for a prompt of `words` filler
 * words, asking for one output token. A busy or flaky server may refuse a probe: each is
 * tried up to 5 times. */
static int probe(const struct slt_config *c, const struct endpoint *ep,
                 const struct transport_ops *ops, struct transport_ctx *tctx, const char *api_key,
                 int words, int index, int64_t *tokens, char *err, size_t errlen)
{
    struct template_params tp = {ep,
                                 c->f.model,
                                 strcmp(c->endpoint, "chat") == 0,
                                 words,
                                 1,
                                 0,
                                 c->f.extra_body,
                                 api_key,
                                 c->f.seed + 999 + (uint64_t)index};
    struct request_template t;
    if (template_build(&t, &tp, err, errlen)) return -1;
    char *req = malloc(t.len);
    struct oneshot_result r;
    int rc = -1;
    for (int attempt = 0; attempt < 5 && rc; attempt++) {
        size_t len = template_fill(&t, 0, (uint64_t)(index * 8 + attempt) + 1, req, t.len);
        rc = oneshot_request(ops, tctx, ep, req, len, c->f.request_timeout_s, &r);
        if (!rc && r.prompt_tokens < 0) rc = -1;
    }
    free(req);
    template_free(&t);
    if (rc || r.prompt_tokens < 0) {
        char status[32] = ""; /* none when no response came */
        if (r.status) snprintf(status, sizeof status, " (HTTP %d)", r.status);
        snprintf(err, errlen,
                 "calibration request to %s failed: %s%s; check --url, "
                 "--model and STROBE_API_KEY",
                 ep->host_header, r.error[0] ? r.error : "no usage.prompt_tokens in the answer",
                 status);
        return -1;
    }
    *tokens = r.prompt_tokens;
    return 0;
}

struct calibration {
    int words;
    int64_t expected; /* prompt tokens each request should carry, by the server's count */
    int by_tokenizer; /* the exact method ran */
    int64_t content_tokens, overhead, confirmed; /* tokenizer's prompt, template, server's count */
};

/* Linear calibration: two probes give the slope and the fixed overhead (chat template,
 * nonce) of usage.prompt_tokens over filler words; a third checks the fit and corrects once. */
static int calibrate_linear(const struct slt_config *c, const struct endpoint *ep,
                            const struct transport_ops *ops, struct transport_ctx *tctx,
                            const char *api_key, struct calibration *out, char *err, size_t errlen)
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
        if (probe(c, ep, ops, tctx, api_key, w[i], i, &tok[i], err, errlen)) return -1;
    }
    double slope = (double)(tok[1] - tok[0]) / (w[1] - w[0]);
    int corrected = w[2] + (int)lround((c->input_tokens - tok[2]) / slope);
    out->words = corrected < 0 ? 0 : corrected;
    out->expected = tok[2] + (int64_t)lround((corrected - w[2]) * slope);
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
static int calibrate_exact(const struct slt_config *c, const struct endpoint *ep,
                           const struct transport_ops *ops, struct transport_ctx *tctx,
                           const char *api_key, struct tokenizer *t, struct calibration *out,
                           char *err, size_t errlen)
{
    int w0 = c->input_tokens / 2 + 16;
    int64_t server0;
    if (probe(c, ep, ops, tctx, api_key, w0, 0, &server0, err, errlen)) return -1;
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
    return probe(c, ep, ops, tctx, api_key, w, 1, &out->confirmed, err, errlen);
}

static char *header_json(const struct slt_config *c, const struct endpoint *ep,
                         const struct calibration *cal_result, const char *tokenizer,
                         const char *transport, const struct price *price)
{
    cJSON *cfg;
    cJSON *h = run_header_new(
        "slt", &(struct run_target){c->f.url, ep->addr_text, c->f.model, transport, !c->f.insecure},
        &cfg);
    cJSON_AddStringToObject(cfg, "endpoint", c->endpoint);
    if (c->auto_ladder) {
        cJSON_AddStringToObject(cfg, "concurrency", "auto");
        cJSON_AddNumberToObject(cfg, "max_concurrency", c->max_concurrency);
    } else {
        cJSON *a = cJSON_AddArrayToObject(cfg, "concurrency");
        for (int i = 0; i < c->nconc; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(c->conc[i]));
    }
    cJSON_AddNumberToObject(cfg, "phase_s", c->phase_s);
    cJSON_AddNumberToObject(cfg, "ramp_s", c->ramp_s);
    cJSON_AddNumberToObject(cfg, "drain_s", c->drain_s);
    cJSON_AddNumberToObject(cfg, "input_tokens_target", c->input_tokens);
    cJSON_AddNumberToObject(cfg, "output_tokens", c->output_tokens);
    cJSON_AddBoolToObject(cfg, "ignore_eos", c->ignore_eos);
    cJSON_AddStringToObject(cfg, "extra_body", c->f.extra_body ? c->f.extra_body : "");
    cJSON_AddNumberToObject(cfg, "threads", c->f.threads);
    cJSON_AddNumberToObject(cfg, "request_timeout_s", c->f.request_timeout_s);
    cJSON_AddNumberToObject(cfg, "idle_timeout_s", c->f.idle_timeout_s);
    cJSON_AddNumberToObject(cfg, "connect_timeout_s", c->f.connect_timeout_s);
    cJSON_AddNumberToObject(cfg, "seed", (double)c->f.seed);
    cJSON *cal = cJSON_AddObjectToObject(h, "calibration");
    cJSON_AddNumberToObject(cal, "filler_words", cal_result->words);
    /* what the server will count: with a tokenizer, the confirming probe's own figure */
    cJSON_AddNumberToObject(
        cal, "expected_prompt_tokens",
        (double)(cal_result->by_tokenizer ? cal_result->confirmed : cal_result->expected));
    if (cal_result->by_tokenizer) {
        char method[300];
        snprintf(method, sizeof method,
                 "exact by tokenizer %s: template overhead from one probe "
                 "(usage.prompt_tokens minus the tokenizer's count), words chosen for an exact "
                 "count, a second probe confirms",
                 tokenizer);
        cJSON_AddStringToObject(cal, "method", method);
        cJSON_AddNumberToObject(cal, "tokenizer_prompt_tokens", (double)cal_result->content_tokens);
        cJSON_AddNumberToObject(cal, "template_overhead_tokens", (double)cal_result->overhead);
        cJSON_AddNumberToObject(cal, "tokenizer_expected_prompt_tokens",
                                (double)cal_result->expected);
        cJSON_AddNumberToObject(cal, "server_prompt_tokens_confirmed",
                                (double)cal_result->confirmed);
        cJSON_AddBoolToObject(cal, "server_agrees", cal_result->confirmed == cal_result->expected);
    } else {
        cJSON_AddStringToObject(cal, "method",
                                "3 probes with max_tokens=1; slope and overhead of "
                                "usage.prompt_tokens over filler words");
    }
    if (price) {
        cJSON *cost = cJSON_AddObjectToObject(h, "cost");
        cJSON_AddStringToObject(cost, "accelerator_type", c->accelerator_type);
        cJSON_AddNumberToObject(cost, "accelerators", c->accelerators);
        cJSON_AddNumberToObject(cost, "reference_speed_tokens_per_s", c->reference_speed);
        cJSON_AddNumberToObject(cost, "usd_per_accelerator_hour", price->usd_per_accelerator_hour);
        cJSON_AddStringToObject(cost, "price_basis", price->basis);
        cJSON_AddStringToObject(cost, "price_source", price->source);
        cJSON_AddStringToObject(cost, "price_taken", price->taken);
    }
    char *s = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    return s;
}

static uint64_t total_events(struct worker *w, int n)
{
    uint64_t s = 0;
    for (int i = 0; i < n; i++) s += atomic_load(&w[i].stats.events);
    return s;
}

static void set_targets(struct worker *w, int n, int total)
{
    for (int i = 0; i < n; i++) atomic_store(&w[i].ctl.target, total / n + (i < total % n));
}

struct drain_progress {
    int phase, concurrency;
};

static void show_drain(void *arg, int in_flight)
{
    const struct drain_progress *d = arg;
    fprintf(stderr, "\r\033[Kphase %d  concurrency %d  drain  in flight %d", d->phase,
            d->concurrency, in_flight);
}

/* Runs one phase; returns 1 if interrupted. */
static int run_phase(const struct slt_config *c, struct run_env *e, int idx, int conc, int tty)
{
    struct worker *w = e->w;
    int n = e->threads;
    int64_t t0 = clock_now_ns();
    int64_t ws = t0 + (int64_t)(c->ramp_s * 1e9), we = ws + (int64_t)(c->phase_s * 1e9);
    run_env_put_phase(e, &(struct rec_phase){.index = idx,
                                             .concurrency = conc,
                                             .t_start = t0,
                                             .t_window_start = ws,
                                             .t_window_end = we});
    eventlog_sync(e->log); /* the phase record precedes its requests in the log */
    for (int i = 0; i < n; i++) {
        atomic_store(&w[i].ctl.phase, idx);
        atomic_store(&w[i].ctl.issuing, 1);
    }
    double stagger = c->ramp_s / 2;
    uint64_t ev0 = total_events(w, n);
    int64_t tev = t0;
    double rate = 0;
    while (!run_interrupted) {
        int64_t now = clock_now_ns();
        if (now >= we) break;
        double el = (double)(now - t0) / 1e9;
        int target = stagger > 0 && el < stagger ? (int)ceil(conc * el / stagger) : conc;
        if (target < 1) target = 1;
        set_targets(w, n, target);
        if (tty) {
            uint64_t ev = total_events(w, n);
            if (now - tev > 500000000LL) {
                rate = (double)(ev - ev0) / ((double)(now - tev) / 1e9);
                ev0 = ev;
                tev = now;
            }
            fprintf(stderr,
                    "\r\033[Kphase %d  concurrency %d  %s %.0f/%.0f s  in flight %d  "
                    "%.0f chunks/s",
                    idx, conc, now < ws ? "ramp" : "measure", el, c->ramp_s + c->phase_s,
                    run_env_in_flight(e), rate);
        }
        run_sleep_s(0.05);
    }
    int64_t t_stop = clock_now_ns();
    for (int i = 0; i < n; i++) atomic_store(&w[i].ctl.issuing, 0);
    struct drain_progress dp = {idx, conc};
    run_env_drain(e, c->drain_s, tty ? show_drain : NULL, &dp);
    if (tty) fprintf(stderr, "\r\033[K");
    /* an interrupted window ends where sending stopped */
    if (t_stop < we) we = t_stop < ws ? ws : t_stop;
    run_env_put_phase(e, &(struct rec_phase){.index = idx,
                                             .concurrency = conc,
                                             .t_start = t0,
                                             .t_window_start = ws,
                                             .t_window_end = we,
                                             .t_end = clock_now_ns()});
    return run_interrupted ? 1 : 0;
}

int cmd_slt(int argc, char **argv)
{
    struct slt_config c;
    int rc = parse_args(argc, argv, &c);
    if (rc) return rc;
    char err[512];
    struct price price;
    if (c.accelerator_type) {
        if (c.accelerators < 1) c.accelerators = 1;
        if (c.reference_speed <= 0) c.reference_speed = 30;
        if (price_lookup(c.accelerator_type, c.prices_file, c.price_basis, c.price_per_hour, &price,
                         err, sizeof err)) {
            fprintf(stderr, "strobe slt: %s.\n", err);
            return 2;
        }
    } else if (c.price_per_hour > 0 || c.prices_file) {
        fprintf(stderr, "strobe slt: --price-per-hour and --prices need --accelerator-type; see "
                        "strobe slt --help.\n");
        return 2;
    }
    int most = c.auto_ladder ? c.max_concurrency : 0;
    for (int i = 0; i < c.nconc; i++) most = c.conc[i] > most ? c.conc[i] : most;
    struct run_env e;
    struct run_env_options ro = run_flags_env(&c.f, "slt", most);
    ro.emu_counts_with_tokenizer = 1;
    ro.completions = strcmp(c.endpoint, "chat") != 0;
    if ((rc = run_env_open(&e, &ro))) return rc;
    c.f.url = e.url;
    c.f.threads = e.threads; /* --transport dpdk's default fits the ports found */
    c.f.model = e.model;
    struct calibration cal = {0};
    rc = e.tokenizer
             ? calibrate_exact(&c, &e.ep, e.ops, e.ctl_tctx, e.api_key, e.tokenizer, &cal, err,
                               sizeof err)
             : calibrate_linear(&c, &e.ep, e.ops, e.ctl_tctx, e.api_key, &cal, err, sizeof err);
    if (rc && run_interrupted) {
        fprintf(stderr,
                "strobe slt: interrupted during calibration, before the run: nothing was "
                "measured and %s was not written.\n",
                c.f.out);
        run_env_close(&e);
        return 3;
    }
    if (rc) {
        fprintf(stderr, "strobe slt: %s.\n", err);
        run_env_close(&e);
        return 1;
    }
    if (cal.by_tokenizer && cal.confirmed != cal.expected)
        fprintf(stderr,
                "strobe: warning: the server counts %lld prompt tokens where tokenizer %s "
                "and the measured template overhead give %lld: the server's tokenizer or "
                "template differs; prompts are still sized by the server's count\n",
                (long long)cal.confirmed, e.tokenizer_name, (long long)cal.expected);
    struct template_params tp = {&e.ep,          c.f.model,       strcmp(c.endpoint, "chat") == 0,
                                 cal.words,      c.output_tokens, c.ignore_eos,
                                 c.f.extra_body, e.api_key,       c.f.seed};
    struct request_template tmpl;
    if (template_build(&tmpl, &tp, err, sizeof err)) {
        fprintf(stderr, "strobe slt: %s.\n", err);
        run_env_close(&e);
        return 2;
    }
    char *header = header_json(&c, &e.ep, &cal, e.tokenizer_name, e.transport_desc,
                               c.accelerator_type ? &price : NULL);
    struct worker_config wc = {.build = template_fill,
                               .build_arg = &tmpl,
                               .max_request_bytes = tmpl.len,
                               .request_timeout_s = c.f.request_timeout_s,
                               .idle_timeout_s = c.f.idle_timeout_s,
                               .connect_timeout_s = c.f.connect_timeout_s};
    rc = run_env_start(&e, c.f.out, header, &wc);
    free(header);
    if (rc) {
        template_free(&tmpl);
        return rc;
    }
    fprintf(stderr,
            "strobe: %s model %s, prompt %d filler words = %lld prompt tokens by the "
            "server's count, %d threads, log in %s\n",
            c.f.url, c.f.model, cal.words,
            (long long)(cal.by_tokenizer ? cal.confirmed : cal.expected), c.f.threads, c.f.out);
    int tty = isatty(2);
    int was_interrupted = 0;
    double tps[MAX_PHASES];
    for (int k = 0; k < MAX_PHASES; k++) {
        int conc = c.auto_ladder ? ladder(k) : (k < c.nconc ? c.conc[k] : 0);
        if (!conc || (c.auto_ladder && conc > c.max_concurrency)) break;
        if (run_phase(&c, &e, k, conc, tty)) {
            was_interrupted = 1;
            break;
        }
        /* the last listed phase is summarised by the final results, computed next */
        int last_listed = !c.auto_ladder && k + 1 >= c.nconc;
        if (last_listed) break;
        eventlog_sync(e.log);
        struct phase_metrics m;
        if (results_compute_phase(c.f.out, NULL, k, &m, err, sizeof err) == 0) {
            tps[k] = m.system_output_tps;
            fprintf(stderr,
                    "strobe: phase %d concurrency %d: %.1f output tokens/s, speed p50 "
                    "%.2f tokens/s/query, TTFT p50 %.4f s, %zu/%zu requests failed\n",
                    k, conc, m.system_output_tps, m.speed.p50, m.ttft.p50, m.failed, m.sent);
        } else {
            tps[k] = 0;
            fprintf(stderr, "strobe: phase %d concurrency %d: no summary (%s)\n", k, conc, err);
        }
        if (c.auto_ladder && slt_plateau_reached(tps, (size_t)k + 1, 1.02, 2)) {
            fprintf(stderr, "strobe: throughput plateaued (two phases below 1.02 x the best)\n");
            break;
        }
    }
    rc = run_env_finish(&e, c.f.out, was_interrupted);
    template_free(&tmpl);
    return rc;
}
