/* Simulated coding agents as a request source for one dataplane worker (share-nothing: each
 * worker owns its agents). An agent works through trajectories one after another, taken
 * from one seeded shuffled queue (the only shared state: an atomic cursor); each turn sends
 * the recorded history and tools, streams the answer, waits the tool delay, and goes on.
 * Bodies are built by appending to the agent's buffer: a turn that extends the previous one
 * appends its new messages; the tail (model, tools, max_tokens, stream options) is rewritten
 * after them each turn. The first message carries the cache-isolation nonce (methodology.md
 * §8), new for every trajectory an agent starts. */
#ifndef STROBE_AGENT_SOURCE_H
#define STROBE_AGENT_SOURCE_H
#include "endpoint.h"
#include "eventlog.h"
#include "replay.h"
#include "worker.h"
#include <stdatomic.h>
#include <stdint.h>

enum output_policy { POLICY_EXACT, POLICY_NATURAL };

struct agent_params {
    const struct replay *replay;
    const struct endpoint *ep;
    const char *api_key;
    const char *tail_fields; /* ",\"model\":…,\"stream\":true,…" with --extra-body's fields:
                                template_tail_fields() */
    enum output_policy policy;
    int chat;           /* always 1 for agents; kept for symmetry with SLT */
    double tool_time_s; /* < 0: the recorded delay (or the log-normal default) */
    double max_tool_time_s;
    uint64_t seed;
    const uint32_t *order; /* shuffled task order, shared */
    size_t norder;
    _Atomic uint64_t *cursor; /* next position in order, shared */
    struct eventlog *log;
};

struct agent_set;

/* Agents first..first+count-1 of `total` in iteration `phase`; agent i becomes active at
 * t0 + stagger_s · i / total. */
struct agent_set *agent_set_new(const struct agent_params *p, int worker, int phase, int first,
                                int count, int total, int64_t t0, double stagger_s);
struct request_source *agent_set_source(struct agent_set *s);
/* Remembers each agent's completed trajectories as the zero for agent_set_progress. */
void agent_set_mark(struct agent_set *s);
/* Trajectories completed since the mark, in total and by the agent with the fewest. */
void agent_set_progress(struct agent_set *s, uint64_t *completed, uint64_t *fewest);
/* Agents of the set that have sent their first request. */
int agent_set_started(struct agent_set *s);
/* Bytes the set holds for its agents (buffers and state), for the memory report. */
size_t agent_set_bytes(struct agent_set *s);
void agent_set_free(struct agent_set *s);

/* The tag logged with each request: agent, task and turn. */
#define AGENT_TAG(agent, task, turn)                                                               \
    (((uint64_t)(agent) << 40) | ((uint64_t)(task) << 16) | (uint64_t)(turn))
#define AGENT_TAG_AGENT(tag) ((int)((tag) >> 40))

#endif
