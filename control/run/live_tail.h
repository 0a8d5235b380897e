/* Live figures of a running phase for the progress line, read from the event log as the
 * collector writes it, on control's thread (never a worker's): the records appended since the
 * last look, through the analysis' own chunk reader. To stay cheap at a million events a
 * second it parses a request's events only until its first token, and at its end the last
 * event that carried data (where servers put usage). TTFT runs from when the request was due;
 * output tokens per second are the usage of the requests that ended in the last 10 s. A
 * watch on the run, not its results (those come from the whole log afterwards). */
#ifndef STROBE_LIVE_TAIL_H
#define STROBE_LIVE_TAIL_H
#include <stdint.h>

struct live_tail;

/* NULL when RUN_DIR/events.bin cannot be opened (the progress line then goes without). */
struct live_tail *live_tail_open(const char *dir);
/* Figures from now on are of this phase's requests only. */
void live_tail_phase(struct live_tail *t, int phase);
/* Reads what was appended. */
void live_tail_poll(struct live_tail *t);
/* TTFT p50 in seconds over the phase's requests with a first token so far; -1 when none. */
double live_tail_ttft_p50(struct live_tail *t);
/* Output tokens per second of the phase's requests that ended in the 10 s before now_ns (or
 * since the phase began, when shorter); -1 when no ended request gave usage. */
double live_tail_tokens_per_s(struct live_tail *t, int64_t now_ns);
void live_tail_close(struct live_tail *t);

#endif
