/* Agent recordings (mini-swe-agent, SWE-agent, OpenAI message lists) read into one form and
 * written as traces of AA's replay format (methodology.md §7); `strobe import`
 * (control/commands/import.c) names the tasks, writes the manifest and sums up. */
#ifndef STROBE_RECORDING_H
#define STROBE_RECORDING_H
#include <cjson/cJSON.h>
#include <stddef.h>

enum recording_format { RECORDING_MINI_SWE_AGENT, RECORDING_SWE_AGENT, RECORDING_OPENAI_MESSAGES };

struct recording_turn {
    int msg_index; /* the assistant message answering this turn */
    long output_tokens;
    long prompt_tokens; /* recorded, or -1 */
    long tool_delay_ms; /* -1 when not recorded */
    cJSON *calls;       /* recorded_tool_calls_after (owned) */
};

struct recording {
    char task_id[200];
    cJSON *messages; /* cleaned history, owned */
    cJSON *tools;    /* owned or NULL */
    struct recording_turn *turns;
    int nturns, cap_turns;
    char source[64];
    char note[160]; /* a change import made to the recording, for one line of output, or "" */
};

/* The format --from names (mini-swe-agent, swe-agent, openai-messages), or -1. */
int recording_format(const char *name);

/* Reads one recording file's text into r (zeroed by the caller). 0, or 1 with the reason to
 * skip the file in why: text that is not one JSON document, a key twice in an object, a
 * message without a string role, or a value strobe agents would refuse in the replay (a
 * count over INT32_MAX, a delay over 1e12 ms). Either way recording_free(r) afterwards. */
int recording_parse(enum recording_format format, const char *text, struct recording *r, char *why,
                    size_t wl);

/* The task's name: its recorded id, else PATH's file name, less leading dots, up to its
 * next dot ("recording" when that leaves nothing); every character but letters, digits, '-',
 * '_' and '.' becomes '_'. */
void recording_name(struct recording *r, const char *path);

/* Writes OUT/traces/TASK_ID.jsonl: turn k carries the messages before its assistant answer.
 * Counts the recorded tool calls and the total tool delay (ms). 0, or -1 with one sentence
 * in err. Never replaces an existing file; a file it started and could not finish (a full
 * disk) is removed. */
int recording_write_trace(const char *out, const struct recording *r, long *tool_calls,
                          long *delay_total, char *err, size_t errlen);

void recording_free(struct recording *r);

#endif
