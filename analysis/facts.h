/* From the event log to per-request facts: the lazy half of the hot path. Each event's JSON
 * is parsed here (cJSON), never while receiving. Rules (methodology.md §6):
 *  - first token: first event with non-empty content, reasoning_content/reasoning, text, or a
 *    tool-call name/arguments; role-only, empty and usage-only events never count;
 *  - tokens: the last `usage` seen (final chunk or finish chunk); without one, the tokenizer's
 *    count of the visible text, else visible bytes/4, flagged as estimated either way;
 *  - tokens per event, by the best rule the request allows (named in count_rule):
 *    the server's per-chunk usage (vLLM continuous_usage_stats: cumulative completion_tokens
 *    on every chunk), else the tokenizer on the event's text (content, reasoning, text and
 *    tool-call name and arguments, each tokenized on its own), else unknown;
 *  - per-event tokens for throughput inside a window share the request's total in proportion
 *    to those counts (to visible bytes when unknown), so windows add up to usage. */
#ifndef STROBE_FACTS_H
#define STROBE_FACTS_H
#include "eventlog.h"
#include "server_series.h"
#include "tokenizer.h"
#include "value_counts.h"
#include <math.h>
#include <stdint.h>

enum count_rule { COUNT_NONE, COUNT_TOKENIZER, COUNT_SERVER };
/* Why a request failed, as data (its reason says it in words). */
enum fail_class {
    FAIL_NONE,
    FAIL_HTTP_STATUS,     /* a status outside 2xx */
    FAIL_TRANSPORT,       /* the dataplane's enum req_error (transport_error) */
    FAIL_MALFORMED_CHUNK, /* an event's data is not a JSON object */
    FAIL_ERROR_EVENT,     /* an event carried an error object */
    FAIL_NO_DONE,         /* the stream ended without [DONE] */
    FAIL_NO_STATUS,       /* the response ended without a status line */
    FAIL_NO_END,          /* no end record: the run stopped first */
    FAIL_BAD_USAGE,       /* its final usage holds a count no stream can have */
};
enum output_source { OUT_USAGE, OUT_TOKENIZER, OUT_BYTES };

struct req_facts {
    /* whole cache lines (arrays of them from calloc_lines): neighbours in the requests' order
     * belong to different analysis threads, and each event writes its request's facts */
    _Alignas(64) uint64_t req_id;
    int phase;
    int64_t t_sched, t_written, t_first_byte, t_first_token, t_first_answer, t_first_reasoning,
        t_last_token, t_done;
    int status;
    int transport_error; /* enum req_error */
    int failed;
    enum fail_class fail_class;
    char reason[200];       /* why it failed, one line */
    int retried;            /* sent again on a new connection after its reused one was dead */
    int held_by_cap;        /* open-loop arrivals: it fell due while --max-in-flight was reached */
    int has_server_timings; /* the server reported its own times (server_timings.h): */
    double server_prompt_ms, server_predicted_ms;
    int64_t prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens;
    int usage_seen, output_estimated, saw_done;
    int usage_per_chunk; /* every token event carried cumulative usage */
    enum count_rule count_rule;
    enum output_source output_source;
    double first_chunk_tokens; /* by count_rule; 1 when unknown (methodology.md §6.6) */
    int64_t tokenizer_tokens;  /* the tokenizer's total over the events, -1 without one */
    const char *finish_reason; /* static string: "stop", "length", "tool_calls", other, or "" */
    uint32_t n_events, n_token_events;
    int64_t t_prev_event;        /* stamp of its previous event, for the order check */
    uint32_t tok_store;          /* its token events: run_facts.tok[tok_store], */
    size_t tok_first, tok_count; /* tok_count of them from tok_first */
    /* its token events' shares of its output: share_total × weight / share_weight_sum, the
     * weight an event's count when share_by_count, else its visible bytes */
    double share_total, share_weight_sum;
    int share_by_count;
};

/* One token-carrying event in 8 bytes (a 100 M-event run's store must fit in memory): its
 * arrival as the nanoseconds since the request's previous token event (since its first token
 * for the first; TOK_DT_WIDE when outside int32: then in the store's wide list, tok_time
 * rebuilds it); the tokens it carried by the request's count_rule (TOK_K_UNKNOWN when the
 * rule counts none, TOK_K_WIDE when outside int16); its visible bytes (TOK_BYTES_WIDE when
 * 16,383 or more) with two flags, whether its count was compared with the emulator's own
 * (x_emu_tokens) and whether they differed. Its share of the request's output is computed
 * from these (tok_share), the same expression the store once kept. */
struct tok_event {
    int32_t dt;
    int16_t k;
    uint16_t bytes_flags;
};
#define TOK_DT_WIDE      INT32_MIN
#define TOK_K_UNKNOWN    INT16_MIN
#define TOK_K_WIDE       (INT16_MIN + 1)
#define TOK_BYTES_MASK   0x3fffu
#define TOK_BYTES_WIDE   TOK_BYTES_MASK
#define TOK_EMU_COMPARED (1u << 14)
#define TOK_EMU_DIFFERS  (1u << 15)

/* An event whose stamp, count or bytes did not fit its tok_event: all three in full. */
struct tok_wide {
    size_t at;
    int64_t t;
    double k, bytes;
};

/* Token events, one store per analysis thread. */
struct tok_store {
    _Alignas(64) struct tok_event *ev; /* a line of its own: its thread writes it per event */
    size_t len, cap;
    struct tok_wide *wide; /* ascending by at */
    size_t nwide, wide_cap;
};

/* The lag (receive stamp - emulator send stamp), kernel-to-user gap (userspace read - kernel
 * stamp, kernel stamps only) and the emulator's pacing (send - schedule) of a phase's token
 * events inside its window, in µs: counted as facts are read, never kept per event. */
enum event_figure { FIGURE_LAG, FIGURE_USER_GAP, FIGURE_PACING, EVENT_FIGURES };

struct phase_info {
    int index, concurrency;
    int64_t t_start, t_window_start, t_window_end, t_end;
    unsigned flags;          /* PHASE_GATES_MET */
    int64_t client_bytes;    /* memory strobe held for the phase's agents, or 0 */
    int64_t arrivals_unsent; /* open loop: due in the phase but never sent */
};

/* One device of one power source: its readings in time order. */
struct power_series {
    int source, device;
    int64_t *t;
    double *watts;    /* NAN when not given */
    double *energy_j; /* NAN when not given */
    size_t n, cap;
};

struct run_facts {
    char *header_json;
    struct req_facts *reqs;
    size_t nreqs;
    struct tok_store *tok; /* requests' token events (req_facts.tok_store) */
    size_t ntok_stores, ntok;
    struct value_counts (*phase_figures)[EVENT_FIGURES]; /* aligned with phases */
    uint64_t chunks_scanned, chunks_parsed;              /* events the scanner read, and cJSON */
    struct phase_info *phases;
    size_t nphases;
    uint64_t ts_source_events[5];
    struct power_series *power;
    size_t npower;
    size_t power_failures;        /* readings a source could not give */
    struct server_metrics server; /* --server-metrics scrapes, mapped (server_series.h) */
    int64_t *traj_t;              /* trajectory completions (agents): when, and in which phase */
    int *traj_phase;
    size_t ntraj;
    int interrupted, run_ended;
    size_t torn_bodies; /* events whose bytes lie past the end of bodies.bin */
    /* keyed event bodies (body_key.h) that cannot be put together: their key outside
     * bodies.bin, or lengths that disagree (a log altered after the run); left out */
    size_t damaged_bodies;
    /* an FPGA tap's records joined to the events (tap_join.h) */
    int tap_present;
    size_t tap_records, tap_lost, tap_matched, tap_fallback, tap_out_of_order;
    double tap_drift_ppm, tap_uncertainty_ns; /* NAN when tap_clock_note says why */
    char tap_clock_note[600];  /* tap_join_clock_note's sentence, "" when the clock was checked */
    double *tap_minus_host_us; /* per matched event: tap stamp - the host's own stamp */
    size_t ntap_minus_host;
    /* an MPI run: each rank's clock offsets, as rank 0 measured them (rank 0's log only) */
    struct rec_clock_offset *offsets;
    size_t noffsets;
    /* and, once analysis/ranks_merge.c has merged the ranks' requests in, their load */
    struct rank_load *ranks;
    size_t nranks;
    int64_t offset_uncertainty_ns; /* the largest over ranks and measurements */
};

/* One rank's share of an MPI run's load, per phase (aligned with run_facts.phases). */
struct rank_load {
    int rank;
    char host[64];
    size_t *sent, *failed;
    double *output_tps; /* its output tokens in the phase's window / the window, tokens/s */
    double *ttft_p50_s; /* its own TTFT median, s (NAN without requests) */
    double *start_s;    /* its first request's due time - the phase's start, s (NAN: none) */
};

#define FACTS_MAX_THREADS 256

/* Reads RUN_DIR, counting tokens per chunk with tok when not NULL (loaded from tokenizer_path,
 * which each further thread loads again); only the requests of phase only_phase when it is
 * >= 0 (-1: all), which skips parsing every other request's events. The requests are shared
 * among `threads` threads (0: one per core this process may use) by their ids; the facts do
 * not depend on how many. 0, or -1 with err set. */
int facts_load(const char *dir, struct tokenizer *tok, const char *tokenizer_path, unsigned threads,
               int only_phase, struct run_facts *f, char *err, size_t errlen);
/* The cores this process may run on. */
unsigned facts_default_threads(void);
/* A request's token events. */
static inline const struct tok_store *req_tokens(const struct run_facts *f,
                                                 const struct req_facts *r)
{
    return &f->tok[r->tok_store];
}
void facts_free(struct run_facts *f);

/* The full values of event `at` (a field of its tok_event marked wide). */
const struct tok_wide *tok_wide_find(const struct tok_store *ts, size_t at);
/* Event e's arrival, prev being the request's previous token event's (its t_first_token for
 * the first): its token events are read in order. */
static inline int64_t tok_time(const struct tok_store *ts, size_t e, int64_t prev)
{
    int32_t dt = ts->ev[e].dt;
    return dt == TOK_DT_WIDE ? tok_wide_find(ts, e)->t : prev + dt;
}
/* Event e's tokens by its request's count rule, NAN when unknown. */
static inline double tok_k(const struct tok_store *ts, size_t e)
{
    int16_t k = ts->ev[e].k;
    return k == TOK_K_UNKNOWN ? NAN : k == TOK_K_WIDE ? tok_wide_find(ts, e)->k : (double)k;
}
static inline double tok_bytes(const struct tok_store *ts, size_t e)
{
    uint32_t b = ts->ev[e].bytes_flags & TOK_BYTES_MASK;
    return b == TOK_BYTES_WIDE ? tok_wide_find(ts, e)->bytes : (double)b;
}
/* Event e's share of request r's output tokens (they sum to its output). */
static inline double tok_share(const struct req_facts *r, const struct tok_store *ts, size_t e)
{
    double weight = r->share_by_count ? tok_k(ts, e) : tok_bytes(ts, e);
    return r->share_weight_sum > 0 ? r->share_total * weight / r->share_weight_sum : 0;
}
/* The phase's per-event figure (facts.phases[k] and facts.phase_figures[k] align). */
const struct value_counts *phase_figure(const struct run_facts *f, const struct phase_info *ph,
                                        enum event_figure which);

/* The time from one stamp to another, in seconds (per = 1e9) or milliseconds (per = 1e6): NAN
 * when they lie too far apart for int64, which only a damaged log's stamps can (the figure
 * then leaves the pair out, as it leaves out what it cannot know). */
static inline double stamps_apart(int64_t from, int64_t to, double per)
{
    int64_t d;
    return __builtin_sub_overflow(to, from, &d) ? NAN : (double)d / per;
}

/* Output speed of one request (methodology.md §6.6): (output tokens - tokens of the first
 * chunk) / (last chunk - first chunk), tokens/s; NAN with fewer than 2 token events. */
double req_output_speed(const struct req_facts *r);
const char *count_rule_name(enum count_rule r);

#endif
