/* The tool calls one streamed answer carried, gathered from its SSE events after the run, and
 * the format check of AA's single-user tool (methodology.md §8): finish reason `tool_calls`
 * when there are calls; indices contiguous from 0; each name 1–128 printable ASCII characters
 * without spaces; each call's arguments parse as a JSON object. A call the output cap cut off
 * (finish reason `length`, the last call) is excused. Each call's deltas carry its `index`
 * (OpenAI streaming); names and arguments are the concatenation of its deltas. */
#ifndef STROBE_TOOL_CALLS_H
#define STROBE_TOOL_CALLS_H
#include <stddef.h>
#include <stdint.h>

struct tool_call {
    int seen;
    char *name, *args;
    size_t name_len, args_len;
};

struct tool_calls {
    struct tool_call *v; /* by index */
    uint32_t n;          /* highest index seen + 1 */
};

/* One SSE event's data (only events that mention tool_calls are parsed). */
void tool_calls_feed(struct tool_calls *tc, const char *data, size_t len);
/* 0 when the calls pass the check, else -1 with the first rule broken in why. */
int tool_calls_check(const struct tool_calls *tc, const char *finish_reason, char *why,
                     size_t whylen);
void tool_calls_free(struct tool_calls *tc);

#endif
