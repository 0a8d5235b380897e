/* `strobe agents`: agent capacity by the AgentPerf method. Each search iteration runs N
 * agents replaying trajectories: staggered start, warm-up, a measured window (extended until
 * the steady-state gates hold or --max-window-s), then a drain. Its verdict against each SLO
 * tier comes from the event log, and the ramp-and-bisect search (analysis/agent_metrics.h)
 * asks for the next N. Iterations already measured settle later tiers' verdicts without a
 * rerun. */
#include "flag_once.h"
#include "commands.h"

#include "agent_results.h"
#include "agent_source.h"
#include "oneshot.h"
#include "replay.h"
#include "request_template.h"
#include "results.h"
#include "rank_run.h"
#include "ranks.h"
#include "progress.h"
#include "run_env.h"
#include "rng.h"
#include "run_flags.h"
#include "num_arg.h"
#include "slo_tiers.h"
#include "must_alloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct agents_config {
    struct run_flags f; /* target, run directory, TLS, threads, timeouts, seed, power */
    const char *trajectories, *slo_tier, *model_profile;
    int slo_tier_given;
    double slo_speed, slo_ttft, tool_time_s, max_tool_time_s;
    double warmup_s, stagger_s, window_s, max_window_s, drain_s;
    int min_trajectories, min_per_agent;
    int accelerators, start_agents, resolution, max_agents;
    double power_w, max_error_rate;
    long max_context_tokens;
    struct replay_cut cut; /* what --max-context-tokens did to the replay */
    enum output_policy policy;
};

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: strobe agents [--url URL --model NAME] --trajectories REPLAY_DIR --out RUN_DIR\n"
        "                     (--model-profile NAME [--slo-tier NAME|all] | --slo-speed "
        "TOKENS_PER_S --slo-ttft SECONDS)\n"
        "                     [options]\n\n"
        "Agent capacity (AgentPerf): the most concurrent agents replaying coding-agent\n"
        "trajectories while P25 output speed and P95 TTFT meet the tier. Without --url, strobe\n"
        "starts its built-in emulator on loopback.\n\n"
        "  --trajectories DIR      AA replay directory (manifest.json + traces/); see strobe "
        "import\n"
        "  --model-profile NAME    gpt-oss-120b, deepseek-v4-pro or deepseek-v4-pro-launch tiers\n"
        "  --slo-tier NAME|all     which tier of the profile (default all)\n"
        "  --slo-speed N --slo-ttft S   a custom tier instead\n"
        "  --output-policy exact|natural  exact: recorded output length with ignore_eos (default)\n"
        "  --tool-time S           fixed tool time instead of the recorded one\n"
        "  --max-tool-time S       cap on any tool time (default 60)\n"
        "  --max-context-tokens N  cut trajectories before a prompt over N tokens (one whose\n"
        "                          first prompt is longer is left out)\n"
        "  --stagger-s S           agents start spread over S seconds (default 30)\n"
        "  --warmup-s S            from the first start to the window (default 60)\n"
        "  --window-s S            measured window, at least (default 600)\n"
        "  --min-trajectories N    window gate: trajectories completed (default 30)\n"
        "  --min-per-agent N       window gate: per agent (default 3)\n"
        "  --max-window-s S        longest window while waiting for the gates (default 3600)\n"
        "  --drain-s S             wait for in-flight requests after a window (default 600)\n"
        "  --start-agents N        first iteration (default 1); --resolution N (default 1)\n"
        "  --max-agents N          cap of the search (default 100000)\n"
        "  --max-error-rate F      an iteration with more failed requests fails (default 0.01)\n"
        "  --accelerators N        for per-accelerator figures (default 1)\n"
        "  --power-w W             accelerator power for per-MW figures when none is measured\n"
        "                          (measured accelerator-only --power sources come first)\n");
    run_flags_usage(f);
    fprintf(f,
            "\nExit status: 0 done and valid, 1 run failed, 2 bad command line or trajectories,\n"
            "3 interrupted, 4 done but not valid (the reason is printed; results are kept).\n");
}

static int parse_args(int argc, char **argv, struct agents_config *c)
{
    memset(c, 0, sizeof *c);
    run_flags_defaults(&c->f);
    c->slo_speed = c->slo_ttft = -1;
    c->tool_time_s = -1;
    c->max_tool_time_s = 60;
    c->stagger_s = 30;
    c->warmup_s = 60;
    c->window_s = 600;
    c->max_window_s = 3600;
    c->drain_s = 600;
    c->min_trajectories = AGENTS_MIN_TRAJECTORIES;
    c->min_per_agent = AGENTS_MIN_PER_AGENT;
    c->accelerators = 1;
    c->start_agents = 1;
    c->resolution = 1;
    c->max_agents = 100000;
    c->max_error_rate = 0.01;
    c->power_w = -1;
    c->slo_tier = "all";
    enum {
        O_TRAJ = 256,
        O_TIER,
        O_PROFILE,
        O_SPEED,
        O_TTFT,
        O_TOOL,
        O_MAXTOOL,
        O_WARM,
        O_STAGGER,
        O_WINDOW,
        O_MAXWIN,
        O_DRAIN,
        O_MINTRAJ,
        O_MINPER,
        O_ACC,
        O_POWER,
        O_START,
        O_RES,
        O_MAXAG,
        O_ERR,
        O_POLICY,
        O_CTX,
        O_HELP
    };
    static const struct option own[] = {{"trajectories", 1, 0, O_TRAJ},
                                        {"slo-tier", 1, 0, O_TIER},
                                        {"model-profile", 1, 0, O_PROFILE},
                                        {"slo-speed", 1, 0, O_SPEED},
                                        {"slo-ttft", 1, 0, O_TTFT},
                                        {"tool-time", 1, 0, O_TOOL},
                                        {"max-tool-time", 1, 0, O_MAXTOOL},
                                        {"warmup-s", 1, 0, O_WARM},
                                        {"stagger-s", 1, 0, O_STAGGER},
                                        {"window-s", 1, 0, O_WINDOW},
                                        {"max-window-s", 1, 0, O_MAXWIN},
                                        {"drain-s", 1, 0, O_DRAIN},
                                        {"min-trajectories", 1, 0, O_MINTRAJ},
                                        {"min-per-agent", 1, 0, O_MINPER},
                                        {"accelerators", 1, 0, O_ACC},
                                        {"power-w", 1, 0, O_POWER},
                                        {"start-agents", 1, 0, O_START},
                                        {"resolution", 1, 0, O_RES},
                                        {"max-agents", 1, 0, O_MAXAG},
                                        {"max-error-rate", 1, 0, O_ERR},
                                        {"output-policy", 1, 0, O_POLICY},
                                        {"max-context-tokens", 1, 0, O_CTX},
                                        {"help", 0, 0, O_HELP},
                                        {0, 0, 0, 0}};
    struct option *opts = run_flags_table(own);
    int o, rc = 0;
    opterr = 0;
    optind = 1;
    struct flag_once seen = {0};
    static const char *const repeatable[] = {"power", NULL};
    while (!rc && (o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if ((rc = flag_once(&seen, opts, o, optarg, "agents", repeatable))) continue;
        int taken = run_flags_take(&c->f, o, optarg, argv[optind - 1], "agents");
        if (taken) {
            rc = taken == 2 ? 2 : 0;
            continue;
        }
        switch (o) {
        case O_TRAJ: c->trajectories = optarg; break;
        case O_TIER:
            c->slo_tier = optarg;
            c->slo_tier_given = 1;
            break;
        case O_PROFILE: c->model_profile = optarg; break;
        case O_POLICY:
            if (!strcmp(optarg, "exact"))
                c->policy = POLICY_EXACT;
            else if (!strcmp(optarg, "natural"))
                c->policy = POLICY_NATURAL;
            else
                rc = run_flags_bad("agents", "--output-policy must be exact or natural, got '%s'",
                                   optarg);
            break;
        case O_HELP:
        case 'h': usage(stdout); exit(0);
        case '?':
            rc = run_flags_bad("agents", "unknown option or missing value in '%s'",
                               argv[optind - 1]);
            break;
        default: {
            /* counts are whole; seconds stay below 10^8 so their nanoseconds fit 64 bits */
            int whole = o == O_MINTRAJ || o == O_MINPER || o == O_ACC || o == O_START ||
                        o == O_RES || o == O_MAXAG || o == O_CTX;
            double v, hi = o == O_ERR ? 1 : o == O_CTX ? 1e12 : whole ? INT_MAX : 1e8;
            if (num_arg("agents", run_flag_name(opts, o), optarg, 0, hi, whole, &v)) {
                rc = 2;
                break;
            }
            switch (o) {
            case O_SPEED: c->slo_speed = v; break;
            case O_TTFT: c->slo_ttft = v; break;
            case O_TOOL: c->tool_time_s = v; break;
            case O_MAXTOOL: c->max_tool_time_s = v; break;
            case O_WARM: c->warmup_s = v; break;
            case O_STAGGER: c->stagger_s = v; break;
            case O_WINDOW: c->window_s = v; break;
            case O_MAXWIN: c->max_window_s = v; break;
            case O_DRAIN: c->drain_s = v; break;
            case O_MINTRAJ: c->min_trajectories = (int)v; break;
            case O_MINPER: c->min_per_agent = (int)v; break;
            case O_ACC: c->accelerators = (int)v; break;
            case O_POWER: c->power_w = v; break;
            case O_START: c->start_agents = (int)v; break;
            case O_RES: c->resolution = (int)v; break;
            case O_MAXAG: c->max_agents = (int)v; break;
            case O_ERR: c->max_error_rate = v; break;
            case O_CTX: c->max_context_tokens = (long)v; break;
            }
        }
        }
    }
    free(opts);
    if (rc) return rc;
    if (optind < argc) return run_flags_bad("agents", "unexpected argument '%s'", argv[optind]);
    if ((rc = run_flags_check(&c->f, "agents"))) return rc;
    if (!c->trajectories) return run_flags_bad("agents", "--trajectories REPLAY_DIR is required");
    if ((c->slo_speed >= 0) != (c->slo_ttft >= 0))
        return run_flags_bad("agents", "--slo-speed and --slo-ttft go together");
    if (c->slo_speed < 0 && !c->model_profile)
        return run_flags_bad(
            "agents", "give --model-profile (with --slo-tier) or --slo-speed and --slo-ttft");
    /* the custom tier won and the profile's tiers were never run, without a word */
    if (c->slo_speed >= 0 && (c->model_profile || c->slo_tier_given))
        return run_flags_bad("agents",
                             "--%s and --slo-speed/--slo-ttft both choose the SLO; give "
                             "the profile's tiers or a custom one",
                             c->model_profile ? "model-profile" : "slo-tier");
    /* no first token comes in 0 s: every iteration would fail, and the search report 0 */
    if (c->slo_speed >= 0 && c->slo_ttft <= 0)
        return run_flags_bad("agents", "--slo-ttft must be above 0 seconds");
    if (c->start_agents < 1 || c->max_agents < c->start_agents)
        return run_flags_bad("agents", "--start-agents must be >= 1 and <= --max-agents");
    if (c->window_s <= 0) return run_flags_bad("agents", "--window-s must be > 0");
    if (c->accelerators < 1) return run_flags_bad("agents", "--accelerators must be >= 1");
    return 0;
}

/* A first request before any iteration: is the server there, and (for the exact policy)
 * does it honour ignore_eos? Asks for 48 tokens of a one-word answer. A flaky server may fail
 * a probe: a failure worth retrying (oneshot_worth_retrying) is tried again after a pause
 * (oneshot_retry_pause), up to 8 attempts within --request-timeout-s in all; a silent server is
 * given one timeout (--idle-timeout-s or --request-timeout-s, whichever ends first), not eight. 1
 * honoured, 0 not, PROBE_NO_USAGE when the answer carried no usage (so the question cannot be
 * answered), -1 no probe succeeded (why says what came back).
 */
#define PROBE_NO_USAGE 2
static int probe_server(struct run_env *e, const struct agents_config *c, char *why, size_t wl)
{
    struct template_params tp = {&e->ep, e->model, 1, 8, 48, 1, c->f.extra_body, e->api_key, 7};
    struct request_template t;
    char err[256];
    if (template_build(&t, &tp, err, sizeof err)) return 0;
    char *req = must_malloc(t.len, "the probe request");
    char note[512];
    snprintf(note, sizeof note,
             "strobe agents: waiting for %s to answer the first probe (48 output tokens); it is "
             "given up to %g s (--request-timeout-s), %g s without a byte (--idle-timeout-s)",
             e->url, c->f.request_timeout_s, c->f.idle_timeout_s);
    struct oneshot_result r;
    int rc = -1, attempts = 0, noted = 0;
    int64_t start = clock_now_ns();
    struct oneshot_limits limits = oneshot_attempts_begin((struct oneshot_limits){
        c->f.request_timeout_s, c->f.idle_timeout_s, c->f.connect_timeout_s, 0});
    do {
        size_t len = template_fill(&t, 0, (uint64_t)attempts + 1, req, t.len);
        rc = oneshot_request_noted(e->ops, e->ctl_tctx, &e->ep, req, len, &limits,
                                   noted ? NULL : note, &r);
        noted |= r.noted; /* said once, by whichever attempt waited */
        attempts++;
    } while (rc && attempts < 8 && oneshot_worth_retrying(&r) &&
             !oneshot_retry_pause(attempts, &limits));
    free(req);
    template_free(&t);
    if (rc) {
        /* the run would only collect this failure again, request after request */
        oneshot_describe(&r, "no answer", attempts, start, why, wl);
        return -1;
    }
    if (r.completion_tokens < 0) return PROBE_NO_USAGE;
    return r.completion_tokens == 48;
}

struct live {
    const struct agents_config *c;
    struct run_env *e;
    struct agent_params ap;
    int phase;
    struct iteration_metrics *done; /* measured iterations, by agents */
    size_t ndone;
    int all_gates_met;
    int tty;
    int rank_failed; /* under mpirun: a rank died or did not answer */
};

/* What the others tell rank 0 about the running iteration, summed with its own: agents
 * started, trajectories since the window opened and the fewest by one agent; *all_marked
 * is 0 while a rank has not opened its window. 0, or -1 when a rank failed. */
static int iteration_progress(struct rank_progress *all, int64_t started, uint64_t done,
                              uint64_t fewest, int marked, int64_t *started_all, uint64_t *done_all,
                              uint64_t *fewest_all, int *all_marked)
{
    struct rank_progress mine = {started, marked ? (int64_t)done : -1,
                                 fewest == UINT64_MAX ? INT64_MAX : (int64_t)fewest};
    if (rank_run_progress(&mine, all)) return -1;
    *started_all = 0;
    *done_all = 0;
    *fewest_all = UINT64_MAX;
    *all_marked = 1;
    for (int k = 0; k < ranks_size(); k++) {
        *started_all += all[k].started;
        if (all[k].done < 0) *all_marked = 0;
        if (all[k].done > 0) *done_all += (uint64_t)all[k].done;
        if (all[k].fewest != INT64_MAX && (uint64_t)all[k].fewest < *fewest_all)
            *fewest_all = (uint64_t)all[k].fewest;
    }
    return 0;
}

/* One search iteration: p->concurrency agents, p->share of them here (all of them in one
 * process), from p->t_start on this process's clock. Rank 0 (or the only process) decides
 * when the window opens and ends, from every rank's progress, and computes the iteration's
 * verdict metrics into out over every rank's requests; the others follow its signals (out
 * is NULL there). 0, or -1 when interrupted or a rank failed. */
static int run_iteration(struct live *L, const struct rank_command *p,
                         struct iteration_metrics *out)
{
    const struct agents_config *c = L->c;
    struct run_env *e = L->e;
    int n = e->threads;
    int me = ranks_rank(), ranks = rank_run_active();
    int agents = p->concurrency, share = p->share, first_agent = 0;
    for (int k = 0; k < me; k++) first_agent += rank_share(agents, k, ranks_size());
    int64_t t0 = p->t_start;
    while (clock_now_ns() < t0 && !run_interrupted) run_sleep_s(0.001);
    int64_t ws = t0 + (int64_t)(c->warmup_s * 1e9);
    int64_t win = (int64_t)(c->window_s * 1e9);
    int64_t win_max =
        (int64_t)((c->window_s > c->max_window_s ? c->window_s : c->max_window_s) * 1e9);
    /* the window opens only once every agent has started: a window that opens while agents
     * still wait for their start measures fewer agents than the iteration claims */
    double last_start_s = agents > 1 ? c->stagger_s * (agents - 1) / agents : 0;
    unsigned extended = 0;
    if (last_start_s >= c->warmup_s && !me) {
        fprintf(stderr,
                "strobe: iteration %d: the last of %d agents starts %.1f s in (--stagger-s "
                "%g), after the %g s warm-up (--warmup-s): the warm-up is extended until "
                "every agent has sent its first request\n",
                L->phase, agents, last_start_s, c->stagger_s, c->warmup_s);
    }
    run_env_put_phase(e, &(struct rec_phase){.index = L->phase,
                                             .concurrency = agents,
                                             .t_start = t0,
                                             .t_window_start = ws,
                                             .t_window_end = ws + win,
                                             .flags = extended});
    eventlog_sync(e->log);
    struct agent_set **sets = must_calloc((size_t)n, sizeof *sets, "the workers' agents");
    size_t bytes = 0;
    for (int i = 0, first = first_agent; i < n; i++) {
        int count = share / n + (i < share % n);
        sets[i] = agent_set_new(&L->ap, i, L->phase, first, count, agents, t0, c->stagger_s);
        first += count;
    }
    for (int i = 0; i < n; i++) {
        atomic_store(&e->w[i].ctl.phase, L->phase);
        atomic_store(&e->w[i].ctl.source, agent_set_source(sets[i]));
        atomic_store(&e->w[i].ctl.issuing, 1);
    }
    int marked = 0, gates = 0, failed = 0;
    int64_t we = 0;
    struct rank_progress *all =
        must_calloc((size_t)ranks_size(), sizeof *all, "the ranks' progress");
    for (int k = 0; k < ranks_size(); k++) all[k] = (struct rank_progress){0, -1, INT64_MAX};
    /* the others follow rank 0's signals, and stop waiting for them after the longest
     * iteration rank 0 could run */
    int64_t give_up =
        t0 + (int64_t)((c->warmup_s + c->stagger_s +
                        (c->window_s > c->max_window_s ? c->window_s : c->max_window_s) + 600) *
                       1e9);
    struct progress pr;
    progress_begin(&pr, e, L->phase);
    while (!run_interrupted || me) {
        int64_t now = clock_now_ns();
        int64_t started = 0;
        for (int i = 0; i < n; i++) started += agent_set_started(sets[i]);
        uint64_t done = 0, fewest = UINT64_MAX;
        if (marked)
            for (int i = 0; i < n; i++) {
                uint64_t d, f;
                agent_set_progress(sets[i], &d, &f);
                done += d;
                if (f < fewest) fewest = f;
            }
        if (me) {
            int op = 0;
            struct rank_progress mine = {started, marked ? (int64_t)done : -1,
                                         fewest == UINT64_MAX ? INT64_MAX : (int64_t)fewest};
            if (rank_run_signal(&op) || rank_run_progress(&mine, NULL)) {
                failed = 1;
                break;
            }
            if (op == RANK_MARK && !marked) {
                ws = now;
                for (int i = 0; i < n; i++) agent_set_mark(sets[i]);
                marked = 1;
            }
            if (op == RANK_END) break;
            if (now > give_up) {
                fprintf(stderr,
                        "strobe agents: rank %d (host %s): rank 0 on host %s did not end "
                        "iteration %d in time; the run ends.\n",
                        me, ranks_host(me), ranks_host(0), L->phase);
                failed = 1;
                break;
            }
            run_sleep_s(0.05);
            continue;
        }
        int all_marked = 1;
        if (ranks && iteration_progress(all, started, done, fewest, marked, &started, &done,
                                        &fewest, &all_marked)) {
            failed = 1;
            break;
        }
        if (!marked && now >= ws) {
            if (started < agents) {
                ws = now + 1; /* look again at the next turn of this loop */
            } else {
                if (ws != t0 + (int64_t)(c->warmup_s * 1e9)) {
                    extended = PHASE_WARMUP_EXTENDED;
                    fprintf(stderr,
                            "%sstrobe: iteration %d: every agent has started; the window "
                            "opens after a warm-up of %.1f s\n",
                            L->tty ? "\r\033[K" : "", L->phase, (double)(now - t0) / 1e9);
                }
                ws = now;
                for (int i = 0; i < n; i++) agent_set_mark(sets[i]);
                marked = 1;
                int op = RANK_MARK;
                if (ranks && rank_run_signal(&op)) {
                    failed = 1;
                    break;
                }
            }
        }
        int64_t we_min = ws + win, we_max = ws + win_max;
        gates = marked && all_marked && done >= (uint64_t)c->min_trajectories &&
                (fewest == UINT64_MAX || fewest >= (uint64_t)c->min_per_agent);
        if (marked && now >= we_min && (gates || now >= we_max)) {
            we = now;
            break;
        }
        char what[96];
        snprintf(what, sizeof what, "iteration %d  %d agents  trajectories %llu", L->phase, agents,
                 (unsigned long long)done);
        progress_show(&pr, e, what, now < ws ? "warm-up" : "measure", 0);
        run_sleep_s(0.05);
    }
    progress_end(&pr);
    free(all);
    if (ranks && !me && !failed) {
        int op = RANK_END;
        failed = rank_run_signal(&op);
    }
    if (!we) we = clock_now_ns() > ws ? clock_now_ns() : ws;
    for (int i = 0; i < n; i++) bytes += agent_set_bytes(sets[i]);
    for (int i = 0; i < n; i++) atomic_store(&e->w[i].ctl.issuing, 0);
    run_env_drain(e, c->drain_s, NULL, NULL);
    for (int i = 0; i < n; i++) atomic_store(&e->w[i].ctl.source, NULL);
    run_env_wait_workers_let_go(e);
    for (int i = 0; i < n; i++) agent_set_free(sets[i]);
    free(sets);
    if (L->tty) fprintf(stderr, "\r\033[K");
    int gates_met = gates && c->window_s >= AGENTS_COMPARABLE_WINDOW_S;
    if (!gates_met) L->all_gates_met = 0;
    run_env_put_phase(e,
                      &(struct rec_phase){.index = L->phase,
                                          .concurrency = agents,
                                          .t_start = t0,
                                          .t_window_start = ws,
                                          .t_window_end = we,
                                          .t_end = clock_now_ns(),
                                          .flags = (gates_met ? PHASE_GATES_MET : 0) | extended});
    struct log_record mem = rec_mark_encode(&(struct rec_mark){.kind = MARK_CLIENT_MEMORY,
                                                               .t = clock_now_ns(),
                                                               .phase = L->phase,
                                                               .client_bytes = (int64_t)bytes});
    eventlog_put(e->log, n, &mem, NULL, 0);
    eventlog_sync(e->log);
    if (failed) return -1;
    if (ranks) {
        struct rank_report r = {.interrupted = run_interrupted != 0};
        if (rank_run_report(&r, NULL, c->drain_s + RANK_SLACK_S)) return -1;
    }
    if (me) return 0;
    if (run_interrupted) return -1;
    char err[512];
    /* this iteration's records only: the search's analysis stays linear in the run's length */
    if (results_compute_iteration(c->f.out, NULL, L->phase, out, err, sizeof err)) {
        fprintf(stderr, "strobe agents: %s.\n", err);
        return -1;
    }
    fprintf(stderr,
            "strobe: iteration %d: %d agents, %zu requests (%zu failed), output speed p25 "
            "%.2f tokens/s, TTFT p95 %.4f s, %zu trajectories, %.0f KiB per agent\n",
            L->phase, agents, out->requests, out->failed, out->speed_p25, out->ttft_p95,
            out->trajectories_done, (double)bytes / agents / 1024);
    L->phase++;
    return 0;
}

/* The search's measurement: reuse an iteration at the same count, else run one. */
static int measure_live(void *arg, int agents, struct iteration_metrics *out)
{
    struct live *L = arg;
    for (size_t i = 0; i < L->ndone; i++)
        if (L->done[i].agents == agents) {
            *out = L->done[i];
            return 0;
        }
    if (run_interrupted) return -1;
    struct rank_command p = {.op = RANK_PHASE,
                             .index = L->phase,
                             .concurrency = agents,
                             .share = agents,
                             .t_start = clock_now_ns() + (rank_run_active() ? RANK_LEAD_NS : 0)};
    if (rank_run_active() && (rank_run_sync(L->e, L->phase) || rank_run_command(&p, 0))) {
        L->rank_failed = 1;
        return -1;
    }
    if (run_iteration(L, &p, out)) {
        L->rank_failed |= !run_interrupted;
        return -1;
    }
    L->done = must_realloc(L->done, (L->ndone + 1) * sizeof *L->done, "the iterations' results");
    L->done[L->ndone++] = *out;
    return 0;
}

/* A rank other than 0: runs its share of each iteration rank 0 commands, until told to stop.
 * 0 done, -1 a rank failed (said). */
static int follow_search(struct live *L)
{
    const struct agents_config *c = L->c;
    double wait_s = c->warmup_s + c->stagger_s + c->window_s + c->max_window_s + c->drain_s + 600;
    for (;;) {
        struct rank_command p;
        if (rank_run_sync(L->e, 0) || rank_run_command(&p, wait_s)) return -1;
        if (p.op == RANK_STOP) return 0;
        L->phase = p.index;
        if (run_iteration(L, &p, NULL)) return -1;
    }
}

/* A rank other than 0 takes the output policy rank 0's probe chose from the header. */
static void policy_from_header(const char *header, struct agents_config *c)
{
    cJSON *h = cJSON_Parse(header);
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(h, "config"), "output_policy");
    if (cJSON_IsString(pol))
        c->policy = strcmp(pol->valuestring, "exact") ? POLICY_NATURAL : POLICY_EXACT;
    cJSON_Delete(h);
}

static char *header_json(const struct agents_config *c, const struct run_env *e,
                         const struct replay *rp, const cJSON *tiers, int policy_honoured)
{
    cJSON *cfg;
    cJSON *h = run_header_new("agents",
                              &(struct run_target){c->f.url, e->ep.addr_text, e->model,
                                                   e->transport_desc, !c->f.insecure},
                              &cfg);
    cJSON_AddStringToObject(cfg, "trajectories", c->trajectories);
    cJSON_AddStringToObject(cfg, "replay_name", rp->name);
    cJSON_AddNumberToObject(cfg, "trajectories_loaded", (double)rp->ntasks);
    cJSON_AddNumberToObject(cfg, "trajectories_skipped", (double)rp->skipped);
    cJSON_AddNumberToObject(cfg, "shared_trajectory_bytes", (double)rp->shared_bytes);
    cJSON_AddStringToObject(cfg, "output_policy", c->policy == POLICY_EXACT ? "exact" : "natural");
    if (policy_honoured == PROBE_NO_USAGE) /* no usage in the probe's answer: not known */
        cJSON_AddNullToObject(cfg, "ignore_eos_honoured");
    else
        cJSON_AddBoolToObject(cfg, "ignore_eos_honoured", policy_honoured);
    if (c->tool_time_s >= 0)
        cJSON_AddNumberToObject(cfg, "tool_time_s", c->tool_time_s);
    else
        cJSON_AddStringToObject(cfg, "tool_time_s",
                                "recorded (log-normal, median 1 s, when missing)");
    cJSON_AddNumberToObject(cfg, "max_tool_time_s", c->max_tool_time_s);
    cJSON_AddNumberToObject(cfg, "max_context_tokens", (double)c->max_context_tokens);
    cJSON_AddNumberToObject(cfg, "trajectories_shortened_to_max_context", (double)c->cut.shortened);
    cJSON_AddNumberToObject(cfg, "trajectories_over_max_context", (double)c->cut.left_out);
    cJSON_AddNumberToObject(cfg, "stagger_s", c->stagger_s);
    cJSON_AddNumberToObject(cfg, "warmup_s", c->warmup_s);
    cJSON_AddNumberToObject(cfg, "window_s", c->window_s);
    cJSON_AddNumberToObject(cfg, "max_window_s", c->max_window_s);
    cJSON_AddNumberToObject(cfg, "min_trajectories", c->min_trajectories);
    cJSON_AddNumberToObject(cfg, "min_per_agent", c->min_per_agent);
    cJSON_AddNumberToObject(cfg, "drain_s", c->drain_s);
    cJSON_AddNumberToObject(cfg, "threads", c->f.threads);
    cJSON_AddNumberToObject(cfg, "seed", (double)c->f.seed);
    cJSON_AddStringToObject(cfg, "extra_body", c->f.extra_body ? c->f.extra_body : "");
    cJSON *s = cJSON_AddObjectToObject(h, "search");
    cJSON_AddNumberToObject(s, "start_agents", c->start_agents);
    cJSON_AddNumberToObject(s, "resolution", c->resolution);
    cJSON_AddNumberToObject(s, "max_agents", c->max_agents);
    cJSON_AddNumberToObject(s, "max_error_rate", c->max_error_rate);
    cJSON_AddNumberToObject(s, "accelerators", c->accelerators);
    if (c->power_w > 0) cJSON_AddNumberToObject(s, "power_w", c->power_w);
    cJSON_AddStringToObject(
        s, "rule",
        "P25 output speed >= tier speed and P95 TTFT <= tier TTFT and error rate <= "
        "max_error_rate; failed requests count as TTFT infinite, speed 0");
    cJSON_AddItemToObject(s, "tiers", cJSON_Duplicate(tiers, 1));
    char *text = must_have(cJSON_PrintUnformatted(h), "the run's header");
    cJSON_Delete(h);
    return text;
}

int cmd_agents(int argc, char **argv)
{
    struct agents_config c;
    int rc = parse_args(argc, argv, &c);
    if (rc) return rc;
    char err[1024];
    int me = ranks_rank();
    if (rank_run_active() && !c.f.url) {
        if (!me)
            fprintf(stderr, "strobe agents: under mpirun every rank needs the server's --url (the "
                            "built-in emulator listens on rank 0's loopback only); start "
                            "strobe-emu on a reachable address and give its URL.\n");
        return 2;
    }
    cJSON *tiers =
        slo_tiers_select(c.model_profile, c.slo_tier, c.slo_speed, c.slo_ttft, err, sizeof err);
    if (!tiers) {
        fprintf(stderr, "strobe agents: %s.\n", err);
        return 2;
    }
    struct replay rp;
    if (replay_load(c.trajectories, &rp, err, sizeof err)) {
        fprintf(stderr, "strobe agents: %s.\n", err);
        cJSON_Delete(tiers);
        return 2;
    }
    c.cut = replay_truncate(&rp, c.max_context_tokens, 0);
    size_t usable = 0;
    for (size_t i = 0; i < rp.ntasks; i++) usable += rp.tasks[i].nturns > 0;
    if (!usable) {
        fprintf(stderr,
                "strobe agents: no trajectory fits --max-context-tokens %ld: the first prompt "
                "of each is longer (about 4 bytes a token); raise it, or leave it out.\n",
                c.max_context_tokens);
        replay_free(&rp);
        cJSON_Delete(tiers);
        return 2;
    }
    if (c.cut.shortened || c.cut.left_out)
        fprintf(stderr,
                "strobe agents: --max-context-tokens %ld: trajectories cut to the turns that "
                "fit: %zu; left out, their first prompt alone being longer: %zu; replayed: "
                "%zu of %zu.\n",
                c.max_context_tokens, c.cut.shortened, c.cut.left_out, usable, rp.ntasks);
    struct run_env e;
    struct run_env_options ro = run_flags_env(
        &c.f, "agents", rank_share(c.max_agents < 100000 ? c.max_agents : 4096, me, ranks_size()));
    if ((rc = run_env_open(&e, &ro))) {
        replay_free(&rp);
        cJSON_Delete(tiers);
        return rc;
    }
    c.f.url = e.url;
    c.f.threads = e.threads; /* --transport dpdk's default fits the ports found */
    /* rank 0 probes for every rank */
    int honoured = me ? 1 : probe_server(&e, &c, err, sizeof err);
    if (honoured < 0 && run_interrupted) {
        fprintf(stderr,
                "strobe agents: interrupted during the first probe, before the run: "
                "nothing was measured and %s was not written.\n",
                c.f.out);
        run_env_close(&e);
        replay_free(&rp);
        cJSON_Delete(tiers);
        return 3;
    }
    if (honoured < 0) {
        fprintf(stderr,
                "strobe agents: the first request to %s failed: %s; check --url, "
                "--model and STROBE_API_KEY.\n",
                e.url, err);
        run_env_close(&e);
        replay_free(&rp);
        cJSON_Delete(tiers);
        return 1;
    }
    if (c.policy == POLICY_EXACT && honoured == PROBE_NO_USAGE) {
        fprintf(stderr,
                "strobe: the server's answer to the probe carried no usage (strobe asks for it "
                "with stream_options.include_usage), so whether it honours ignore_eos cannot be "
                "told: this run uses the natural output policy (results say so); a server that "
                "reports usage lets the exact policy hold.\n");
        c.policy = POLICY_NATURAL;
    } else if (c.policy == POLICY_EXACT && !honoured) {
        fprintf(stderr, "strobe: the server did not honour ignore_eos in a probe: the exact "
                        "output policy cannot hold, so this run uses natural (results say so)\n");
        c.policy = POLICY_NATURAL;
    }
    char *extra = template_tail_fields(e.model, c.f.extra_body, err, sizeof err);
    if (!extra) { /* run_flags_check refused such flags already */
        fprintf(stderr, "strobe agents: %s.\n", err);
        run_env_close(&e);
        replay_free(&rp);
        cJSON_Delete(tiers);
        return 2;
    }
    char *header =
        rank_run_header("agents", me ? NULL : header_json(&c, &e, &rp, tiers, honoured), &rc);
    if (rc) {
        free(header);
        free(extra);
        run_env_close(&e);
        replay_free(&rp);
        cJSON_Delete(tiers);
        return 1;
    }
    if (me) policy_from_header(header, &c);
    struct worker_config wc = {.max_request_bytes = 2048,
                               .request_timeout_s = c.f.request_timeout_s,
                               .idle_timeout_s = c.f.idle_timeout_s,
                               .connect_timeout_s = c.f.connect_timeout_s};
    char dir[4200];
    rc = rank_run_dir(c.f.out, dir, sizeof dir);
    if (!rc)
        rc = run_env_start(&e, dir, header, &wc);
    else
        run_env_close(&e);
    free(header);
    if (rc) {
        free(extra);
        replay_free(&rp);
        cJSON_Delete(tiers);
        return rc;
    }
    /* the shared trajectory queue: a seeded shuffle, each rank its own (no two ranks replay
     * the same trajectories in the same order) */
    uint64_t seed = c.f.seed + 1000003ULL * (uint64_t)me;
    uint32_t *order = must_calloc(rp.ntasks, sizeof *order, "the trajectories' order");
    for (size_t i = 0; i < rp.ntasks; i++) order[i] = (uint32_t)i;
    uint64_t s = seed;
    for (size_t i = rp.ntasks; i > 1; i--) {
        size_t j = splitmix64(&s) % i;
        uint32_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    _Atomic uint64_t cursor = 0;
    struct live L = {.c = &c, .e = &e, .all_gates_met = 1, .tty = isatty(2) && !rank_run_active()};
    L.ap = (struct agent_params){
        &rp,  &e.ep, e.api_key, extra,   c.policy, 1, c.tool_time_s, c.max_tool_time_s,
        seed, order, rp.ntasks, &cursor, e.log};
    if (!me)
        fprintf(stderr,
                "strobe: %s model %s, %zu trajectories (%zu skipped, %.1f MiB shared), %d "
                "threads, log in %s\n",
                e.url, e.model, rp.ntasks, rp.skipped, (double)rp.shared_bytes / 1048576,
                c.f.threads, c.f.out);
    int interrupted = 0;
    struct slo_tier *tl = NULL;
    size_t nt = 0;
    slo_tiers_from_json(tiers, &tl, &nt);
    if (me) {
        L.rank_failed = follow_search(&L) != 0;
        nt = 0;
    }
    for (size_t i = 0; i < nt && !interrupted; i++) {
        struct search_result r;
        agent_search(&tl[i], c.start_agents, c.resolution, c.max_agents, c.max_error_rate,
                     measure_live, &L, &r);
        if (!r.complete)
            interrupted = 1;
        else
            fprintf(stderr, "strobe: tier %s: max %d agents\n", tl[i].name, r.max_agents);
        search_result_free(&r);
    }
    free(tl);
    cJSON_Delete(tiers);
    if (!L.rank_failed && rank_run_stop(&e)) L.rank_failed = 1;
    e.rank_failed = L.rank_failed;
    rc = run_env_finish(&e, dir, interrupted || run_interrupted);
    free(L.done);
    free(order);
    free(extra);
    replay_free(&rp);
    return rc;
}
