/* strobe-emu's shared state and the calls between its three parts: the scheduler
 * (emu_sched.c), request handling (emu_request.c) and connections with the event loop
 * (emu_server.c). Internal to strobe-emu; one thread, so no locking. */
#ifndef EMU_STATE_H
#define EMU_STATE_H
#include "emu_hist.h"
#include "emu_io.h"
#include "emu_params.h"

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_BODY         (64u << 20)
#define SPIN_NS          30000  /* last stretch before a deadline is spun, not slept */
#define NANOSLEEP_WINDOW 300000 /* below this, sleep with clock_nanosleep instead of epoll */
#define EVENT_BUF        (64 * 1024)

enum req_state {
    RS_DELAYED,
    RS_WAITING,
    RS_PREFILL_QUEUED,
    RS_PREFILLING,
    RS_DECODING,
    RS_HEADER_DRIP,
    RS_DONE
};

struct conn;

struct req {
    struct conn *conn; /* NULL once the client has gone */
    enum req_state state;
    int chat, stream, include_usage, continuous_usage;
    int64_t prompt_tokens, cached_tokens;
    int target_tokens, reasoning_target, generated;
    const char *finish;
    uint64_t rng;
    int64_t arrival_ns;
    int64_t first_token_ns; /* when its first tokens were sent (--timings) */
    int64_t last_token_ns;  /* when its previous tokens were sent, for the ITL histogram */
    enum fault_kind fault;
    int has_fault;
    int fault_at_token;
    char id[48];
    char model[128];
    struct req *next; /* waiting / prefill FIFO */
    char *text;       /* non-streaming: accumulated output */
    size_t text_len, text_cap, reasoning_len;
    int timers; /* timers in the heap that point here */
    /* decoding, but its step waits (no timer) until the connection has taken enough of its
     * output (backpressure: emu_sched_output_taken) */
    int blocked;
    int64_t blocked_due; /* that step's deadline */
};

struct conn {
    const struct emu_io *io; /* the backend that accepted it */
    int closed; /* the backend's handle is released; freed at the end of the loop iteration */
    int fd;     /* emu_io_kernel.c's socket */
    void *lw;   /* emu_lwip.c's connection */
    http_parser parser;
    char *in;
    size_t in_len, in_cap, in_parsed;
    char *out;
    size_t out_len, out_off, out_cap;
    char url[256];
    size_t url_len;
    char *body;
    size_t body_len, body_cap;
    int message_ready, keep_alive, close_after_write, writing;
    struct req *req;
    struct conn *grave_next; /* closed, freed at the end of the loop iteration */
};

struct timer {
    int64_t due;
    struct req *req;
};

struct emu_state {
    const struct emu_params *p;
    const struct emu_io *io; /* the loop's backend: kernel sockets or lwIP over DPDK */
    struct timer *heap;
    size_t heap_len, heap_cap;
    struct req *wait_head, *wait_tail, *pf_head, *pf_tail;
    int admitted, decoding, prefill_busy;
    int64_t prefill_free_at;
    struct prefix_cache *cache;
    uint64_t fault_rng, request_seq;
    /* counters for /metrics */
    uint64_t requests_total, prompt_tokens_total, generation_tokens_total;
    uint64_t cache_query_tokens, cache_hit_tokens, faults_injected[FAULT_COUNT];
    struct emu_hist ttft, itl; /* the server's side: first token after arrival, between steps */
    double energy_j;
    int64_t energy_at_ns;
    int64_t started_ns;
    struct req *in_timer;   /* being processed: emu_server_conn_close must not free it */
    struct conn *graveyard; /* closed connections, freed once no event can name them */
    char ev[EVENT_BUF];
};

/* The one server (strobe-emu is one thread), defined in emu_server.c. */
extern struct emu_state emu_state;

/* emu_sched.c: energy, timers, admission, prefill, decode and the end of responses */
void emu_sched_set_decoding(int64_t t, int delta);
struct timer emu_sched_heap_pop(void);
void emu_sched_heap_push(int64_t due, struct req *r);
void emu_sched_on_timer(struct req *r, int64_t sched);
void emu_sched_begin_request(struct req *r, int64_t t);
/* The connection of r took output, or is gone (r->conn NULL): a step waiting on it is due. */
void emu_sched_output_taken(struct req *r);
/* Frees r once nothing names it: no timer, not queued, and finished or its client gone. */
void emu_sched_req_maybe_free(struct req *r);
int emu_sched_waiting_count(void);

/* emu_request.c: parsing a generation request, and the non-generation endpoints */
void emu_request_dispatch(struct conn *c);
/* An OpenAI-style JSON error response. */
void emu_request_reply_error(struct conn *c, int status, const char *msg);

/* emu_server.c: connections */
struct conn *emu_server_conn_new(const struct emu_io *io); /* a backend's accepted connection */
int emu_server_conn_write(struct conn *c, const char *data, size_t len);
int emu_server_send_event(struct conn *c, const char *event, size_t len);
void emu_server_send_response(struct conn *c, int status, const char *ctype, const char *body,
                              size_t len);
void emu_server_conn_close(struct conn *c);
/* Closes with an RST, as a crashed server would. */
void emu_server_conn_reset(struct conn *c);
void emu_server_conn_after_response(struct conn *c);

#endif
