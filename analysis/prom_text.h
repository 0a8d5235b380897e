/* The Prometheus text exposition format (version 0.0.4, and the OpenMetrics text that servers
 * commonly serve in its place), read one sample at a time: `# TYPE` lines give a family its
 * type, `# HELP`, other comments, `# EOF` and blank lines are skipped, and each sample line
 * `name{label="value",...} value [timestamp]` reaches the callback with its label values
 * unescaped (\\, \" and \n) and its value as a double (NaN, +Inf and -Inf included).
 * A sample belongs to the family named by the nearest `# TYPE` above it when its name is the
 * family's or adds _bucket, _sum, _count, _total or _created to it; otherwise it is untyped.
 * A malformed line is skipped and counted, never fatal: one odd series from a server must not
 * lose the rest of the scrape. Nothing here allocates per sample; the text need not end in
 * NUL and is never read past len. */
#ifndef STROBE_PROM_TEXT_H
#define STROBE_PROM_TEXT_H
#include <stddef.h>
#include <stdint.h>

enum prom_type { PROM_UNTYPED, PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM, PROM_SUMMARY };

#define PROM_MAX_LABELS 16

struct prom_str {
    const char *p;
    size_t len;
};

struct prom_sample {
    struct prom_str name;   /* as written: vllm:time_to_first_token_seconds_bucket */
    struct prom_str family; /* its # TYPE family (vllm:time_to_first_token_seconds), or name */
    enum prom_type type;
    int nlabels;
    struct prom_str label_name[PROM_MAX_LABELS], label_value[PROM_MAX_LABELS];
    double value;
    int has_timestamp;
    int64_t timestamp_ms;
};

typedef void (*prom_sample_fn)(const struct prom_sample *s, void *arg);

struct prom_stats {
    size_t samples, malformed;
    size_t first_bad_line; /* 1-based; 0 when every line was well formed */
    char first_error[96];  /* what was wrong with it */
};

/* Calls fn for every well-formed sample of text[0..len), in order. Returns the counts. */
struct prom_stats prom_parse(const char *text, size_t len, prom_sample_fn fn, void *arg);

/* The value of label `name` of s, or NULL. */
const struct prom_str *prom_label(const struct prom_sample *s, const char *name);
/* Whether a string (not NUL-terminated) equals a C string. */
int prom_str_is(struct prom_str s, const char *c);

#endif
