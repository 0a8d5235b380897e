/* SLT phase metrics (methodology.md §1 and §6), from per-request facts:
 *  - window: [t_window_start, t_window_end) of the phase (ramp-up and drain excluded);
 *  - system output throughput: tokens of requests that did not fail whose event arrived inside
 *    the window / window length;
 *  - per-query figures (speed, TTFT, end-to-end): successful queries whose first token
 *    arrived inside the window; TTFT and latency run from the scheduled send time;
 *  - output speed = (output_tokens - tokens of the first chunk) / (t_last_chunk -
 *    t_first_chunk) (req_output_speed), queries with fewer than 2 token events left out;
 *    end-to-end speed = output_tokens / (t_done - t_sched);
 *  - requests sent: those scheduled inside the window; response rate = share of them that
 *    received at least one output token; sent = succeeded + failed by construction. */
#ifndef STROBE_SLT_METRICS_H
#define STROBE_SLT_METRICS_H
#include "chunk_metrics.h"
#include "facts.h"
#include "stats.h"

#define MAX_REASON_CLASSES 12

struct reason_count {
    char cls[40];
    char example[200];
    size_t count;
};

struct phase_metrics {
    struct phase_info info;
    double window_s;
    size_t sent, succeeded, failed, with_output;
    size_t sent_all, succeeded_all, failed_all; /* the whole phase, ramp and drain included */
    size_t retried, retried_all; /* sent again on a new connection (worker.c), window / phase */
    double response_rate;
    double output_tokens_in_window;
    double system_output_tps;
    double system_io_tps; /* input + output tokens/s of queries finishing in the window */
    struct summary speed, e2e_speed, ttft, ttfb, e2e, output_tokens, input_tokens, cached_tokens;
    size_t speed_excluded, estimated_outputs, forced_length;
    struct summary client_lag_us, kernel_to_user_us, emu_pacing_us;
    /* open-loop arrivals: the request's last byte sent minus when it was due, over the
     * window's requests that did not wait for --max-in-flight (those are counted apart) */
    struct summary dispatch_lag_s;
    size_t held_by_cap;
    /* requests whose server reported its own timings (llama.cpp): its prompt and generation
     * times, and strobe's TTFT and decode window minus them (the network and the client) */
    struct summary server_prompt_ms, server_predicted_ms, ttft_minus_server_prompt_ms,
        decode_window_minus_server_predicted_ms;
    struct chunk_metrics chunks;
    struct reason_count reasons[MAX_REASON_CLASSES]; /* the window's failures, by class */
    size_t nreasons;
    /* the whole phase's (ramp and drain too, as failed_all): a phase whose requests all failed
     * outside its window is invalid for them, and they must be there to see */
    struct reason_count reasons_all[MAX_REASON_CLASSES];
    size_t nreasons_all;
};

void slt_phase_metrics(const struct run_facts *f, const struct phase_info *ph,
                       struct phase_metrics *m);

/* Every phase's metrics, out[i] for f->phases[i], over up to `threads` threads (at least
 * one: this one): the same figures as slt_phase_metrics phase by phase. */
void slt_phases_metrics(const struct run_facts *f, struct phase_metrics *out, unsigned threads);

/* Plateau rule (methodology.md §6.2): stop after `patience` consecutive phases below
 * `ratio` × the best throughput so far. Returns 1 when the ladder should stop. */
int slt_plateau_reached(const double *throughputs, size_t n, double ratio, int patience);

#endif
