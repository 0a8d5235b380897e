#include "run_flags.h"

#include "metrics_scrape.h"
#include "num_arg.h"
#include "request_template.h"
#include "sse.h"
#include "telemetry.h"
#include "must_alloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    F_URL = RUN_FLAG_BASE,
    F_MODEL,
    F_OUT,
    F_EXTRA,
    F_CA,
    F_EMU,
    F_INSEC,
    F_THREADS,
    F_RTO,
    F_ITO,
    F_CTO,
    F_SEED,
    F_POWER,
    F_PRATE,
    F_TOKENIZER,
    F_TRANSPORT,
    F_DPDK_ARGS,
    F_LOCAL_IP,
    F_NETMASK,
    F_GATEWAY,
    F_BACKOFF,
    F_IDLE,
    F_IDLE_SPIN,
    F_GATEWAY_MAC,
    F_IMPAIR,
    F_MAX_EVENT,
    F_SERVER_METRICS,
    F_SERVER_METRICS_RATE,
    F_PROGRESS,
    F_LOG_WRITES
};

static const struct option shared[] = {{"url", 1, 0, F_URL},
                                       {"model", 1, 0, F_MODEL},
                                       {"out", 1, 0, F_OUT},
                                       {"extra-body", 1, 0, F_EXTRA},
                                       {"ca-file", 1, 0, F_CA},
                                       {"emu-args", 1, 0, F_EMU},
                                       {"insecure", 0, 0, F_INSEC},
                                       {"threads", 1, 0, F_THREADS},
                                       {"request-timeout-s", 1, 0, F_RTO},
                                       {"idle-timeout-s", 1, 0, F_ITO},
                                       {"connect-timeout-s", 1, 0, F_CTO},
                                       {"seed", 1, 0, F_SEED},
                                       {"power", 1, 0, F_POWER},
                                       {"power-rate", 1, 0, F_PRATE},
                                       {"tokenizer", 1, 0, F_TOKENIZER},
                                       {"transport", 1, 0, F_TRANSPORT},
                                       {"dpdk-args", 1, 0, F_DPDK_ARGS},
                                       {"local-ip", 1, 0, F_LOCAL_IP},
                                       {"netmask", 1, 0, F_NETMASK},
                                       {"gateway", 1, 0, F_GATEWAY},
                                       {"idle-backoff-us", 1, 0, F_BACKOFF},
                                       {"idle", 1, 0, F_IDLE},
                                       {"idle-spin-us", 1, 0, F_IDLE_SPIN},
                                       {"gateway-mac", 1, 0, F_GATEWAY_MAC},
                                       {"dpdk-impair", 1, 0, F_IMPAIR},
                                       {"max-event-bytes", 1, 0, F_MAX_EVENT},
                                       {"server-metrics", 1, 0, F_SERVER_METRICS},
                                       {"server-metrics-rate", 1, 0, F_SERVER_METRICS_RATE},
                                       {"progress-s", 1, 0, F_PROGRESS},
                                       {"log-writes", 1, 0, F_LOG_WRITES},
                                       {0, 0, 0, 0}};

/* The cores this process may run on (taskset, cgroup cpusets), else the online ones. */
static int cores_available(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? (int)cores : 1;
}

void run_flags_defaults(struct run_flags *f)
{
    memset(f, 0, sizeof *f);
    f->threads = cores_available();
    f->request_timeout_s = 600;
    f->idle_timeout_s = 120;
    f->connect_timeout_s = 10;
    f->seed = 1;
    f->tokenizer = "auto";
    f->transport = "kernel";
    f->dpdk.eal_args = "";
    f->dpdk.idle_backoff_us = -1; /* not given */
    f->dpdk.idle_spin_us = 10;
    f->max_event_bytes = SSE_DEFAULT_MAX_EVENT;
    f->progress_s = 10;
}

/* N, NK or NM (KiB, MiB) within 1 KiB .. 1 GiB (an event-log record's length is 32 bits). */
static int take_max_event(struct run_flags *f, const char *arg, const char *cmd)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    int shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20 : 0;
    if (shift) end++;
    if (errno || end == arg || *end || arg[0] == '-' || v > (1ULL << 30) >> shift ||
        (v << shift) < 1024) {
        fprintf(stderr,
                "strobe %s: --max-event-bytes needs a size from 1024 to 1073741824 "
                "bytes (K and M suffixes allowed, e.g. 8M), got '%s'.\n",
                cmd, arg);
        return 2;
    }
    f->max_event_bytes = (size_t)(v << shift);
    return 1;
}

struct option *run_flags_table(const struct option *own)
{
    size_t n = 0, m = sizeof shared / sizeof shared[0];
    while (own[n].name) n++;
    struct option *t = must_calloc(n + m, sizeof *t, "the flags' table");
    memcpy(t, own, n * sizeof *t);
    memcpy(t + n, shared, m * sizeof *t);
    return t;
}

int run_flags_bad(const char *cmd, const char *fmt, ...)
{
    char what[4600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    fprintf(stderr, "strobe %s: %s; see strobe %s --help.\n", cmd, what, cmd);
    return 2;
}

static int bad(const char *cmd, const char *what) { return run_flags_bad(cmd, "%s", what); }

const char *run_flag_name(const struct option *table, int o)
{
    for (const struct option *t = table; t->name; t++)
        if (t->val == o) return t->name;
    return "?";
}

int run_flags_take(struct run_flags *f, int o, const char *arg, const char *flag, const char *cmd)
{
    (void)flag; /* the name comes from the table: argv holds the value, not the flag */
    switch (o) {
    case F_URL: f->url = arg; return 1;
    case F_MODEL: f->model = arg; return 1;
    case F_OUT: f->out = arg; return 1;
    case F_EXTRA: f->extra_body = arg; return 1;
    case F_CA: f->ca_file = arg; return 1;
    case F_EMU: f->emu_args = arg; return 1;
    case F_TOKENIZER: f->tokenizer = arg; return 1;
    case F_TRANSPORT:
        if (strcmp(arg, "kernel") && strcmp(arg, "uring") && strcmp(arg, "dpdk"))
            return bad(cmd, "--transport is kernel, uring or dpdk");
        f->transport = arg;
        return 1;
    case F_DPDK_ARGS: f->dpdk.eal_args = arg; return 1;
    case F_LOCAL_IP: f->dpdk.local_ips = arg; return 1;
    case F_NETMASK: f->dpdk.netmask = arg; return 1;
    case F_GATEWAY: f->dpdk.gateway = arg; return 1;
    case F_GATEWAY_MAC: f->dpdk.gateway_mac = arg; return 1;
    case F_IMPAIR: f->dpdk.impair = arg; return 1;
    case F_IDLE:
        if (strcmp(arg, "interrupt") && strcmp(arg, "backoff") && strcmp(arg, "poll"))
            return bad(cmd, "--idle is interrupt, backoff or poll");
        f->dpdk.idle = arg;
        return 1;
    case F_INSEC: f->insecure = 1; return 1;
    case F_MAX_EVENT: return take_max_event(f, arg, cmd);
    case F_LOG_WRITES:
        if (strcmp(arg, "direct") && strcmp(arg, "plain"))
            return bad(cmd, "--log-writes is direct (O_DIRECT where the file system takes it) "
                            "or plain (through the page cache)");
        f->log_plain = !strcmp(arg, "plain");
        return 1;
    case F_SERVER_METRICS:
        if (strcmp(arg, "auto") && strncmp(arg, "http://", 7) && strncmp(arg, "https://", 8))
            return bad(cmd, "--server-metrics takes auto (the target's /metrics) or an http:// "
                            "or https:// URL");
        if (strcmp(arg, "auto")) {
            char why[300];
            if (metrics_scrape_url_check(arg, why, sizeof why)) return bad(cmd, why);
        }
        f->server_metrics = arg;
        return 1;
    case F_POWER:
        if (f->npower == RUN_MAX_POWER) return bad(cmd, "at most 16 --power sources");
        for (int i = 0; i < f->npower; i++)
            if (!strcmp(f->power[i], arg)) { /* one device read twice: its watts counted twice */
                char what[600];
                snprintf(what, sizeof what, "--power %.500s is given twice: give each source once",
                         arg);
                return bad(cmd, what);
            }
        f->power[f->npower++] = arg;
        return 1;
    case F_THREADS:
    case F_SEED: {
        long long v;
        int rc = o == F_THREADS ? num_arg_int(cmd, "threads", arg, 1, 1024, &v)
                                : num_arg_int(cmd, "seed", arg, 0, LLONG_MAX, &v);
        if (rc) return 2;
        if (o == F_THREADS) {
            f->threads = (int)v;
            f->threads_given = 1;
        } else
            f->seed = (uint64_t)v;
        return 1;
    }
    case F_RTO:
    case F_ITO:
    case F_CTO:
    case F_BACKOFF:
    case F_IDLE_SPIN:
    case F_SERVER_METRICS_RATE:
    case F_PROGRESS:
    case F_PRATE: {
        /* seconds are kept below 10^8 (3 years): nanosecond sums of them fit 64 bits. A rate
         * of 0 was taken as the default, silently, and one below TELEMETRY_MIN_HZ (a sample
         * every 100 s) leaves phases without a single reading: both refused */
        int rate = o == F_PRATE || o == F_SERVER_METRICS_RATE;
        double v, hi = o == F_BACKOFF || o == F_IDLE_SPIN ? 1e9
                       : o == F_PRATE                     ? TELEMETRY_MAX_HZ
                       : o == F_SERVER_METRICS_RATE       ? 100
                                                          : 1e8;
        if (num_arg(cmd, run_flag_name(shared, o), arg, rate ? TELEMETRY_MIN_HZ : 0, hi, 0, &v))
            return 2;
        if (o == F_RTO)
            f->request_timeout_s = v;
        else if (o == F_ITO)
            f->idle_timeout_s = v;
        else if (o == F_CTO)
            f->connect_timeout_s = v;
        else if (o == F_BACKOFF)
            f->dpdk.idle_backoff_us = v;
        else if (o == F_IDLE_SPIN)
            f->dpdk.idle_spin_us = v;
        else if (o == F_SERVER_METRICS_RATE)
            f->server_metrics_rate_hz = v;
        else if (o == F_PROGRESS)
            f->progress_s = v;
        else
            f->power_rate_hz = v;
        return 1;
    }
    default: return 0;
    }
}

#define OUT_PATH_MAX 4000

/* --out is checked before the emulator starts and calibration runs, so a run that cannot be
 * written is refused in a second, not after minutes. */
static int out_check(const char *out, const char *cmd)
{
    char what[4400];
    struct stat st;
    /* stat("") fails like a missing path, so an empty name would pass for a new directory */
    if (!*out) return bad(cmd, "--out is empty: give the path of a new directory for the run");
    /* the files' paths under it (a rank's folder, results.json.tmp) must fit PATH_MAX: a longer
     * one was accepted and the run failed at its end, or wrote cut names such as bodies.b */
    if (strlen(out) > OUT_PATH_MAX) {
        snprintf(what, sizeof what,
                 "--out is %zu characters long; at most %d fit the files strobe writes under it: "
                 "give a shorter path",
                 strlen(out), OUT_PATH_MAX);
        return bad(cmd, what);
    }
    if (stat(out, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            snprintf(what, sizeof what,
                     "--out %s exists and is not a directory: give a new "
                     "directory",
                     out);
        else if (snprintf(what, sizeof what, "%s/events.bin", out) > 0 && access(what, F_OK) == 0)
            snprintf(what, sizeof what,
                     "--out %s already holds a run (events.bin): give a new "
                     "directory, or strobe analyze it",
                     out);
        else if (access(out, W_OK | X_OK))
            snprintf(what, sizeof what, "--out %s is not writable: %s", out, strerror(errno));
        else
            return 0;
        return bad(cmd, what);
    }
    if (errno != ENOENT) {
        snprintf(what, sizeof what, "--out %s: %s", out, strerror(errno));
        return bad(cmd, what);
    }
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", out);
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/') parent[--n] = 0;
    char *slash = strrchr(parent, '/');
    if (!slash)
        snprintf(parent, sizeof parent, ".");
    else if (slash == parent)
        parent[1] = 0;
    else
        *slash = 0;
    if (stat(parent, &st) || !S_ISDIR(st.st_mode) || access(parent, W_OK | X_OK)) {
        snprintf(what, sizeof what, "--out %s cannot be created: %s %s", out, parent,
                 stat(parent, &st)      ? "does not exist"
                 : !S_ISDIR(st.st_mode) ? "is not a directory"
                                        : "is not writable");
        return bad(cmd, what);
    }
    /* what access() passes and mkdir still refuses (/proc, for root): tried beside it under a
     * name of this process's own (ranks under mpirun check the same --out at once), undone */
    char probe[4400], host[256] = "";
    gethostname(host, sizeof host - 1); /* ranks on hosts sharing the folder may share a pid */
    snprintf(probe, sizeof probe, "%s/.strobe-out-check-%.100s-%ld", parent, host, (long)getpid());
    if (mkdir(probe, 0700)) {
        snprintf(what, sizeof what, "--out %s cannot be created in %s: %s", out, parent,
                 strerror(errno));
        return bad(cmd, what);
    }
    rmdir(probe);
    return 0;
}

static int count_addresses(const char *list)
{
    int n = 1;
    for (const char *c = list; *c; c++) n += *c == ',';
    return n;
}

/* The workers a run starts: --threads, else one per core; with --transport dpdk and no
 * --threads, also at most one per --local-ip address (transport_dpdk_start then also fits
 * them to the ports the EAL finds). */
static int threads_to_run(const struct run_flags *f)
{
    if (f->threads_given || strcmp(f->transport, "dpdk") || !f->dpdk.local_ips) return f->threads;
    int n = f->threads, addresses = count_addresses(f->dpdk.local_ips);
    if (n > addresses) n = addresses;
    return n < DPDK_MAX_WORKERS ? n : DPDK_MAX_WORKERS;
}

int run_flags_check(const struct run_flags *f, const char *cmd)
{
    if (!f->out) return bad(cmd, "--out RUN_DIR is required");
    if (out_check(f->out, cmd)) return 2;
    if (f->url && !f->model) return bad(cmd, "--model NAME is required with --url");
    int cores = cores_available();
    if (f->threads < 1 || f->threads > cores) {
        /* a worker busy-waits on its own core; more workers than cores only take turns on
         * them, which delays every stamp and starves the control thread */
        char what[200];
        snprintf(what, sizeof what,
                 "--threads %d: give 1 to %d, the cores this process may "
                 "run on (one worker per core)",
                 f->threads, cores);
        return bad(cmd, what);
    }
    if (!strcmp(f->transport, "dpdk")) {
#ifndef STROBE_HAVE_DPDK
        return bad(cmd,
                   "this strobe was built without DPDK and lwIP (install dpdk-dev, libdpdk-dev, "
                   "liblwip-dev and rebuild)");
#endif
        if (!f->dpdk.local_ips)
            return bad(cmd, "--transport dpdk needs --local-ip ADDRESS[,ADDRESS...]");
        /* each worker has its own lwIP stack, port and addresses */
        int addresses = count_addresses(f->dpdk.local_ips);
        if (f->threads_given && (f->threads > DPDK_MAX_WORKERS || addresses < f->threads)) {
            char what[200];
            snprintf(what, sizeof what,
                     "--transport dpdk with --threads %d needs at least one --local-ip address "
                     "per worker (%d given) and at most %d workers",
                     f->threads, addresses, DPDK_MAX_WORKERS);
            return bad(cmd, what);
        }
    }
#ifndef STROBE_HAVE_URING
    if (!strcmp(f->transport, "uring"))
        return bad(cmd, "this strobe was built without io_uring (install liburing-dev and "
                        "rebuild), or give --transport kernel");
#endif
    /* the rate alone would be ignored: the run would not scrape what was asked to be scraped */
    if (f->server_metrics_rate_hz > 0 && !f->server_metrics)
        return bad(cmd, "--server-metrics-rate is given without --server-metrics: add "
                        "--server-metrics auto (or a URL), or leave the rate out");
    if (f->request_timeout_s <= 0 || f->idle_timeout_s <= 0 || f->connect_timeout_s <= 0)
        return bad(cmd, "timeouts must be > 0");
    if (f->model && (!*f->model || strlen(f->model) > RUN_MODEL_MAX))
        return bad(cmd, "--model must be 1 to 256 characters");
    char why[600];
    if (extra_body_check(f->extra_body, !strcmp(cmd, "agents"), why, sizeof why))
        return bad(cmd, why);
    /* agents put model and extras into a tail of bounded size: refuse here, not mid-run */
    char *tail =
        template_tail_fields(f->model ? f->model : "strobe-emu", f->extra_body, why, sizeof why);
    if (!tail) return bad(cmd, why);
    free(tail);
    return 0;
}

struct run_env_options run_flags_env(const struct run_flags *f, const char *cmd, long fds_needed)
{
    return (struct run_env_options){cmd,
                                    f->url,
                                    f->model,
                                    f->emu_args,
                                    f->insecure,
                                    f->ca_file,
                                    threads_to_run(f),
                                    fds_needed,
                                    f->power,
                                    f->npower,
                                    f->power_rate_hz,
                                    f->tokenizer,
                                    0,
                                    strcmp(f->transport, "dpdk") ? NULL : &f->dpdk,
                                    0,
                                    f->max_event_bytes,
                                    !strcmp(f->transport, "uring"),
                                    f->server_metrics,
                                    f->server_metrics_rate_hz,
                                    f->progress_s,
                                    !strcmp(f->transport, "dpdk") && !f->threads_given,
                                    f->log_plain};
}

void run_flags_usage(FILE *out)
{
    fprintf(
        out,
        "  --url URL               OpenAI-compatible server, e.g. http://127.0.0.1:8000\n"
        "                          (without it, strobe starts its built-in emulator)\n"
        "  --model NAME            model id to request (default strobe-emu with the emulator)\n"
        "  --out RUN_DIR           run directory (created; must not hold a run already)\n"
        "  --extra-body JSON       fields added to every request body (not model, messages,\n"
        "                          prompt, stream, max_tokens; stream_options is merged)\n"
        "  --threads N             dataplane worker threads, at most one per core this process\n"
        "                          may run on (default: one per core; with --transport dpdk,\n"
        "                          also at most one per DPDK port and per --local-ip address)\n"
        "  --request-timeout-s S   (default 600)   --idle-timeout-s S (default 120)\n"
        "  --connect-timeout-s S   (default 10)\n"
        "  --log-writes direct|plain  how the event log reaches the disk: direct (default)\n"
        "                          writes whole blocks with O_DIRECT where the file system\n"
        "                          takes it, so the log is not copied through the page cache\n"
        "                          on the workers' cores; plain writes through the page cache\n"
        "                          (faster to analyse at once after a short run, costlier during)\n"
        "  --max-event-bytes N     longest SSE event (one streamed chunk) accepted, K/M allowed\n"
        "                          (default 8M); longer fails its request as event-too-long.\n"
        "                          Memory: 2 KiB per connection, grown to the largest event it\n"
        "                          has received (at most N) and kept for the next one\n"
        "  --insecure              do not verify the server's TLS certificate or name\n"
        "  --ca-file PEM           trust this CA in addition to the system's\n"
        "  --seed N                seed of nonces and shuffles (default 1)\n"
        "  --emu-args \"FLAGS\"      flags for the built-in emulator (without --url)\n"
        "  --power SOURCE[:OPT]    sample power during the run (repeatable): emu[:URL],\n"
        "                          redfish:URL, file:CSV, rapl[:DIR], nvml[:0,1], amdsmi[:0,1], "
        "ipmi[:HOST]\n"
        "  --power-rate HZ         power samples per second, 0.01 to 1000 (default 10)\n"
        "  --server-metrics URL|auto  scrape the server's Prometheus metrics during the run\n"
        "                          (auto: the target's /metrics) into the log; each phase's\n"
        "                          results then show the server's view (requests running and\n"
        "                          waiting, KV cache, prefix cache, speculative decoding, its\n"
        "                          TTFT and ITL histograms) beside strobe's own\n"
        "  --server-metrics-rate HZ  scrapes per second, 0.01 to 100 (default 1)\n"
        "  --progress-s S          when stderr is not a terminal, a progress line every S\n"
        "                          seconds (default 10; 0: none); a terminal gets a live line\n"
        "  --transport kernel|uring|dpdk  kernel sockets through epoll (default), kernel\n"
        "                          sockets through io_uring (fewer syscalls per chunk), or\n"
        "                          DPDK + lwIP (kernel bypass; HTTP and HTTPS over IPv4;\n"
        "                          worker i drives EAL port i with its own lwIP stack and\n"
        "                          its share of --local-ip) with:\n"
        "    --dpdk-args \"EAL ARGS\"  e.g. \"--no-huge -m 256 --no-pci "
        "--vdev=net_af_packet0,iface=eth1\"\n"
        "    --local-ip A[,B...]   strobe's own addresses (16,384 connections each)\n"
        "    --netmask M (default 255.255.255.0)  --gateway IP (when the target is off-subnet)\n"
        "    --gateway-mac MAC     the next hop's MAC (a static neighbour) instead of ARP\n"
        "    --idle interrupt|backoff|poll  when polls find nothing (default interrupt):\n"
        "                          sleep on the rx queue's interrupt, where the PMD has one,\n"
        "                          else back off; back off; or busy-poll\n"
        "    --idle-spin-us U      keep polling U us after a frame before sleeping (10)\n"
        "    --idle-backoff-us U   the back-off's first sleep (20; doubles while idle); alone,\n"
        "                          0 busy-polls and more backs off, as before --idle\n"
        "    --dpdk-impair SPEC    test facility: impair received frames, "
        "loss=P,dup=P,reorder=P,jitter-ms=MS\n"
        "  --tokenizer FILE|auto|none  counts the tokens of every streamed chunk (off the hot\n"
        "                          path): a .tiktoken or tokenizer.json; auto (default) picks by\n"
        "                          --model from tokenizers/ (gpt-oss: o200k, deepseek: DeepSeek "
        "V3,\n"
        "                          the emulator: o200k); a server's per-chunk usage wins when "
        "sent\n"
        "\nUnder mpirun -n N (Open MPI): one run over N ranks; rank 0 decides, every rank sends\n"
        "its share of the load and logs into RUN_DIR/rank-K; results merge all ranks on rank 0's\n"
        "clock. Needs --url. See README.md, Several load hosts.\n");
}
