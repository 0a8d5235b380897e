/* One single-user agents iteration as the per-turn records of AA's single-user tool
 * (agentperf-local), computed from the event log after the run (methodology.md §8):
 *  - the iteration: the run's first one at one agent; its requests in the order they were
 *    sent; each task's first replay kept, later replays of it left out (counted), so a task
 *    appears once, as in AA's run; a replay the iteration's end cut short is kept and named;
 *  - send start = the request's scheduled time (at one agent, when strobe began sending it);
 *    TTFB = first byte − send start; TTFT = first visible-output event − send start; decode
 *    window = first to last visible-output event; E2E = response end − send start;
 *  - tokens: the server's last usage (server), the run's tokenizer over the visible text
 *    (local); reported = server, else local;
 *  - a turn fails on any strobe failure, on a stream cut before its end (aborted), on AA's
 *    tool-call format check (tool_calls.h), and under the exact output policy when it did not
 *    finish with `length` at the target count;
 *  - response_tool_calls: the calls the answer streamed (highest `index` + 1);
 *  - per-turn decode speed (reported − 1) / window, needing 2 tokens and a window > 0;
 *  - normalisation to the target length: time per token = window / (observed − 1),
 *    normalised E2E = max(0, E2E − window + time per token × (target − 1)); a warning when
 *    observed / target < 0.5, or when there is no window;
 *  - replayed tool delay: from the turn's end to the next turn of its task being due (0 after
 *    its last turn: strobe starts the next task at once).
 * Every request of the iteration is measured by these rules (aa_turns.all); the exported
 * ones (aa_turns.t) are copies of the first replays. */
#ifndef STROBE_AA_TURNS_H
#define STROBE_AA_TURNS_H
#include "facts.h"
#include <stddef.h>
#include <stdint.h>

#define AA_SHORT_OUTPUT_RATIO 0.5

struct aa_turn {
    const struct req_facts *r;
    int task, turn;      /* indices into the run's replay (the request's tag) */
    const char *task_id; /* names, from the replay (aa_turn_plan) */
    char turn_id[256];
    int conversation_idx;
    int task_incomplete; /* its task's replay was cut short by the iteration's end */
    int in_window;       /* scheduled inside the iteration's measured window */
    int exported;        /* the first replay of its task: written as AA's records */
    int success, aborted;
    char error[240]; /* why it failed, "" when it did not */
    int requested_max_output_tokens;
    int target_output_tokens; /* -1 when the replay has none */
    double recorded_tool_delay_ms, replayed_tool_delay_ms;
    double ttfb_ms, ttft_ms, e2e_ms, generation_ms; /* NAN when not measured */
    int64_t server_prompt_tokens, server_output_tokens, server_cached_prompt_tokens; /* -1 */
    int64_t local_output_tokens;                                                     /* -1 */
    int64_t reported_output_tokens; /* server, else local, else -1 */
    uint32_t response_chunks, response_tool_calls;
    const char *finish_reason;  /* NULL when none */
    double decode_tokens_per_s; /* NAN when unmeasurable */
    /* normalisation */
    int64_t norm_target_tokens; /* -1 when not normalised */
    double generation_ms_per_token, normalized_generation_ms, normalized_e2e_ms; /* NAN */
    const char *warning; /* "observed_output_below_target", "decode_window_unmeasurable", NULL */
    double observed_to_target_ratio;
};

struct aa_turns {
    const struct phase_info *phase;
    struct aa_turn *t; /* the exported turns, in send order */
    size_t n;
    struct aa_turn *all; /* every request of the iteration, exported or not */
    size_t nall;
    size_t repeats_left_out; /* turns of later replays of a task already kept */
    int exact_policy;
    /* the run stopped during this iteration (agent_iteration_cut_short), and whether by an
     * interruption (else its log has no end: killed, crashed or still running) */
    int cut_short, run_interrupted;
};

/* Whether exported turn i is the first of a task the iteration's end cut short (one per such
 * task). */
static inline int aa_turn_starts_cut_task(const struct aa_turns *t, size_t i)
{
    return t->t[i].task_incomplete && (i == 0 || t->t[i - 1].task != t->t[i].task);
}

/* What the replay says of a turn (task, turn indices): its recorded target and tool delay. */
struct aa_turn_plan {
    const char *task_id; /* the replay's names for the turn */
    char turn_id[256];
    int conversation_idx;
    int task_turns;                  /* turns in the task's replay */
    int target_output_tokens;        /* -1 when not recorded */
    int requested_max_output_tokens; /* what the run asked the server for */
    double recorded_tool_delay_ms;
};
typedef void (*aa_plan_fn)(void *arg, int task, int turn, struct aa_turn_plan *out);

/* Finds the run's first iteration at one agent and builds its turns; reads RUN_DIR's log
 * again for each request's tag and its tool calls. 0, or -1 with one sentence in err. */
int aa_turns_collect(const char *run_dir, const struct run_facts *f, int exact_policy,
                     aa_plan_fn plan, void *plan_arg, struct aa_turns *out, char *err,
                     size_t errlen);
void aa_turns_free(struct aa_turns *t);

/* Σ(tokens − 1) / Σ window over successful turns without tool calls (tokens/s), and
 * Σ tokens / Σ E2E over successful turns (tokens/s); NAN without any. */
double aa_pooled_decode_tokens_per_s(const struct aa_turns *t);
double aa_end_to_end_tokens_per_s(const struct aa_turns *t);

#endif
