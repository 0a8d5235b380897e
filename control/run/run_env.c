#include "run_env.h"

#ifdef STROBE_HAVE_URING
#include "transport_uring.h"
#endif

#include "fdlimit.h"
#include "rank_run.h"
#include "ranks.h"
#include "oneshot.h"
#include "redact.h"
#include "sse.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include "results.h"
#include "must_alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef STROBE_TOKENIZER_DIR
#define STROBE_TOKENIZER_DIR "tokenizers"
#endif

/* --tokenizer auto: the file for the model's family, from $STROBE_TOKENIZERS or the folder
 * scripts/fetch_tokenizers.sh fills. "" when no family matches. */
static void auto_tokenizer(const char *model, int emulator, char *path, size_t n)
{
    const char *dir =
        getenv("STROBE_TOKENIZERS") ? getenv("STROBE_TOKENIZERS") : STROBE_TOKENIZER_DIR;
    char lower[256];
    size_t i = 0;
    for (; model && model[i] && i < sizeof lower - 1; i++)
        lower[i] = (char)(model[i] >= 'A' && model[i] <= 'Z' ? model[i] + 32 : model[i]);
    lower[i] = 0;
    path[0] = 0;
    /* the emulator's words are one token each in o200k */
    if (emulator || strstr(lower, "gpt-oss") || strstr(lower, "o200k"))
        snprintf(path, n, "%s/o200k_base.tiktoken", dir);
    else if (strstr(lower, "deepseek"))
        snprintf(path, n, "%s/deepseek_v3/tokenizer.json", dir);
}

/* Loads the tokenizer (checked, named and hashed for the header, kept for calibration); the
 * analysis loads it from the path the header names. 0, or 2 when a named file is unusable. */
static int choose_tokenizer(struct run_env *e, const char *spec, int emulator)
{
    char err[512];
    if (!spec || !strcmp(spec, "none")) {
        snprintf(e->tokenizer_choice, sizeof e->tokenizer_choice, "none (--tokenizer none)");
        return 0;
    }
    int is_auto = !strcmp(spec, "auto");
    if (is_auto)
        auto_tokenizer(e->model, emulator, e->tokenizer_path, sizeof e->tokenizer_path);
    else
        snprintf(e->tokenizer_path, sizeof e->tokenizer_path, "%s", spec);
    if (!e->tokenizer_path[0]) {
        snprintf(e->tokenizer_choice, sizeof e->tokenizer_choice,
                 "none: no tokenizer known for model %s (give --tokenizer FILE)", e->model);
        return 0;
    }
    struct tokenizer *t = e->tokenizer = tokenizer_load(e->tokenizer_path, err, sizeof err);
    if (!t) {
        if (!is_auto) {
            fprintf(stderr, "strobe %s: --tokenizer: %s.\n", e->cmd, err);
            return 2;
        }
        fprintf(stderr, "strobe: warning: no tokenizer for per-chunk token counts: %s\n", err);
        snprintf(e->tokenizer_choice, sizeof e->tokenizer_choice,
                 "none: auto found no usable %s (run scripts/fetch_tokenizers.sh)",
                 e->tokenizer_path);
        e->tokenizer_path[0] = 0;
        return 0;
    }
    snprintf(e->tokenizer_name, sizeof e->tokenizer_name, "%s", tokenizer_name(t));
    snprintf(e->tokenizer_sha256, sizeof e->tokenizer_sha256, "%s", tokenizer_sha256(t));
    snprintf(e->tokenizer_choice, sizeof e->tokenizer_choice, "%s",
             is_auto ? "auto, by model name" : "--tokenizer");
    return 0;
}

volatile sig_atomic_t run_interrupted;
/* what a signal does once the run's log is closed and results are being computed */
static char stop_message[600];
/* what a second signal during the run says: set once the run's directory is known */
static char second_message[4400] = "\nstrobe: second interrupt: stopping now; the event log keeps "
                                   "what was flushed (strobe analyze RUN_DIR reads it)\n";
static volatile sig_atomic_t analysing;
/* a signal came: apart from run_interrupted, which a log that cannot be written or the
 * built-in emulator's exit also set to stop the run, and after which one signal is still a
 * first one */
static volatile sig_atomic_t signalled;

/* The first SIGINT/SIGTERM/SIGHUP asks the run to stop cleanly (sending stops, what was
 * received is kept); a second one, or one during the final analysis, ends the process at
 * once: the log is already on disk for `strobe analyze`. Only async-signal-safe calls here. */
static void on_signal(int sig)
{
    (void)sig;
    if (analysing || signalled) {
        const char *m = analysing ? stop_message : second_message;
        ssize_t w = write(2, m, strlen(m));
        (void)w;
        _exit(3);
    }
    signalled = 1;
    run_interrupted = 1;
}

static void catch_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal}, was;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* a closed terminal or SSH session: the run ends as interrupted, its results kept; under
     * nohup (SIGHUP ignored) it goes on, as nohup asks */
    if (sigaction(SIGHUP, NULL, &was) == 0 && was.sa_handler != SIG_IGN)
        sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    oneshot_set_cancel(&run_interrupted);
}

/* --server-metrics: a named URL that cannot be read refuses the run; auto on a server
 * without metrics is a warning, as many servers keep them off by default. */
static int open_server_metrics(struct run_env *e, const struct run_env_options *o)
{
    if (!o->server_metrics) return 0;
    int automatic = !strcmp(o->server_metrics, "auto");
    char url[1024], err[1400];
    if (automatic)
        snprintf(url, sizeof url, "%s://%s/metrics", e->ep.tls ? "https" : "http",
                 e->ep.host_header);
    else
        snprintf(url, sizeof url, "%s", o->server_metrics);
    e->server_metrics_rate_hz = o->server_metrics_rate_hz > 0 ? o->server_metrics_rate_hz : 1;
    e->scrape = metrics_scrape_open(url, o->insecure, o->ca_file, err, sizeof err);
    if (e->scrape) {
        fprintf(stderr, "strobe: scraping the server's metrics at %s, %g times a second\n", url,
                e->server_metrics_rate_hz);
        return 0;
    }
    if (automatic) {
        fprintf(stderr, "strobe: warning: %s; the run goes on without them\n", err);
        return 0;
    }
    fprintf(stderr, "strobe %s: %s.\n", e->cmd, err);
    run_env_close(e);
    return 2;
}

int run_env_open(struct run_env *e, const struct run_env_options *o)
{
    memset(e, 0, sizeof *e);
    char err[512];
#ifdef STROBE_HAVE_DPDK
    /* before anything is started: it may restart the process */
    if (o->dpdk && transport_dpdk_prepare(o->threads, err, sizeof err)) {
        fprintf(stderr, "strobe %s: %s.\n", o->cmd, err);
        return 1;
    }
#endif
    catch_signals(); /* from here on, calibration and probes included */
    e->cmd = o->cmd;
    e->url = o->url;
    e->model = o->model;
    e->threads = o->threads;
    e->max_event_bytes = o->max_event_bytes;
    e->progress_s = o->progress_s;
    e->log_plain = o->log_plain;
    /* one socket per in-flight request, plus a margin for logs, epoll and the emulator */
    /* measured: about 20 KiB of strobe per streaming session (scripts/longrun.py), plus the
     * event log's rings and the process itself */
    char what[96];
    snprintf(what, sizeof what, "a run of %ld sessions", o->fds_needed);
    if (memlimit_check(((unsigned long long)o->fds_needed * 20 + 96 * 1024) * 1024, what, err,
                       sizeof err)) {
        fprintf(stderr, "strobe %s: %s.\n", e->cmd, err);
        return 2;
    }
    if (fdlimit_check((o->dpdk ? 0 : o->fds_needed) + 64L, err, sizeof err)) {
        fprintf(stderr, "strobe %s: %s.\n", e->cmd, err);
        return 2;
    }
    if (!e->url && !e->model) e->model = "strobe-emu";
    int rc = choose_tokenizer(e, o->tokenizer, o->url == NULL);
    if (rc) return rc;
    if (!e->url) {
        /* an exact prompt length needs the emulator to count as the tokenizer does; a path
         * with spaces cannot go through --emu-args' word splitting, so it is left out */
        char args[2048];
        snprintf(args, sizeof args, "%s", o->emu_args ? o->emu_args : "");
        if (o->emu_counts_with_tokenizer && e->tokenizer_path[0] &&
            !strchr(e->tokenizer_path, ' ') && !strstr(args, "--tokenizer"))
            snprintf(args + strlen(args), sizeof args - strlen(args), " --tokenizer %s",
                     e->tokenizer_path);
        if (emu_launch(&e->emu, args, err, sizeof err)) {
            fprintf(stderr, "strobe %s: %s.\n", e->cmd, err);
            run_env_close(e);
            return 1;
        }
        snprintf(e->emu_url, sizeof e->emu_url, "http://127.0.0.1:%d", e->emu.port);
        e->url = e->emu_url;
        fprintf(stderr, "strobe: no --url: measuring the built-in emulator at %s\n", e->url);
    }
    if (endpoint_parse(&e->ep, e->url, err, sizeof err)) {
        fprintf(stderr, "strobe %s: %s; see strobe %s --help.\n", e->cmd, err, e->cmd);
        run_env_close(e);
        return 2;
    }
    /* a --url naming the endpoint's path must name the one this run sends to */
    if (e->ep.path_endpoint && (e->ep.path_endpoint == 2) != o->completions) {
        const char *named = e->ep.path_endpoint == 2 ? "/v1/completions" : "/v1/chat/completions";
        const char *sent = o->completions ? "/v1/completions" : "/v1/chat/completions";
        fprintf(stderr, "strobe %s: --url ends in %s but strobe %s sends to %s; %s.\n", e->cmd,
                named, e->cmd, sent,
                !strcmp(e->cmd, "slt")
                    ? "give --endpoint to match, or the base URL"
                    : "give the base URL (or one ending in /v1/chat/completions)");
        run_env_close(e);
        return 2;
    }
    if (endpoint_resolve(&e->ep, err, sizeof err)) {
        fprintf(stderr, "strobe %s: %s.\n", e->cmd, err);
        run_env_close(e);
        return 1;
    }
    if (e->ep.tls && o->insecure)
        fprintf(stderr, "strobe: WARNING: --insecure: the server's TLS certificate and name are "
                        "NOT verified; results record this.\n");
    e->ops = e->data_ops = transport_kernel_ops(e->ep.tls);
    e->topt = (struct transport_options){o->insecure, o->ca_file};
    snprintf(e->transport_desc, sizeof e->transport_desc, "%s", e->ops->name);
#ifdef STROBE_HAVE_DPDK
    if (o->dpdk) {
        struct dpdk_options d = *o->dpdk;
        d.tls = e->topt;
        e->dpdk =
            transport_dpdk_start(&d, &e->ep, e->threads, o->threads_fit_ports, err, sizeof err);
        if (!e->dpdk) {
            fprintf(stderr, "strobe %s: %s.\n", e->cmd, err);
            run_env_close(e);
            return 1;
        }
        e->threads = transport_dpdk_workers(e->dpdk);
        transport_dpdk_describe(e->dpdk, e->transport_desc, sizeof e->transport_desc);
        fprintf(stderr, "strobe: %s\n", e->transport_desc);
    }
#endif
#ifdef STROBE_HAVE_URING
    if (o->uring) {
        if (transport_uring_probe(e->transport_desc, sizeof e->transport_desc, err, sizeof err)) {
            fprintf(stderr, "strobe %s: %s.\n", e->cmd, err);
            run_env_close(e);
            return 1;
        }
        e->uring = 1;
        e->data_ops = transport_uring_ops(e->ep.tls);
        fprintf(stderr, "strobe: %s\n", e->transport_desc);
    }
#endif
    e->ctl_tctx = transport_kernel_ctx_new(&e->topt, err, sizeof err);
    if (!e->ctl_tctx) {
        fprintf(stderr, "strobe %s: %s.\n", e->cmd, err);
        run_env_close(e);
        return 1;
    }
    e->api_key = getenv("STROBE_API_KEY");
    if (e->api_key && *e->api_key && strlen(e->api_key) < REDACT_MIN_LEN)
        fprintf(stderr,
                "strobe: warning: STROBE_API_KEY is shorter than %d characters: a server "
                "echoing it is not blanked out of the run's files (so short a key would "
                "match ordinary text)\n",
                REDACT_MIN_LEN);
    e->power_rate_hz = o->power_rate_hz > 0 ? o->power_rate_hz : 10;
    if (o->npower > RUN_MAX_POWER) {
        fprintf(stderr, "strobe %s: at most %d --power sources.\n", e->cmd, RUN_MAX_POWER);
        run_env_close(e);
        return 2;
    }
    for (int i = 0; i < o->npower; i++) {
        char spec[600];
        /* "emu" alone: the emulator strobe is measuring */
        if (!strcmp(o->power_specs[i], "emu"))
            snprintf(spec, sizeof spec, "emu:%s", e->url);
        else
            snprintf(spec, sizeof spec, "%s", o->power_specs[i]);
        if (power_open(&e->power[e->npower], spec, err, sizeof err)) {
            fprintf(stderr, "strobe %s: %s.\n", e->cmd, err);
            run_env_close(e);
            return 2;
        }
        e->npower++;
        for (int j = 0; j < e->npower - 1; j++)
            if (power_overlap(&e->power[j], &e->power[e->npower - 1], err, sizeof err)) {
                fprintf(stderr, "strobe %s: %s.\n", e->cmd, err);
                run_env_close(e);
                return 2;
            }
    }
    return open_server_metrics(e, o);
}

void run_env_close(struct run_env *e)
{
    tokenizer_free(e->tokenizer);
    e->tokenizer = NULL;
    for (int i = 0; i < e->npower; i++) power_close(&e->power[i]);
    e->npower = 0;
    metrics_scrape_close(e->scrape);
    e->scrape = NULL;
    transport_ctx_free(e->ctl_tctx);
    e->ctl_tctx = NULL;
    emu_stop(&e->emu);
}

/* A worker's transport context: the one lwIP stack, its own ring, or its own TLS context. */
static struct transport_ctx *worker_ctx_new(struct run_env *e, char *err, size_t errlen)
{
#ifdef STROBE_HAVE_URING
    if (e->uring) return transport_uring_ctx_new(&e->topt, err, errlen);
#endif
    return transport_kernel_ctx_new(&e->topt, err, errlen);
}

static void worker_ctx_free(struct run_env *e, struct transport_ctx *x)
{
#ifdef STROBE_HAVE_URING
    if (e->uring) {
        transport_uring_ctx_free(x);
        return;
    }
#endif
    (void)e;
    transport_ctx_free(x);
}

static int out_created; /* run_env_start made the run's folder (it did not exist) */

/* run_env_start's way out once the log is open: the workers started so far stopped, their
 * contexts freed, the log's files removed (nothing was sent), and the folder too when this
 * run made it, so that the same --out can be used again. Returns 1. */
static int start_failed(struct run_env *e, const char *out, int started, int contexts)
{
    for (int i = 0; i < started; i++) worker_join(&e->w[i]);
    for (int i = 0; i < contexts && !e->dpdk; i++) worker_ctx_free(e, e->tctx[i]);
#ifdef STROBE_HAVE_DPDK
    transport_dpdk_stop(e->dpdk);
#endif
    eventlog_abandon(e->log, out);
    e->log = NULL;
    if (out_created) rmdir(out); /* this run made it, and nothing is left in it */
    free(e->w);
    free(e->tctx);
    e->w = NULL;
    e->tctx = NULL;
    run_env_close(e);
    return 1;
}

int run_env_start(struct run_env *e, const char *out, const char *header_json,
                  const struct worker_config *base)
{
    char err[512];
    out_created = mkdir(out, 0755) == 0;
    if (!out_created && errno != EEXIST) {
        fprintf(stderr, "strobe %s: cannot create --out %s: %s.\n", e->cmd, out, strerror(errno));
        run_env_close(e);
        return 1;
    }
    /* the header says which power sources feed the log, and what each one covers */
    cJSON *h = cJSON_Parse(header_json);
    cJSON *p = cJSON_AddObjectToObject(h, "power");
    cJSON_AddNumberToObject(p, "rate_hz", e->power_rate_hz);
    cJSON *list = cJSON_AddArrayToObject(p, "sources");
    for (int i = 0; i < e->npower; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddNumberToObject(s, "index", i);
        cJSON_AddStringToObject(s, "spec", e->power[i].spec);
        cJSON_AddStringToObject(s, "driver", e->power[i].driver->name);
        cJSON_AddBoolToObject(s, "accelerator_only", e->power[i].accelerator_only);
        cJSON_AddStringToObject(s, "boundary", e->power[i].boundary);
        cJSON *d = cJSON_AddArrayToObject(s, "devices");
        for (int k = 0; k < e->power[i].ndevices; k++)
            cJSON_AddItemToArray(d, cJSON_CreateString(e->power[i].device_names[k]));
        cJSON_AddItemToArray(list, s);
    }
    if (e->scrape) {
        cJSON *sm = cJSON_AddObjectToObject(h, "server_metrics");
        cJSON_AddStringToObject(sm, "url", metrics_scrape_url(e->scrape));
        cJSON_AddNumberToObject(sm, "rate_hz", e->server_metrics_rate_hz);
    }
    cJSON *tk = cJSON_AddObjectToObject(h, "tokenizer");
    if (e->tokenizer_path[0]) {
        cJSON_AddStringToObject(tk, "path", e->tokenizer_path);
        cJSON_AddStringToObject(tk, "name", e->tokenizer_name);
        cJSON_AddStringToObject(tk, "sha256", e->tokenizer_sha256);
    }
    cJSON_AddStringToObject(tk, "chosen", e->tokenizer_choice);
    cJSON *cfg = cJSON_GetObjectItemCaseSensitive(h, "config"); /* the run kind's options */
    cJSON_AddNumberToObject(
        cfg ? cfg : h, "max_event_bytes",
        (double)(e->max_event_bytes ? e->max_event_bytes : SSE_DEFAULT_MAX_EVENT));
    char *with_power = must_have(cJSON_PrintUnformatted(h), "the run's header");
    cJSON_Delete(h);
    snprintf(second_message, sizeof second_message,
             "\nstrobe: second interrupt: stopping now; the event log keeps what was flushed "
             "(strobe analyze %s reads it)\n",
             out);
    e->log =
        eventlog_create_writes(out, with_power, e->threads + 3, !e->log_plain, err, sizeof err);
    free(with_power);
    if (!e->log) {
        fprintf(stderr, "strobe %s: %s.\n", e->cmd, err);
        if (out_created) rmdir(out); /* eventlog_create removed what it had made in it */
        run_env_close(e);
        return 1;
    }
    /* a log that cannot be written (a full disk) stops the run as an interruption would; the
     * exit status then says it failed (run_env_finish) */
    eventlog_stop_on_error(e->log, &run_interrupted);
    e->w = must_calloc((size_t)e->threads, sizeof *e->w, "the workers");
    e->tctx = must_calloc((size_t)e->threads, sizeof *e->tctx, "the workers");
    for (int i = 0; i < e->threads; i++) {
        struct worker_config wc = *base;
        wc.ops = e->data_ops;
#ifdef STROBE_HAVE_DPDK
        if (e->dpdk) {
            e->tctx[i] = transport_dpdk_ctx(e->dpdk, i);
            wc.ops = transport_dpdk_ops(e->dpdk, i);
        }
#endif
        if (!e->dpdk) {
            e->tctx[i] = worker_ctx_new(e, err, sizeof err);
            if (!e->tctx[i]) {
                fprintf(stderr, "strobe %s: %s.\n", e->cmd, err);
                return start_failed(e, out, i, i);
            }
        }
        wc.index = i;
        wc.ep = &e->ep;
        wc.tctx = e->tctx[i];
        wc.log = e->log;
        wc.max_event_bytes = e->max_event_bytes;
        int rc = worker_start(&e->w[i], &wc);
        if (rc) {
            /* a run with fewer workers would measure another load than the one asked for */
            fprintf(stderr,
                    "strobe %s: cannot start worker %d of %d: %s; the run did not start. Use fewer "
                    "--threads, or raise the memory or thread limit (ulimit -v, ulimit -u, a "
                    "cgroup's pids.max).\n",
                    e->cmd, i, e->threads, strerror(rc));
            return start_failed(e, out, i, i + 1);
        }
    }
    e->telemetry =
        telemetry_start(e->power, e->npower, e->power_rate_hz, e->scrape, e->server_metrics_rate_hz,
                        e->log, e->threads + 1, e->threads + 2, err, sizeof err);
    if (!e->telemetry && err[0]) {
        /* power or server metrics asked for and not read: the results would lack them */
        fprintf(stderr,
                "strobe %s: %s; the run did not start. Raise the thread limit and run again.\n",
                e->cmd, err);
        return start_failed(e, out, e->threads, e->threads);
    }
    e->tail = live_tail_open(out);
    return 0;
}

int run_env_in_flight(const struct run_env *e)
{
    int s = 0;
    for (int i = 0; i < e->threads; i++) s += atomic_load(&e->w[i].stats.in_flight);
    return s;
}

void run_env_put_phase(struct run_env *e, const struct rec_phase *p)
{
    struct log_record r = rec_phase_encode(p);
    eventlog_put(e->log, e->threads, &r, NULL, 0);
}

/* How the built-in emulator ended when it exited during the run; "" while it runs. */
static char emu_death[128];

/* The built-in emulator exiting mid-run would leave the phases measuring a closed port: the
 * run stops as on SIGTERM (every loop that waits sleeps here and watches run_interrupted) and
 * ends as an error (run_env_finish). Not after an interrupt: Ctrl-C reaches the emulator too. */
static void check_emu(void)
{
    if (run_interrupted || emu_death[0] || !emu_watch_exited(emu_death, sizeof emu_death)) return;
    fprintf(stderr,
            "%sstrobe: the built-in emulator (strobe-emu) exited during the run: %s; the run "
            "stops here, and its results cover what was measured before\n",
            isatty(2) ? "\r\033[K" : "", emu_death);
    run_interrupted = 1;
}

void run_sleep_s(double s)
{
    check_emu();
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

void run_env_drain(struct run_env *e, double drain_s, void (*progress)(void *arg, int in_flight),
                   void *arg)
{
    int64_t drain_end = clock_now_ns() + (int64_t)(drain_s * 1e9);
    while (run_env_in_flight(e) && clock_now_ns() < drain_end && !run_interrupted) {
        if (progress) progress(arg, run_env_in_flight(e));
        run_sleep_s(0.01);
    }
    if (run_env_in_flight(e))
        for (int i = 0; i < e->threads; i++)
            atomic_store(&e->w[i].ctl.abort_error, run_interrupted ? ERR_INTERRUPTED : ERR_DRAIN);
    while (run_env_in_flight(e)) run_sleep_s(0.002);
}

cJSON *run_header_new(const char *kind, const struct run_target *t, cJSON **cfg)
{
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "kind", kind);
    cJSON_AddStringToObject(h, "strobe_version", STROBE_VERSION);
    char when[64];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    cJSON_AddStringToObject(h, "started_utc", when);
    *cfg = cJSON_AddObjectToObject(h, "config");
    cJSON_AddStringToObject(*cfg, "url", t->url ? t->url : "(built-in strobe-emu)");
    cJSON_AddStringToObject(*cfg, "resolved_address", t->resolved_address);
    cJSON_AddStringToObject(*cfg, "model", t->model);
    cJSON_AddStringToObject(*cfg, "transport", t->transport);
    cJSON_AddBoolToObject(*cfg, "tls_verification", t->tls_verification);
    return h;
}

void run_env_wait_workers_let_go(struct run_env *e)
{
    uint64_t *seen = must_calloc((size_t)e->threads, sizeof *seen, "the workers");
    for (int i = 0; i < e->threads; i++) seen[i] = atomic_load(&e->w[i].stats.loops);
    for (int i = 0; i < e->threads; i++)
        while (atomic_load(&e->w[i].stats.loops) < seen[i] + 2) run_sleep_s(0.001);
    free(seen);
}

int run_env_finish(struct run_env *e, const char *out, int interrupted)
{
    int rc = 0;
    check_emu(); /* it may have exited since the loops last looked */
    interrupted = interrupted || emu_death[0];
    telemetry_stop(e->telemetry);
    e->telemetry = NULL;
    live_tail_close(e->tail);
    e->tail = NULL;
    struct log_record mark = rec_mark_encode(&(struct rec_mark){
        .kind = interrupted ? MARK_INTERRUPTED : MARK_RUN_END, .t = clock_now_ns()});
    eventlog_put(e->log, e->threads, &mark, NULL, 0);
    uint64_t cpu = 0, events = 0;
    for (int i = 0; i < e->threads; i++) {
        worker_join(&e->w[i]);
        cpu += atomic_load(&e->w[i].stats.cpu_ns);
        events += atomic_load(&e->w[i].stats.events);
        if (e->threads > 1) {
            /* share-nothing workers: each one's load and cost, to see the split */
            uint64_t wcpu = atomic_load(&e->w[i].stats.cpu_ns);
            uint64_t wev = atomic_load(&e->w[i].stats.events);
            fprintf(stderr,
                    "strobe: worker %d: %llu requests started, %llu SSE events, CPU %.0f ns "
                    "per SSE event\n",
                    i, (unsigned long long)atomic_load(&e->w[i].stats.started),
                    (unsigned long long)wev, wev ? (double)wcpu / (double)wev : 0.0);
        }
        /* the lwIP stacks live as long as the process (lwIP cannot be torn down) */
        if (!e->dpdk) worker_ctx_free(e, e->tctx[i]);
    }
#ifdef STROBE_HAVE_DPDK
    transport_dpdk_stop(e->dpdk);
#endif
    fprintf(stderr,
            "strobe: dataplane CPU %.0f ns per SSE event (%llu events, %.3f s of worker "
            "CPU, all threads)\n",
            events ? (double)cpu / (double)events : 0.0, (unsigned long long)events,
            (double)cpu / 1e9);
    uint64_t waits = eventlog_full_waits(e->log);
    eventlog_stop(e->log);
    char writes[400];
    fprintf(stderr, "strobe: event log written %s\n",
            eventlog_writes(e->log, writes, sizeof writes));
    /* a write that failed during the run was said then, with its cause, and stopped the run */
    int log_failed = eventlog_error(e->log) != NULL;
    if (eventlog_close(e->log)) {
        fprintf(stderr,
                "strobe %s: the event log could not be written completely (%s); what was "
                "flushed is readable with strobe analyze.\n",
                e->cmd, log_failed ? "said above" : "its last writes failed: disk full?");
        rc = 1;
        log_failed = 1;
    }
    if (waits)
        fprintf(stderr,
                "strobe: warning: workers waited %llu times for the event log writer; "
                "the disk was slower than the stream (a faster disk for --out, or "
                "--log-writes plain to let memory take a short run's excess)\n",
                (unsigned long long)waits);
    free(e->w);
    free(e->tctx);
    run_env_close(e);
    if (rank_run_active()) {
        if (e->rank_failed) return 1;
        /* rank 0 reads every rank's log: each must be complete first */
        if (ranks_rank()) return rank_run_done(0) ? 1 : interrupted && !log_failed ? 3 : rc;
        if (rank_run_done(120)) return 1;
    }
    char err[512];
    struct run_results res;
    snprintf(stop_message, sizeof stop_message,
             "\nstrobe %s: analysis stopped; the event log is complete: strobe analyze %.400s "
             "computes the results later\n",
             e->cmd, out);
    analysing = 1;
    fprintf(stderr,
            "strobe: computing the results from the event log (Ctrl-C stops this; "
            "strobe analyze %s does it later)\n",
            out);
    if (results_compute(out, NULL, &res, err, sizeof err)) {
        fprintf(stderr, "strobe %s: %s.\n", e->cmd, err);
        return 1;
    }
    if (results_write(out, &res, err, sizeof err)) {
        fprintf(stderr, "strobe %s: %s.\n", e->cmd, err);
        results_free(&res);
        return 1;
    }
    analysing = 0;
    results_print_table(stdout, &res);
    printf("results: %s/results.json, %s/results.csv%s\n", out, out,
           emu_death[0]  ? " (INCOMPLETE: the built-in emulator exited)"
           : log_failed  ? " (INCOMPLETE: the event log could not be written)"
           : interrupted ? " (INCOMPLETE: interrupted)"
                         : "");
    if (!interrupted && !rc && !res.validity.valid) {
        /* scripts must notice a run that measured nothing, whatever the table shows */
        fprintf(stderr, "strobe %s: the run is not valid: %s.\n", e->cmd, res.validity.why);
        rc = RUN_NOT_VALID;
    }
    results_free(&res);
    if (emu_death[0]) {
        fprintf(stderr,
                "strobe %s: the built-in emulator (strobe-emu) exited during the run: %s; the "
                "run stopped early and its results cover only what was measured before; run "
                "strobe-emu by hand with the same --emu-args to see why, or give --url.\n",
                e->cmd, emu_death);
        return 1;
    }
    return interrupted && !log_failed ? 3 : rc; /* a run the log's failure stopped failed */
}
