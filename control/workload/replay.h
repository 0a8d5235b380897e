/* Agent trajectories in AA's replay format (aa-agentperf-local, methodology.md §7): a
 * directory with manifest.json and traces/TASK_ID.jsonl, one model turn per line, each line
 * holding the whole request history. The loader keeps each task's messages once, as JSON
 * fragments serialised at load time and shared read-only by every agent: a turn is "the first
 * n messages of the task", so memory grows with the longest turn, not the sum of turns.
 * A turn whose history does not extend the previous one starts a new segment. */
#ifndef STROBE_REPLAY_H
#define STROBE_REPLAY_H
#include <stddef.h>
#include <stdint.h>

struct replay_turn {
    uint32_t base;                /* index of this turn's first message in task->msgs */
    uint32_t nmsgs;               /* messages in this turn's request */
    int rebuild;                  /* 1: does not extend the previous turn's history */
    int32_t tools;                /* index into task->tools, or -1 for none */
    int32_t target_output_tokens; /* -1 when not recorded */
    int32_t max_output_tokens;    /* -1 when not recorded */
    double tool_delay_ms;         /* may be fractional; -1 when not recorded */
    int32_t recorded_tool_calls;  /* -1 when not recorded */
    int64_t body_bytes;           /* bytes of the messages of this request, serialised */
};

struct replay_task {
    char *task_id;
    char **msgs; /* serialised message objects */
    size_t *msg_len;
    long *nonce_at; /* offset inside msgs[i] where the cache nonce goes, or -1 */
    size_t nmsgs, cap_msgs;
    char **tools; /* serialised tools arrays, deduplicated */
    size_t *tools_len;
    size_t ntools;
    struct replay_turn *turns;
    size_t nturns;
    size_t max_body_bytes; /* largest request's messages, serialised */
};

struct replay {
    struct replay_task *tasks;
    size_t ntasks;
    size_t skipped;
    char name[256];
    size_t shared_bytes; /* memory held by the shared message and tools fragments */
};

/* Loads and validates DIR. 0, or -1 with one sentence in err (file, line, rule broken).
 * Trajectories missing a field the replay needs are skipped; each skip is printed to
 * stderr with its reason. */
int replay_load(const char *dir, struct replay *r, char *err, size_t errlen);
void replay_free(struct replay *r);

/* Truncates each task at the first turn whose recorded prompt would exceed max_tokens
 * (estimated from serialised bytes / 4 when the trace has no count); a task whose first
 * prompt already does is left with no turn (the sources skip it), or, with keep_first (what
 * runs made before that rule did, for exporting them), keeps that one turn. Nothing when
 * max <= 0. */
struct replay_cut {
    size_t shortened, left_out; /* tasks */
};
struct replay_cut replay_truncate(struct replay *r, long max_context_tokens, int keep_first);

#endif
