/* `strobe slt`: the System Load Test. Closed loop at fixed concurrency per phase; phases
 * 1, 2, 4 … 64, then +64 until system output throughput plateaus (or a given list).
 * Each phase: staggered ramp-up over the first half of --ramp-s, a measured window of
 * --phase-s, then a drain (no new requests; in-flight ones finish, up to --drain-s).
 * Open loop instead (--rate, --schedule): requests fall due by an arrival process, one phase
 * per rate, or one phase replaying a schedule (control/workload/arrivals.h). */
#include "flag_once.h"
#include "commands.h"

#include "tokenizer.h"

#include "rank_run.h"
#include "ranks.h"
#include "run_env.h"
#include "run_flags.h"
#include "slt_calibrate.h"
#include "num_arg.h"
#include "eventlog.h"
#include "prices.h"
#include "progress.h"
#include "request_template.h"
#include "arrivals.h"
#include "results.h"
#include "worker.h"
#include "must_alloc.h"

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
    /* open loop: --arrival, --rate (one phase each) or --schedule (one phase) */
    const char *arrival, *schedule_file;
    double rates[MAX_PHASES];
    int nrates, max_in_flight;
    double max_dispatch_lag_s;
    struct arrival_spec spec;
    double *schedule;
    size_t nschedule;
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
        "  --price-basis committed|on-demand   (default committed, on-demand when none)\n"
        "Open loop instead of concurrency (requests fall due whether or not others ended;\n"
        "latency runs from when each was due):\n"
        "  --rate R[,R2,...]       arrivals per second, one phase per rate (ramp, window, drain)\n"
        "  --arrival poisson|gamma:CV|constant   the process of --rate (default poisson)\n"
        "  --schedule FILE         one phase replaying these times (seconds, one per line)\n"
        "  --max-in-flight N       cap on requests in flight; a due request waits for a slot\n"
        "                          (counted as held) (default: no cap)\n"
        "  --max-dispatch-lag-s S  a phase whose requests leave later than due by more than S\n"
        "                          at p99 is not valid: the client fell behind (default 0.05)\n");
    run_flags_usage(f);
    fprintf(
        f,
        "\nThe API key, if any, is read from STROBE_API_KEY and never written anywhere.\n"
        "Exit status: 0 done and valid, 1 run failed, 2 bad command line, 3 interrupted (results\n"
        "kept), 4 done but not valid (the reason is printed; results are kept).\n");
}

/* The open-loop flags hang together: a process needs --rate, --rate and --schedule exclude
 * each other and --concurrency, and the schedule file is read now, not mid-run. */
static int open_loop_check(struct slt_config *c, int concurrency_given)
{
    char err[600];
    int open = c->nrates || c->schedule_file;
    if (!open) {
        if (c->arrival || c->max_in_flight)
            return run_flags_bad("slt", "--arrival and --max-in-flight need --rate or --schedule");
        return 0;
    }
    if (concurrency_given)
        return run_flags_bad("slt", "--concurrency is the closed loop; --rate and --schedule are "
                                    "the open loop: give one of them");
    if (c->nrates && c->schedule_file)
        return run_flags_bad("slt", "give --rate or --schedule, not both");
    if (c->schedule_file && c->arrival)
        return run_flags_bad("slt", "--arrival sets the process of --rate; a --schedule gives "
                                    "its own times");
    if (c->schedule_file) {
        if (arrival_schedule_load(c->schedule_file, &c->schedule, &c->nschedule, err, sizeof err))
            return run_flags_bad("slt", "%s", err);
        c->spec = (struct arrival_spec){
            .kind = ARRIVAL_SCHEDULE, .schedule_s = c->schedule, .nschedule = c->nschedule};
    } else if (arrival_parse(c->arrival ? c->arrival : "poisson", &c->spec, err, sizeof err)) {
        return run_flags_bad("slt", "%s", err);
    }
    c->spec.seed = c->f.seed;
    return 0;
}

/* A list like 1,2,4 into out[0..*n) (at most MAX_PHASES), each in [lo, hi] (whole numbers
 * when whole): 0; 1 when a number is above hi or overflows; -1 for anything else wrong (an
 * empty list or item, a trailing comma, a number below lo or not whole, text after one). */
static int number_list(const char *arg, double lo, double hi, int whole, double *out, int *n)
{
    *n = 0;
    const char *p = arg;
    do {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || (*end && *end != ',') || *n == MAX_PHASES) return -1;
        if (errno == ERANGE && fabs(v) > 1) return 1;
        if (errno || !isfinite(v) || v < lo || (whole && v != floor(v))) return -1;
        if (v > hi) return 1;
        out[(*n)++] = v;
        p = *end ? end + 1 : end;
        if (*end && !*p) return -1; /* a trailing comma: an item left out by mistake? */
    } while (*p);
    return *n ? 0 : -1;
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
    c->max_dispatch_lag_s = 0.05;
    int concurrency_given = 0;
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
        O_ARRIVAL,
        O_RATE,
        O_SCHEDULE,
        O_MAXIF,
        O_MAXLAG,
        O_HELP
    };
    static const struct option own[] = {
        {"concurrency", 1, 0, O_CONC},    {"max-concurrency", 1, 0, O_MAXC},
        {"phase-s", 1, 0, O_PHASE},       {"ramp-s", 1, 0, O_RAMP},
        {"drain-s", 1, 0, O_DRAIN},       {"input-tokens", 1, 0, O_IN},
        {"output-tokens", 1, 0, O_OUTT},  {"ignore-eos", 0, 0, O_EOS},
        {"endpoint", 1, 0, O_EP},         {"accelerator-type", 1, 0, O_ATYPE},
        {"accelerators", 1, 0, O_ACC},    {"reference-speed", 1, 0, O_REF},
        {"price-per-hour", 1, 0, O_PPH},  {"prices", 1, 0, O_PRICES},
        {"price-basis", 1, 0, O_PBASIS},  {"arrival", 1, 0, O_ARRIVAL},
        {"rate", 1, 0, O_RATE},           {"schedule", 1, 0, O_SCHEDULE},
        {"max-in-flight", 1, 0, O_MAXIF}, {"max-dispatch-lag-s", 1, 0, O_MAXLAG},
        {"help", 0, 0, O_HELP},           {0, 0, 0, 0}};
    struct option *opts = run_flags_table(own);
    int o, rc = 0;
    double v;
    opterr = 0;
    optind = 1;
    struct flag_once seen = {0};
    static const char *const repeatable[] = {"power", NULL};
    while (!rc && (o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if ((rc = flag_once(&seen, opts, o, optarg, "slt", repeatable))) continue;
        int taken = run_flags_take(&c->f, o, optarg, argv[optind - 1], "slt");
        if (taken) {
            rc = taken == 2 ? 2 : 0;
            continue;
        }
        switch (o) {
        case O_EOS: c->ignore_eos = 1; break;
        case O_ARRIVAL: c->arrival = optarg; break;
        case O_SCHEDULE: c->schedule_file = optarg; break;
        case O_RATE:
            /* below one a million seconds apart, a phase's arrivals are none or overflow */
            if (number_list(optarg, 1e-6, 1e7, 0, c->rates, &c->nrates))
                rc = run_flags_bad("slt",
                                   "--rate must be a list like 5,10,20 of arrivals per second "
                                   "(at least 0.000001, at most 10000000), got '%s'",
                                   optarg);
            break;
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
            concurrency_given = 1;
            if (!strcmp(optarg, "auto")) {
                c->auto_ladder = 1;
                break;
            }
            c->auto_ladder = 0;
            double conc[MAX_PHASES];
            int list = number_list(optarg, 1, 1000000, 1, conc, &c->nconc);
            if (list == 1)
                rc = run_flags_bad("slt",
                                   "--concurrency: %s holds a number too large (it overflows or is "
                                   "over 1000000)",
                                   optarg);
            else if (list)
                rc = run_flags_bad("slt",
                                   "--concurrency must be 'auto' or a list like 1,2,4 of positive "
                                   "integers, got '%s'",
                                   optarg);
            for (int i = 0; !rc && i < c->nconc; i++) c->conc[i] = (int)conc[i];
            break;
        case O_HELP:
        case 'h': usage(stdout); exit(0);
        case '?':
            rc = run_flags_bad("slt", "unknown option or missing value in '%s'", argv[optind - 1]);
            break;
        default: {
            /* counts are whole; seconds stay below 10^8 so their nanoseconds fit 64 bits */
            int whole = o == O_MAXC || o == O_IN || o == O_OUTT || o == O_ACC || o == O_MAXIF;
            double hi = o == O_MAXC                ? 1000000
                        : whole                    ? 100000000
                        : o == O_REF || o == O_PPH ? INFINITY
                                                   : 1e8;
            if (num_arg("slt", run_flag_name(opts, o), optarg, 0, hi, whole, &v)) {
                rc = 2;
                break;
            }
            /* 0 meant "not given" here: no cost has 0 accelerators, no price or no speed */
            if ((o == O_ACC && v < 1) || ((o == O_PPH || o == O_REF) && !(v > 0))) {
                rc = run_flags_bad("slt", "--%s: %s is not a number above 0",
                                   run_flag_name(opts, o), optarg);
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
            case O_MAXIF: c->max_in_flight = (int)v; break;
            case O_MAXLAG: c->max_dispatch_lag_s = v; break;
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
    return open_loop_check(c, concurrency_given);
}

/* Concurrency of phase k of the auto ladder: 1, 2, 4, …, 64, then +64. */
static int ladder(int k) { return k <= 6 ? 1 << k : 64 * (k - 5); }

static char *header_json(const struct slt_config *c, const struct endpoint *ep,
                         const struct calibration *cal_result, const char *tokenizer,
                         const char *transport, const struct price *price)
{
    cJSON *cfg;
    cJSON *h = run_header_new(
        "slt", &(struct run_target){c->f.url, ep->addr_text, c->f.model, transport, !c->f.insecure},
        &cfg);
    cJSON_AddStringToObject(cfg, "endpoint", c->endpoint);
    if (c->nrates || c->schedule_file) {
        /* the open loop's phases are in "arrival" */
    } else if (c->auto_ladder) {
        cJSON_AddStringToObject(cfg, "concurrency", "auto");
        cJSON_AddNumberToObject(cfg, "max_concurrency", c->max_concurrency);
    } else {
        cJSON *a = cJSON_AddArrayToObject(cfg, "concurrency");
        for (int i = 0; i < c->nconc; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(c->conc[i]));
    }
    if (c->nrates || c->schedule_file) {
        cJSON *a = cJSON_AddObjectToObject(cfg, "arrival");
        char process[64];
        arrival_describe(&c->spec, process, sizeof process);
        cJSON_AddStringToObject(a, "process", process);
        if (c->schedule_file) {
            cJSON_AddStringToObject(a, "schedule_file", c->schedule_file);
            cJSON_AddNumberToObject(a, "scheduled_arrivals", (double)c->nschedule);
        } else {
            cJSON *r = cJSON_AddArrayToObject(a, "rates_per_s");
            for (int i = 0; i < c->nrates; i++)
                cJSON_AddItemToArray(r, cJSON_CreateNumber(c->rates[i]));
        }
        cJSON_AddNumberToObject(a, "max_in_flight", c->max_in_flight);
        cJSON_AddNumberToObject(a, "max_dispatch_lag_s", c->max_dispatch_lag_s);
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
        if (cal_result->words > 0)
            cJSON_AddBoolToObject(cal, "server_agrees",
                                  cal_result->confirmed == cal_result->expected);
        else /* no filler words: the comparison says nothing (the run's warning says why) */
            cJSON_AddNullToObject(cal, "server_agrees");
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
    char *s = must_have(cJSON_PrintUnformatted(h), "the run's header");
    cJSON_Delete(h);
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

/* Phase idx of conc requests in flight, starting lead_ns from now (on this process's clock). */
static struct rank_command phase_plan(const struct slt_config *c, int idx, int conc,
                                      int64_t lead_ns)
{
    int64_t t0 = clock_now_ns() + lead_ns;
    int64_t ws = t0 + (int64_t)(c->ramp_s * 1e9);
    return (struct rank_command){.op = RANK_PHASE,
                                 .index = idx,
                                 .concurrency = conc,
                                 .share = conc,
                                 .t_start = t0,
                                 .t_window_start = ws,
                                 .t_window_end = ws + (int64_t)(c->phase_s * 1e9)};
}

/* Runs one phase (this process's share of it, from p's start on its clock); returns 1 if
 * interrupted. Its record names the whole run's concurrency. */
static int run_phase(const struct slt_config *c, struct run_env *e, const struct rank_command *p,
                     int tty)
{
    struct worker *w = e->w;
    int n = e->threads;
    int idx = p->index, conc = p->concurrency, share = p->share;
    int64_t t0 = p->t_start, ws = p->t_window_start, we = p->t_window_end;
    while (clock_now_ns() < t0 && !run_interrupted) run_sleep_s(0.001);
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
    struct progress pr;
    progress_begin(&pr, e, idx);
    char what[64];
    snprintf(what, sizeof what, "phase %d  concurrency %d", idx, conc);
    while (!run_interrupted) {
        int64_t now = clock_now_ns();
        if (now >= we) break;
        double el = (double)(now - t0) / 1e9;
        int target = stagger > 0 && el < stagger ? (int)ceil(share * el / stagger) : share;
        if (target < 1 && share) target = 1;
        set_targets(w, n, target);
        progress_show(&pr, e, what, now < ws ? "ramp" : "measure", c->ramp_s + c->phase_s);
        run_sleep_s(0.05);
    }
    progress_end(&pr);
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

static struct rank_report phase_report(const struct run_env *e)
{
    struct rank_report r = {.interrupted = run_interrupted != 0};
    for (int i = 0; i < e->threads; i++) {
        r.started += (int64_t)atomic_load(&e->w[i].stats.started);
        r.events += (int64_t)atomic_load(&e->w[i].stats.events);
    }
    return r;
}

/* The ladder, on rank 0 or the only process: each phase (its share here, the others' by
 * command), its summary over every rank's requests, the plateau decision. 0 done, 1
 * interrupted, -1 a rank failed (said). */
static int run_ladder(const struct slt_config *c, struct run_env *e, int tty)
{
    char err[512];
    double tps[MAX_PHASES];
    int ranks = rank_run_active();
    for (int k = 0; k < MAX_PHASES; k++) {
        int conc = c->auto_ladder ? ladder(k) : (k < c->nconc ? c->conc[k] : 0);
        if (!conc || (c->auto_ladder && conc > c->max_concurrency)) break;
        struct rank_command p = phase_plan(c, k, conc, ranks ? RANK_LEAD_NS : 0);
        if (ranks && (rank_run_sync(e, k) || rank_run_command(&p, 0))) return -1;
        int interrupted = run_phase(c, e, &p, tty);
        if (ranks) {
            struct rank_report mine = phase_report(e);
            eventlog_sync(e->log);
            if (rank_run_report(&mine, NULL, c->drain_s + RANK_SLACK_S)) return -1;
        }
        if (interrupted) return 1;
        /* the last listed phase is summarised by the final results, computed next */
        int last_listed = !c->auto_ladder && k + 1 >= c->nconc;
        if (last_listed) break;
        eventlog_sync(e->log);
        struct phase_metrics m;
        if (results_compute_phase(c->f.out, NULL, k, &m, err, sizeof err) == 0) {
            tps[k] = m.system_output_tps;
            fprintf(stderr,
                    "strobe: phase %d concurrency %d: %.1f output tokens/s, speed p50 "
                    "%.2f tokens/s/query, TTFT p50 %.4f s, %zu/%zu requests failed\n",
                    k, conc, m.system_output_tps, m.speed.p50, m.ttft.p50, m.failed, m.sent);
        } else {
            tps[k] = 0;
            fprintf(stderr, "strobe: phase %d concurrency %d: no summary (%s)\n", k, conc, err);
        }
        if (c->auto_ladder && slt_plateau_reached(tps, (size_t)k + 1, 1.02, 2)) {
            fprintf(stderr, "strobe: throughput plateaued (two phases below 1.02 x the best)\n");
            break;
        }
    }
    return 0;
}

/* A rank other than 0: runs its share of each phase rank 0 commands, until told to stop.
 * 0 done, -1 a rank failed (said). */
static int follow_ladder(const struct slt_config *c, struct run_env *e)
{
    /* rank 0 summarises a phase before it sends the next */
    double wait_s = c->ramp_s + c->phase_s + c->drain_s + 600;
    for (;;) {
        struct rank_command p;
        if (rank_run_sync(e, 0) || rank_run_command(&p, wait_s)) return -1;
        if (p.op == RANK_STOP) return 0;
        run_phase(c, e, &p, 0);
        struct rank_report mine = phase_report(e);
        eventlog_sync(e->log);
        if (rank_run_report(&mine, NULL, 0)) return -1;
    }
}

/* A rank other than 0 takes the prompt's size from rank 0's calibration in the header. */
static int calibration_from_header(const char *header, struct calibration *cal)
{
    cJSON *h = cJSON_Parse(header);
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(h, "calibration"), "filler_words");
    int ok = cJSON_IsNumber(w);
    if (ok) cal->words = w->valueint;
    cJSON_Delete(h);
    return ok ? 0 : -1;
}

/* One open-loop phase: arrivals at `rate` per second (or the schedule) from its start; the
 * window opens after --ramp-s (a schedule's covers it all) and lasts --phase-s; then drain. */
static int run_open_phase(const struct slt_config *c, struct run_env *e,
                          const struct request_template *tmpl, int idx, double rate, int tty)
{
    int n = e->threads;
    int64_t t0 = clock_now_ns();
    int64_t ws = t0 + (int64_t)(c->ramp_s * 1e9), we = ws + (int64_t)(c->phase_s * 1e9);
    if (c->schedule) {
        ws = t0;
        we = t0 + (int64_t)(c->schedule[c->nschedule - 1] * 1e9) + 1;
    }
    struct rec_phase ph = {.index = idx,
                           .concurrency = c->max_in_flight,
                           .t_start = t0,
                           .t_window_start = ws,
                           .t_window_end = we};
    run_env_put_phase(e, &ph);
    eventlog_sync(e->log);
    struct arrival_spec spec = c->spec;
    spec.rate_per_s = rate;
    spec.seed ^= (uint64_t)(idx + 1) * 0x9e3779b97f4a7c15ULL; /* phases draw apart */
    struct arrival_source **src = must_calloc((size_t)n, sizeof *src, "the workers' arrivals");
    for (int i = 0; i < n; i++) {
        src[i] = arrival_source_new(&spec, tmpl, i, n, t0, c->max_in_flight);
        atomic_store(&e->w[i].ctl.phase, idx);
        atomic_store(&e->w[i].ctl.source, arrival_source_get(src[i]));
        atomic_store(&e->w[i].ctl.issuing, 1);
    }
    struct progress pr;
    progress_begin(&pr, e, idx);
    char what[96];
    if (c->schedule)
        snprintf(what, sizeof what, "phase %d  schedule", idx);
    else
        snprintf(what, sizeof what, "phase %d  %g requests/s", idx, rate);
    while (!run_interrupted) {
        int64_t now = clock_now_ns();
        if (now >= we) break;
        progress_show(&pr, e, what, now < ws ? "ramp" : "measure", (double)(we - t0) / 1e9);
        run_sleep_s(0.05);
    }
    progress_end(&pr);
    int64_t t_stop = clock_now_ns();
    for (int i = 0; i < n; i++) atomic_store(&e->w[i].ctl.issuing, 0);
    run_env_drain(e, c->drain_s, NULL, NULL);
    for (int i = 0; i < n; i++) atomic_store(&e->w[i].ctl.source, NULL);
    run_env_wait_workers_let_go(e);
    /* arrivals due in the last --max-dispatch-lag-s before the stop may rightly be unsent yet */
    int64_t due_by = t_stop - (int64_t)(c->max_dispatch_lag_s * 1e9);
    uint64_t unsent = 0;
    for (int i = 0; i < n; i++) unsent += arrival_source_unsent(src[i], due_by);
    struct log_record mark = rec_mark_encode(&(struct rec_mark){.kind = MARK_ARRIVALS_UNSENT,
                                                                .t = clock_now_ns(),
                                                                .phase = idx,
                                                                .unsent = (int64_t)unsent});
    eventlog_put(e->log, n, &mark, NULL, 0);
    for (int i = 0; i < n; i++) arrival_source_free(src[i]);
    free(src);
    if (tty) fprintf(stderr, "\r\033[K");
    if (t_stop < we) we = t_stop < ws ? ws : t_stop;
    ph.t_window_end = we;
    ph.t_end = clock_now_ns();
    run_env_put_phase(e, &ph);
    return run_interrupted ? 1 : 0;
}

/* The open-loop phases (--rate or --schedule), each summarised but the last. 1 when
 * interrupted, else 0. One process only: arrivals are not split over MPI ranks. */
static int run_open_phases(const struct slt_config *c, struct run_env *e,
                           const struct request_template *tmpl, int tty)
{
    char err[512];
    int open_phases = c->schedule ? 1 : c->nrates;
    for (int k = 0; k < open_phases; k++) {
        if (run_open_phase(c, e, tmpl, k, c->schedule ? 0 : c->rates[k], tty)) return 1;
        if (k + 1 >= open_phases) break; /* the last is summarised by the final results */
        eventlog_sync(e->log);
        struct phase_metrics m;
        if (results_compute_phase(c->f.out, NULL, k, &m, err, sizeof err) == 0)
            fprintf(stderr,
                    "strobe: phase %d at %g requests/s: %.1f output tokens/s, TTFT p50 %.4f s, "
                    "dispatch lag p99 %.4f s, %zu/%zu requests failed\n",
                    k, c->rates[k], m.system_output_tps, m.ttft.p50, m.dispatch_lag_s.p99, m.failed,
                    m.sent);
    }
    return 0;
}

int cmd_slt(int argc, char **argv)
{
    struct slt_config c;
    int rc = parse_args(argc, argv, &c);
    if (rc) return rc;
    char err[512];
    if (rank_run_active() && !c.f.url) {
        if (!ranks_rank())
            fprintf(stderr, "strobe slt: under mpirun every rank needs the server's --url (the "
                            "built-in emulator listens on rank 0's loopback only); start "
                            "strobe-emu on a reachable address and give its URL.\n");
        return 2;
    }
    if (rank_run_active() && (c.nrates || c.schedule)) {
        if (!ranks_rank())
            fprintf(stderr, "strobe slt: --rate and --schedule run in one process only (arrivals "
                            "are not split over MPI ranks); give --concurrency under mpirun.\n");
        return 2;
    }
    struct price price;
    if (c.accelerator_type) {
        if (c.accelerators < 1) c.accelerators = 1;
        if (c.reference_speed <= 0) c.reference_speed = 30;
        if (price_lookup(c.accelerator_type, c.prices_file, c.price_basis, c.price_per_hour, &price,
                         err, sizeof err)) {
            fprintf(stderr, "strobe slt: %s.\n", err);
            return 2;
        }
    } else if (c.price_per_hour > 0 || c.prices_file || c.accelerators > 0) {
        fprintf(stderr, "strobe slt: --price-per-hour, --prices and --accelerators need "
                        "--accelerator-type; see strobe slt --help.\n");
        return 2;
    }
    /* the open loop's sessions: its cap, else room for a server that falls well behind */
    int most = c.nrates || c.schedule ? (c.max_in_flight ? c.max_in_flight : 10000)
               : c.auto_ladder        ? c.max_concurrency
                                      : 0;
    for (int i = 0; i < c.nconc; i++) most = c.conc[i] > most ? c.conc[i] : most;
    int me = ranks_rank();
    most = rank_share(most, me, ranks_size());
    struct run_env e;
    struct run_env_options ro = run_flags_env(&c.f, "slt", most);
    ro.emu_counts_with_tokenizer = 1;
    ro.completions = strcmp(c.endpoint, "chat") != 0;
    if ((rc = run_env_open(&e, &ro))) return rc;
    c.f.url = e.url;
    c.f.threads = e.threads; /* --transport dpdk's default fits the ports found */
    c.f.model = e.model;
    struct calibration cal = {0};
    struct calibration_target target = {
        &e.ep,
        e.ops,
        e.ctl_tctx,
        e.api_key,
        c.f.model,
        c.f.extra_body,
        strcmp(c.endpoint, "chat") == 0,
        c.f.seed,
        {c.f.request_timeout_s, c.f.idle_timeout_s, c.f.connect_timeout_s, 0},
        c.input_tokens};
    /* rank 0 calibrates for every rank */
    rc = me            ? 0
         : e.tokenizer ? calibrate_exact(&target, e.tokenizer, &cal, err, sizeof err)
                       : calibrate_linear(&target, &cal, err, sizeof err);
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
    long long sized = (long long)(cal.by_tokenizer ? cal.confirmed : cal.expected);
    if (!me && cal.words == 0 && sized > c.input_tokens)
        /* the nonce and the chat template alone are more than was asked for */
        fprintf(stderr,
                "strobe: warning: --input-tokens %d cannot be met: the shortest prompt (the "
                "nonce and the server's chat template, no filler words) is %lld tokens by the "
                "server's count, so every prompt is %lld; ask for %lld or more\n",
                c.input_tokens, sized, sized, sized);
    /* with no filler words the overhead probe's count at other lengths does not carry over
     * (tokens merge across the nonce's edge): a difference then says nothing of the server */
    if (cal.by_tokenizer && cal.words > 0 && cal.confirmed != cal.expected)
        fprintf(stderr,
                "strobe: warning: the server counts %lld prompt tokens where tokenizer %s "
                "and the measured template overhead give %lld: the server's tokenizer or "
                "template differs; prompts are still sized by the server's count\n",
                (long long)cal.confirmed, e.tokenizer_name, (long long)cal.expected);
    char *header =
        rank_run_header("slt",
                        me ? NULL
                           : header_json(&c, &e.ep, &cal, e.tokenizer_name, e.transport_desc,
                                         c.accelerator_type ? &price : NULL),
                        &rc);
    if (!rc && me && calibration_from_header(header, &cal)) {
        fprintf(stderr, "strobe slt: rank %d: rank 0's header has no calibration.\n", me);
        rc = 1;
    }
    if (rc) {
        free(header);
        run_env_close(&e);
        return 1;
    }
    /* each rank's own nonces: no two ranks send the same prompt */
    struct template_params tp = {
        &e.ep,          c.f.model,       strcmp(c.endpoint, "chat") == 0,
        cal.words,      c.output_tokens, c.ignore_eos,
        c.f.extra_body, e.api_key,       c.f.seed + 1000003ULL * (uint64_t)me};
    struct request_template tmpl;
    if (template_build(&tmpl, &tp, err, sizeof err)) {
        fprintf(stderr, "strobe slt: %s.\n", err);
        free(header);
        run_env_close(&e);
        return 2;
    }
    struct worker_config wc = {.build = template_fill,
                               .build_arg = &tmpl,
                               .max_request_bytes = tmpl.len,
                               .request_timeout_s = c.f.request_timeout_s,
                               .idle_timeout_s = c.f.idle_timeout_s,
                               .connect_timeout_s = c.f.connect_timeout_s};
    char dir[4200];
    if (rank_run_dir(c.f.out, dir, sizeof dir)) {
        free(header);
        template_free(&tmpl);
        run_env_close(&e);
        return 1;
    }
    rc = run_env_start(&e, dir, header, &wc);
    free(header);
    if (rc) {
        template_free(&tmpl);
        return rc;
    }
    if (!me)
        fprintf(stderr,
                "strobe: %s model %s, prompt %d filler words = %lld prompt tokens by the "
                "server's count, %d threads%s, log in %s\n",
                c.f.url, c.f.model, cal.words,
                (long long)(cal.by_tokenizer ? cal.confirmed : cal.expected), c.f.threads,
                rank_run_active() ? " per rank" : "", c.f.out);
    int tty = isatty(2) && !rank_run_active();
    int status = c.schedule || c.nrates ? run_open_phases(&c, &e, &tmpl, tty)
                 : me                   ? follow_ladder(&c, &e)
                                        : run_ladder(&c, &e, tty);
    if (status >= 0 && rank_run_stop(&e)) status = -1;
    e.rank_failed = status < 0;
    rc = run_env_finish(&e, dir, status == 1 || run_interrupted);
    template_free(&tmpl);
    free(c.schedule);
    return rc;
}
