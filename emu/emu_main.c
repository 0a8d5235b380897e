/* strobe-emu: command line. Flags override the profile, whatever their order. */
#include "emu_capacity.h"
#include "emu_params.h"
#include "emu_server.h"
#include "json_must.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu_request.h"
#include "tokenizer.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: strobe-emu [--profile FILE] [options]\n"
        "       strobe-emu --capacity [--concurrency N --prompt-tokens N --output-tokens N]\n"
        "                  [--turn-new-tokens N --turn-output-tokens N --tool-s S\n"
        "                   --target-speed TOK_PER_S --target-ttft-s S] [model options]\n"
        "\nAn OpenAI-compatible streaming server whose performance is a known function of load.\n"
        "\nserver:\n"
        "  --listen HOST:PORT        address to listen on (default 127.0.0.1:8000); port 0: a "
        "free\n"
        "                            port, named on the first line of stderr\n"
        "  --transport kernel|dpdk   kernel sockets (default), or lwIP over DPDK: every port the\n"
        "                            EAL finds gets one lwIP interface with the --listen IPv4\n"
        "                            address (netmask /24), and each connection is answered on\n"
        "                            the port it came in on\n"
        "  --dpdk-args \"EAL ARGS\"    with --transport dpdk: EAL arguments naming the ports, "
        "e.g.\n"
        "                            \"--no-huge -m 512 --no-pci --no-telemetry --file-prefix emu\n"
        "                            --vdev=net_memif0,role=server,socket=/tmp/emu.sock,\n"
        "                            socket-abstract=no\"\n"
        "  --idle-backoff-us U       with --transport dpdk: sleep U microseconds after an\n"
        "                            empty poll while no decode step is due sooner (default 0:\n"
        "                            busy-poll a core; a request arriving during a sleep waits\n"
        "                            for the wake-up, which a loaded machine makes long)\n"
        "  --control-listen HOST:PORT  with --transport dpdk: also serve kernel connections here\n"
        "                            (strobe sends its calibration probes through the kernel;\n"
        "                            scrapers of /metrics), sharing the one model and counters\n"
        "  --model NAME              model id served by /v1/models (default strobe-emu)\n"
        "  --usage-style final-chunk|finish-chunk   where usage goes (default final-chunk)\n"
        "  --timings                 a llama.cpp-style \"timings\" object in each stream's last\n"
        "                            chunk: prompt_ms (arrival to first token), predicted_ms\n"
        "                            (first token to last), their token counts and rates\n"
        "  --faults SPEC             e.g. "
        "reset=0.01,http500=0.01,stall=0.01:2,slow-first-byte=0.01:1\n"
        "                            kinds: reset http500 http503 http429 malformed error-event\n"
        "                            stall[:S] slow-first-byte[:S] endless-headers\n"
        "  --seed S                  same seed and requests give the same tokens and schedule\n"
        "  --tokenizer FILE          count prompt_tokens with this tokenizer (.tiktoken or\n"
        "                            tokenizer.json) instead of rendered bytes / 4; costs about\n"
        "                            20 us per KB of prompt on the emulator's thread\n"
        "model (t_step(b) = A + C*b microseconds for b decoding requests):\n"
        "  --step-us A               fixed part of a decode step, microseconds (default 8000);\n"
        "                            0 with --step-us-per-seq 0: unpaced, each step as soon\n"
        "                            as the connection took the last (no --capacity)\n"
        "  --step-us-per-seq C       per decoding request, microseconds (default 20)\n"
        "  --max-batch N             requests admitted at once (default 256)\n"
        "  --prefill-tps P           uncached prompt tokens per second (default 20000)\n"
        "  --kv-cache-tokens N       prefix cache capacity, tokens (default 2000000)\n"
        "  --spec-tokens K           draft tokens per step, 0 = off (default 0)\n"
        "  --spec-accept P           acceptance probability of each draft token\n"
        "  --reasoning-fraction F    share of output sent as reasoning_content (default 0)\n"
        "  --accelerators N          (default 8)\n"
        "  --power-idle-w W          per accelerator, watts (default 150)\n"
        "  --power-max-w W           per accelerator at full batch, watts (default 700)\n"
        "  --profile FILE            JSON with any of these as fields (see emu/profiles)\n");
}

/* A flag's value as a finite number: strtod takes inf and nan, and an infinite step put
 * every chunk's deadline past the end of int64 nanoseconds (x_emu_sched_ns came out
 * negative), while NaN fails every range check's comparison and so passed them all. */
static int parse_double(const char *flag, const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(*out)) {
        fprintf(stderr, "strobe-emu: %s needs a finite number, got '%s'.\n", flag, s);
        return -1;
    }
    return 0;
}

/* A count's value: a whole number that its field holds (lo..hi), not truncated: 2.7 batch
 * slots were silently 2. Written 1e6 or 1000000 alike. */
static int parse_whole(const char *flag, const char *s, double lo, double hi, double *out)
{
    if (parse_double(flag, s, out)) return -1;
    if (*out != floor(*out)) {
        fprintf(stderr, "strobe-emu: %s needs a whole number, got '%s'.\n", flag, s);
        return -1;
    }
    if (*out < lo || *out > hi) {
        fprintf(stderr, "strobe-emu: %s needs a whole number from %.0f to %.0f, got '%s'.\n", flag,
                lo, hi, s);
        return -1;
    }
    return 0;
}

/* --seed: 64 bits, read exactly as decimal digits (through a double, digits past 2^53 were
 * lost). Negative seeds are refused, as strobe's own --seed refuses them: -1 would only be
 * another spelling of 18446744073709551615 (and its conversion from a double was undefined
 * behaviour), so every seed has one spelling. */
static int parse_seed(const char *flag, const char *s, uint64_t *out)
{
    int digits = *s != 0;
    for (const char *q = s; *q; q++) digits &= *q >= '0' && *q <= '9';
    errno = 0;
    unsigned long long v = digits ? strtoull(s, NULL, 10) : 0;
    if (!digits || errno) {
        fprintf(stderr,
                "strobe-emu: %s needs a whole number from 0 to 18446744073709551615, got "
                "'%s'.\n",
                flag, s);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

/* HOST:PORT or [V6]:PORT into host and port; port 0 lets the kernel choose. */
static int parse_host_port(const char *flag, const char *arg, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(arg, ':');
    if (!colon || colon == arg || !colon[1]) {
        fprintf(stderr, "strobe-emu: %s needs HOST:PORT, got '%s'.\n", flag, arg);
        return -1;
    }
    size_t hl = (size_t)(colon - arg);
    const char *h = arg;
    if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') h++, hl -= 2;
    if (hl >= hostlen) {
        fprintf(stderr, "strobe-emu: %s host is too long.\n", flag);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = 0;
    double v;
    if (parse_double(flag, colon + 1, &v)) return -1;
    if (v < 0 || v > 65535 || v != (int)v) {
        fprintf(stderr, "strobe-emu: %s port must be 0..65535, got '%s'.\n", flag, colon + 1);
        return -1;
    }
    *port = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    enum {
        O_LISTEN = 256,
        O_MODEL,
        O_STEP,
        O_STEPSEQ,
        O_BATCH,
        O_PREFILL,
        O_KV,
        O_SPECK,
        O_SPECP,
        O_ACCEL,
        O_PIDLE,
        O_PMAX,
        O_USAGE,
        O_TIMINGS,
        O_SEED,
        O_PROFILE,
        O_FAULTS,
        O_CAP,
        O_CONC,
        O_PROMPT,
        O_CACHED,
        O_OUTPUT,
        O_TNEW,
        O_TOUT,
        O_TOOL,
        O_TSPEED,
        O_TTTFT,
        O_REASON,
        O_TOKENIZER,
        O_TRANSPORT,
        O_DPDK_ARGS,
        O_BACKOFF,
        O_CONTROL,
        O_HELP
    };
    static const struct option opts[] = {{"listen", 1, 0, O_LISTEN},
                                         {"model", 1, 0, O_MODEL},
                                         {"step-us", 1, 0, O_STEP},
                                         {"step-us-per-seq", 1, 0, O_STEPSEQ},
                                         {"max-batch", 1, 0, O_BATCH},
                                         {"prefill-tps", 1, 0, O_PREFILL},
                                         {"kv-cache-tokens", 1, 0, O_KV},
                                         {"spec-tokens", 1, 0, O_SPECK},
                                         {"spec-accept", 1, 0, O_SPECP},
                                         {"accelerators", 1, 0, O_ACCEL},
                                         {"power-idle-w", 1, 0, O_PIDLE},
                                         {"power-max-w", 1, 0, O_PMAX},
                                         {"usage-style", 1, 0, O_USAGE},
                                         {"timings", 0, 0, O_TIMINGS},
                                         {"seed", 1, 0, O_SEED},
                                         {"profile", 1, 0, O_PROFILE},
                                         {"faults", 1, 0, O_FAULTS},
                                         {"capacity", 0, 0, O_CAP},
                                         {"concurrency", 1, 0, O_CONC},
                                         {"prompt-tokens", 1, 0, O_PROMPT},
                                         {"cached-tokens", 1, 0, O_CACHED},
                                         {"output-tokens", 1, 0, O_OUTPUT},
                                         {"turn-new-tokens", 1, 0, O_TNEW},
                                         {"turn-output-tokens", 1, 0, O_TOUT},
                                         {"tool-s", 1, 0, O_TOOL},
                                         {"target-speed", 1, 0, O_TSPEED},
                                         {"target-ttft-s", 1, 0, O_TTTFT},
                                         {"reasoning-fraction", 1, 0, O_REASON},
                                         {"tokenizer", 1, 0, O_TOKENIZER},
                                         {"transport", 1, 0, O_TRANSPORT},
                                         {"dpdk-args", 1, 0, O_DPDK_ARGS},
                                         {"idle-backoff-us", 1, 0, O_BACKOFF},
                                         {"control-listen", 1, 0, O_CONTROL},
                                         {"help", 0, 0, O_HELP},
                                         {0, 0, 0, 0}};
    json_must_init();
    struct emu_params p;
    emu_params_defaults(&p);
    /* the profile is applied first so that flags override it */
    for (int i = 1; i < argc; i++) {
        const char *path = NULL;
        if (!strcmp(argv[i], "--profile") && i + 1 < argc)
            path = argv[i + 1];
        else if (!strncmp(argv[i], "--profile=", 10))
            path = argv[i] + 10;
        if (path && emu_params_load_profile(&p, path)) return 2;
    }
    struct capacity_query q = {.concurrency = 1,
                               .prompt_tokens = 1000,
                               .output_tokens = 1000,
                               .turn_new_tokens = 2000,
                               .turn_output_tokens = 150,
                               .tool_s = 1.0};
    int capacity = 0, c;
    const char *tokenizer_path = NULL;
    double v;
    opterr = 0;
    int li = -1;
    while ((c = getopt_long(argc, argv, "h", opts, &li)) != -1) {
        /* the option as typed, for one getopt could not take; a bad value names the flag it
         * was given to (argv[optind - 1] is the value itself once getopt has consumed it) */
        const char *typed = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
        char flag[64] = "?";
        if (li >= 0) snprintf(flag, sizeof flag, "--%s", opts[li].name);
        li = -1;
        switch (c) {
        case O_LISTEN:
            if (parse_host_port("--listen", optarg, p.listen_host, sizeof p.listen_host,
                                &p.listen_port))
                return 2;
            break;
        case O_CONTROL:
            if (parse_host_port("--control-listen", optarg, p.control_host, sizeof p.control_host,
                                &p.control_port))
                return 2;
            break;
        case O_MODEL: snprintf(p.model, sizeof p.model, "%s", optarg); break;
        case O_USAGE:
            if (!strcmp(optarg, "final-chunk"))
                p.usage_style = USAGE_FINAL_CHUNK;
            else if (!strcmp(optarg, "finish-chunk"))
                p.usage_style = USAGE_FINISH_CHUNK;
            else {
                fprintf(stderr, "strobe-emu: --usage-style must be final-chunk or finish-chunk.\n");
                return 2;
            }
            break;
        case O_TIMINGS: p.timings = 1; break;
        case O_PROFILE: break;
        case O_TOKENIZER: tokenizer_path = optarg; break;
        case O_TRANSPORT:
            if (!strcmp(optarg, "kernel")) {
                p.transport = EMU_TRANSPORT_KERNEL;
            } else if (!strcmp(optarg, "dpdk")) {
#ifndef STROBE_EMU_HAVE_DPDK
                fprintf(stderr, "strobe-emu: --transport dpdk: this strobe-emu was built without "
                                "DPDK and lwIP (install dpdk-dev and liblwip-dev, then rebuild "
                                "with -Ddpdk=enabled).\n");
                return 2;
#endif
                p.transport = EMU_TRANSPORT_DPDK;
            } else {
                fprintf(stderr, "strobe-emu: --transport must be kernel or dpdk, got '%s'.\n",
                        optarg);
                return 2;
            }
            break;
        case O_DPDK_ARGS: p.dpdk_args = optarg; break;
        case O_FAULTS:
            if (emu_params_parse_faults(&p.faults, optarg)) return 2;
            break;
        case O_CAP: capacity = 1; break;
        case O_HELP:
        case 'h': usage(stdout); return 0;
        case '?':
            fprintf(stderr, "strobe-emu: unknown or incomplete option '%s'; see --help.\n", typed);
            return 2;
        case O_SEED:
            if (parse_seed(flag, optarg, &p.seed)) return 2;
            break;
        /* counts: whole numbers their fields hold; emu_params_check and --capacity's check
         * below bound them further */
        case O_BATCH:
        case O_SPECK:
        case O_ACCEL:
        case O_CONC:
            if (parse_whole(flag, optarg, -INT_MAX, INT_MAX, &v)) return 2;
            if (c == O_BATCH) p.max_batch = (int)v;
            if (c == O_SPECK) p.spec_tokens = (int)v;
            if (c == O_ACCEL) p.accelerators = (int)v;
            if (c == O_CONC) q.concurrency = (int)v;
            break;
        case O_KV:
        case O_PROMPT:
        case O_CACHED:
        case O_OUTPUT:
        case O_TNEW:
        case O_TOUT:
            /* 2^53: every whole number below is exact in the double it is read into */
            if (parse_whole(flag, optarg, -9007199254740992.0, 9007199254740992.0, &v)) return 2;
            if (c == O_KV) p.kv_cache_tokens = (int64_t)v;
            if (c == O_PROMPT) q.prompt_tokens = (long)v;
            if (c == O_CACHED) q.cached_tokens = (long)v;
            if (c == O_OUTPUT) q.output_tokens = (long)v;
            if (c == O_TNEW) q.turn_new_tokens = (long)v;
            if (c == O_TOUT) q.turn_output_tokens = (long)v;
            break;
        default:
            if (parse_double(flag, optarg, &v)) return 2;
            switch (c) {
            case O_STEP: p.step_us = v; break;
            case O_STEPSEQ: p.step_us_per_seq = v; break;
            case O_PREFILL: p.prefill_tps = v; break;
            case O_SPECP: p.spec_accept = v; break;
            case O_PIDLE: p.power_idle_w = v; break;
            case O_PMAX: p.power_max_w = v; break;
            case O_REASON: p.reasoning_fraction = v; break;
            case O_BACKOFF: p.idle_backoff_us = v; break;
            case O_TOOL: q.tool_s = v; break;
            case O_TSPEED: q.target_speed = v; break;
            case O_TTTFT: q.target_ttft_s = v; break;
            }
        }
    }
    if (optind < argc) {
        fprintf(stderr, "strobe-emu: unexpected argument '%s'; see --help.\n", argv[optind]);
        return 2;
    }
    if (emu_params_check(&p)) return 2;
    if (capacity) {
        if (q.concurrency < 1 || q.prompt_tokens < 0 || q.cached_tokens < 0 ||
            q.cached_tokens > q.prompt_tokens || q.output_tokens < 1) {
            fprintf(stderr, "strobe-emu: --capacity needs concurrency >= 1, 0 <= cached <= "
                            "prompt tokens, output tokens >= 1.\n");
            return 2;
        }
        if (emu_params_unpaced(&p)) {
            fprintf(stderr, "strobe-emu: --capacity needs a paced model (--step-us > 0): "
                            "unpaced, the speed is whatever the client takes.\n");
            return 2;
        }
        emu_capacity_print(&p, &q);
        return 0;
    }
    struct tokenizer *tok = NULL;
    if (tokenizer_path) {
        char err[512];
        tok = tokenizer_load(tokenizer_path, err, sizeof err);
        if (!tok) {
            fprintf(stderr, "strobe-emu: --tokenizer: %s.\n", err);
            return 2;
        }
        emu_request_count_prompts_with(tok);
    }
    int rc = emu_serve(&p);
    tokenizer_free(tok);
    return rc;
}
