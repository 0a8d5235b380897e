/* The command-line options every run kind (slt, agents) shares: target, model, run
 * directory, request body extras, TLS, threads, timeouts, seed and power sources. Each
 * command adds its own options in front of these in one getopt table. */
#ifndef STROBE_RUN_FLAGS_H
#define STROBE_RUN_FLAGS_H
#include "run_env.h"
#include "transport_dpdk.h"
#include <getopt.h>
#include <stdint.h>

struct run_flags {
    const char *url, *model, *out, *extra_body, *ca_file, *emu_args, *tokenizer;
    const char *transport; /* "kernel", "uring" or "dpdk" */
    struct dpdk_options dpdk;
    int threads, insecure;
    int threads_given; /* --threads was on the command line (else the default fits the cores,
                          and with --transport dpdk also the ports and addresses) */
    double request_timeout_s, idle_timeout_s, connect_timeout_s;
    uint64_t seed;
    const char *power[RUN_MAX_POWER];
    int npower;
    double power_rate_hz;
    const char *server_metrics; /* URL, "auto" or NULL */
    double server_metrics_rate_hz;
    double progress_s;      /* a plain progress line this often when stderr is not a terminal */
    size_t max_event_bytes; /* longest SSE event a worker keeps */
    int log_plain;          /* --log-writes plain (eventlog_create_writes) */
};

/* the longest --model: it goes into every request */
#define RUN_MODEL_MAX 256

/* getopt ids from here up belong to run_flags; a command's own ids stay below */
#define RUN_FLAG_BASE 1000

void run_flags_defaults(struct run_flags *f);
/* One getopt table: the command's own options (ending in {0}), then the shared ones.
 * malloc'd; free it after parsing. */
struct option *run_flags_table(const struct option *own);
/* An option's name (without dashes) from its getopt id: for messages, since after
 * getopt_long argv[optind - 1] is the value when the value was a separate word. */
const char *run_flag_name(const struct option *table, int o);
/* A bad command line: prints "strobe CMD: WHAT; see strobe CMD --help." and returns 2. */
int run_flags_bad(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Takes option `o` if it is a shared one: 1 taken, 0 not a shared option, 2 bad (one
 * sentence printed, naming `cmd`). `flag` is the option as written, for messages. */
int run_flags_take(struct run_flags *f, int o, const char *arg, const char *flag, const char *cmd);
/* The checks every run kind shares. 0, or 2 after one sentence. */
int run_flags_check(const struct run_flags *f, const char *cmd);
/* run_env's options from the flags. */
struct run_env_options run_flags_env(const struct run_flags *f, const char *cmd, long fds_needed);
/* Prints the shared options' help lines. */
void run_flags_usage(FILE *out);

#endif
