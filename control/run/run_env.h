/* What every run kind (slt, agents) sets up and tears down the same way: the target (a URL,
 * or the built-in emulator started on loopback), the transport and its TLS contexts, the
 * run directory and event log, the dataplane workers, SIGINT/SIGTERM, and at the end the
 * results computed from the log (identical to `strobe analyze`). */
#ifndef STROBE_RUN_ENV_H
#define STROBE_RUN_ENV_H
#include <cjson/cJSON.h>
#include "emu_launch.h"
#include "endpoint.h"
#include "eventlog.h"
#include "live_tail.h"
#include "power.h"
#include "telemetry.h"
#include "transport.h"
#include "transport_dpdk.h"
#include "tokenizer.h"
#include "worker.h"
#include <signal.h>

struct run_env_options {
    const char *cmd; /* "slt" or "agents", for messages */
    const char *url; /* NULL: start strobe-emu */
    const char *model;
    const char *emu_args;
    int insecure;
    const char *ca_file;
    int threads;
    long fds_needed;
    const char *const *power_specs; /* --power SPEC, each */
    int npower;
    double power_rate_hz;
    const char *tokenizer;           /* FILE, "auto" or "none" */
    int emu_counts_with_tokenizer;   /* the built-in emulator counts prompt_tokens with it too */
    const struct dpdk_options *dpdk; /* NULL: kernel sockets */
    int completions; /* requests go to /v1/completions (slt --endpoint completions), else chat */
    size_t max_event_bytes;     /* the workers' SSE event limit (0: 8 MiB) */
    int uring;                  /* the workers' sockets through io_uring (--transport uring) */
    const char *server_metrics; /* --server-metrics: URL, "auto" or NULL */
    double server_metrics_rate_hz;
    double progress_s;     /* --progress-s */
    int threads_fit_ports; /* dpdk without --threads: at most one worker per port found */
    int log_plain;         /* --log-writes plain: the event log through the page cache only */
};

#define RUN_MAX_POWER 16

struct run_env {
    const char *cmd;
    struct emu_child emu;
    char emu_url[128];
    const char *url, *model, *api_key;
    struct endpoint ep;
    const struct transport_ops *ops;      /* control's own requests (calibration, probes) */
    const struct transport_ops *data_ops; /* the workers' (kernel or io_uring transport) */
    struct dpdk_dataplane *dpdk;          /* a port and an lwIP stack per worker, or NULL */
    int uring;                            /* the workers' contexts are io_uring ones */
    char transport_desc[400];
    struct transport_options topt;
    struct transport_ctx *ctl_tctx;
    struct eventlog *log;
    int threads;
    size_t max_event_bytes;
    struct worker *w;
    struct transport_ctx **tctx;
    struct power_source power[RUN_MAX_POWER];
    int npower;
    double power_rate_hz;
    double progress_s;             /* --progress-s: a plain line this often off a terminal */
    int log_plain;                 /* --log-writes plain */
    struct live_tail *tail;        /* the log read back for the progress line, or NULL */
    struct metrics_scrape *scrape; /* --server-metrics, or NULL */
    double server_metrics_rate_hz;
    struct telemetry *telemetry;
    char tokenizer_path[1024];   /* checked at open, used by the analysis; "" for none */
    struct tokenizer *tokenizer; /* loaded at open (calibration uses it), or NULL */
    char tokenizer_name[64], tokenizer_sha256[65], tokenizer_choice[200];
    int rank_failed; /* under mpirun: a rank died or did not answer (the run ends, exit 1) */
};

extern volatile sig_atomic_t run_interrupted;

/* Target, transport, TLS, power sources, tokenizer. Returns 0, or the exit status after
 * printing one sentence (2 when a power source or a named tokenizer is missing: the run
 * refuses to start). */
int run_env_open(struct run_env *e, const struct run_env_options *o);
/* Run directory, event log (producers: the workers, then control, then power telemetry, then
 * the /metrics scrape), workers,
 * power telemetry, signals. The header gets a "power" section describing the sources and a
 * "tokenizer" section naming the file the analysis counts chunk tokens with.
 * Returns 0, or the exit status after printing one sentence. */
int run_env_start(struct run_env *e, const char *out, const char *header_json,
                  const struct worker_config *base);
/* Sum of every worker's in-flight requests. */
int run_env_in_flight(const struct run_env *e);
/* A phase (SLT) or iteration (agents) record from control: written when it starts and again
 * when it ends (the analysis keeps the last). */
void run_env_put_phase(struct run_env *e, const struct rec_phase *p);
void run_sleep_s(double seconds);
/* After a phase or iteration stops issuing: waits for in-flight requests up to drain_s (not
 * past an interrupt), ends those left with ERR_DRAIN (ERR_INTERRUPTED when interrupted), and
 * returns once none is in flight. progress (may be NULL) is called while it waits. */
void run_env_drain(struct run_env *e, double drain_s, void (*progress)(void *arg, int in_flight),
                   void *arg);

/* After control has taken a request source away (ctl.source NULL): returns once every worker
 * has gone twice round its loop, so none still holds the old source. */
void run_env_wait_workers_let_go(struct run_env *e);

/* What every run header names about its target. */
struct run_target {
    const char *url; /* as given, or NULL for the built-in emulator */
    const char *resolved_address, *model, *transport;
    int tls_verification;
};
/* A run header's common part: kind, strobe version, start time (UTC), and "config" with the
 * target; *cfg is that object, for the caller's own fields. */
cJSON *run_header_new(const char *kind, const struct run_target *t, cJSON **cfg);
/* Exit status of a run that completed but whose results are not valid (the reason printed). */
#define RUN_NOT_VALID 4
/* Ends the run: mark, workers, log, emulator, results (written and printed). Returns the exit
 * status: 0, 1 (the log could not be written), 3 (interrupted), RUN_NOT_VALID. Under mpirun
 * only rank 0 computes the results, over every rank's log, once each has closed it; with
 * rank_failed set, none does and the status is 1. */
int run_env_finish(struct run_env *e, const char *out, int interrupted);
/* Frees what run_env_open took when the run stops before run_env_start. */
void run_env_close(struct run_env *e);

#endif
