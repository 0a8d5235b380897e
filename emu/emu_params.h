/* strobe-emu's parameters: the performance model, the wire style, faults, and how they are
 * read from the command line and from a JSON profile (profile first, flags override). */
#ifndef EMU_PARAMS_H
#define EMU_PARAMS_H
#include <stdint.h>

enum usage_style { USAGE_FINAL_CHUNK, USAGE_FINISH_CHUNK };

/* kernel sockets, or lwIP over the ports of a DPDK EAL (emu_io.h) */
enum emu_transport { EMU_TRANSPORT_KERNEL, EMU_TRANSPORT_DPDK };

enum fault_kind {
    FAULT_RESET,
    FAULT_HTTP500,
    FAULT_HTTP503,
    FAULT_HTTP429,
    FAULT_MALFORMED,
    FAULT_ERROR_EVENT,
    FAULT_STALL,
    FAULT_SLOW_FIRST_BYTE,
    FAULT_ENDLESS_HEADERS,
    FAULT_COUNT
};

struct fault_spec {
    double probability[FAULT_COUNT];
    double seconds[FAULT_COUNT]; /* for stall and slow-first-byte */
};

struct emu_params {
    char listen_host[64];
    int listen_port;
    enum emu_transport transport;
    const char *dpdk_args; /* EAL arguments, naming the ports (--transport dpdk) */
    char control_host[64]; /* DPDK: also kernel connections here (control_port >= 0) */
    int control_port;
    double idle_backoff_us; /* DPDK: sleep after an empty poll (0: busy-poll) */
    char model[128];
    double step_us;          /* A: fixed part of a decode step; 0 (with C 0): unpaced */
    double step_us_per_seq;  /* C: per running request */
    int max_batch;           /* requests admitted at once (prefilling + decoding) */
    double prefill_tps;      /* uncached prompt tokens per second, one prefill at a time */
    int64_t kv_cache_tokens; /* prefix cache capacity */
    int spec_tokens;         /* K draft tokens per step; 0 = no speculative decoding */
    double spec_accept;      /* probability each draft token is accepted */
    int accelerators;
    double power_idle_w, power_max_w; /* per accelerator */
    enum usage_style usage_style;
    int timings; /* llama.cpp's per-request "timings" object in the last chunk (--timings) */
    uint64_t seed;
    double reasoning_fraction; /* share of output tokens sent as reasoning_content */
    int default_max_tokens;    /* when a request names none */
    int natural_min_tokens;    /* natural length = min + hash(request) % span, unless ignore_eos */
    int natural_span_tokens;
    struct fault_spec faults;
};

void emu_params_defaults(struct emu_params *p);
/* Returns 0, or -1 after printing one sentence naming the bad field. */
int emu_params_load_profile(struct emu_params *p, const char *path);
int emu_params_parse_faults(struct fault_spec *f, const char *spec);
int emu_params_check(const struct emu_params *p);
const char *emu_params_fault_name(enum fault_kind k);
/* Unpaced (--step-us 0, which emu_params_check allows only with --step-us-per-seq 0): no step
 * time at all; each decode step follows once its connection has taken the previous one. */
static inline int emu_params_unpaced(const struct emu_params *p) { return p->step_us == 0; }

#endif
