#include "emu_params.h"

#include "read_file.h"
#include "json_whole.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const fault_names[FAULT_COUNT] = {
    "reset",       "http500", "http503",         "http429",         "malformed",
    "error-event", "stall",   "slow-first-byte", "endless-headers",
};

const char *emu_params_fault_name(enum fault_kind k)
{
    return k < FAULT_COUNT ? fault_names[k] : "?";
}

void emu_params_defaults(struct emu_params *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->listen_host, sizeof p->listen_host, "127.0.0.1");
    p->listen_port = 8000;
    p->control_port = -1;
    snprintf(p->model, sizeof p->model, "strobe-emu");
    p->step_us = 8000;
    p->step_us_per_seq = 20;
    p->max_batch = 256;
    p->prefill_tps = 20000;
    p->kv_cache_tokens = 2000000;
    p->accelerators = 8;
    p->power_idle_w = 150;
    p->power_max_w = 700;
    p->usage_style = USAGE_FINAL_CHUNK;
    p->seed = 1;
    p->default_max_tokens = 1024;
    p->natural_min_tokens = 16;
    p->natural_span_tokens = 496;
}

int emu_params_parse_faults(struct fault_spec *f, const char *spec)
{
    char buf[1024];
    if (strlen(spec) >= sizeof buf) {
        fprintf(stderr, "strobe-emu: --faults is longer than %zu characters; shorten it.\n",
                sizeof buf - 1);
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq) {
            fprintf(stderr, "strobe-emu: fault '%s' needs '=PROBABILITY', e.g. reset=0.01.\n",
                    item);
            return -1;
        }
        *eq = 0;
        int kind = -1;
        for (int k = 0; k < FAULT_COUNT; k++)
            if (!strcmp(item, fault_names[k])) kind = k;
        if (kind < 0) {
            fprintf(stderr,
                    "strobe-emu: unknown fault '%s'; known: reset, http500, http503, http429, "
                    "malformed, error-event, stall, slow-first-byte, endless-headers.\n",
                    item);
            return -1;
        }
        char *end;
        errno = 0;
        double prob = strtod(eq + 1, &end);
        double secs = 0;
        if (*end == ':') secs = strtod(end + 1, &end);
        /* written so that NaN (which strtod takes) fails: every comparison with it is false */
        if (errno || end == eq + 1 || *end || !(prob >= 0 && prob <= 1) ||
            !(secs >= 0 && secs <= 86400)) {
            fprintf(stderr,
                    "strobe-emu: fault '%s=%s' is not PROBABILITY[:SECONDS] with probability in "
                    "[0,1] and seconds in [0,86400].\n",
                    item, eq + 1);
            return -1;
        }
        if ((kind == FAULT_STALL || kind == FAULT_SLOW_FIRST_BYTE) && secs == 0) secs = 1;
        f->probability[kind] = prob;
        f->seconds[kind] = secs;
    }
    return 0;
}

/* What a profile field holds: any finite number, or a whole number its field takes (2.5
 * batch slots were silently 2). */
enum kind { REAL, WHOLE_INT, WHOLE_64, SEED };

static int number(const char *path, cJSON *root, const char *name, enum kind kind, double *out)
{
    cJSON *it = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!it) return 0;
    double v = it->valuedouble;
    /* limits: int's, 2^53 (the whole numbers a JSON number holds exactly), and a seed's
     * the same without negatives (larger seeds go on the command line, read exactly) */
    double lo = kind == WHOLE_INT ? -INT_MAX : kind == SEED ? 0 : -9007199254740992.0;
    double hi = kind == WHOLE_INT ? INT_MAX : 9007199254740992.0;
    const char *bad = NULL;
    if (!cJSON_IsNumber(it))
        bad = "a number";
    else if (!isfinite(v)) /* cJSON reads 1e999 as inf */
        bad = "a finite number";
    else if (kind != REAL && (v != floor(v) || v < lo || v > hi))
        bad = kind == SEED        ? "a whole number from 0 to 2^53 (a larger seed: give --seed)"
              : kind == WHOLE_INT ? "a whole number from -2147483647 to 2147483647"
                                  : "a whole number within +-2^53";
    if (bad) {
        /* cJSON prints an infinite number (read from 1e999) as null: say it */
        char num[32];
        snprintf(num, sizeof num, "%g", v);
        char *text = cJSON_IsNumber(it) ? strdup(num) : cJSON_PrintUnformatted(it);
        fprintf(stderr, "strobe-emu: profile %s: field '%s' must be %s, got %.40s.\n", path, name,
                bad, text ? text : "?");
        free(text);
        return -1;
    }
    *out = v;
    return 0;
}

int emu_params_load_profile(struct emu_params *p, const char *path)
{
    char *text = read_file(path, NULL);
    if (!text) {
        fprintf(stderr, "strobe-emu: cannot open profile %s: %s.\n", path, strerror(errno));
        return -1;
    }
    /* the file must be the one object: cJSON_Parse stops after the first value, so a stray
     * character or a second object after it was silently dropped */
    char where[80];
    int more;
    cJSON *root = json_parse_whole(text, &more, where, sizeof where);
    if (!root) {
        fprintf(stderr, "strobe-emu: profile %s %s %s; give one JSON object.\n", path,
                more ? "holds more after its JSON object" : "is not valid JSON", where);
        free(text);
        return -1;
    }
    free(text);
    if (!cJSON_IsObject(root)) {
        fprintf(stderr, "strobe-emu: profile %s is not a JSON object; check its syntax.\n", path);
        cJSON_Delete(root);
        return -1;
    }
    char twice[200] = "";
    if (json_key_twice(root, twice, sizeof twice)) {
        fprintf(stderr, "strobe-emu: profile %s sets %s twice; give each field once.\n", path,
                twice);
        cJSON_Delete(root);
        return -1;
    }
    static const char *const known[] = {"name",
                                        "description",
                                        "model",
                                        "step_us",
                                        "step_us_per_seq",
                                        "max_batch",
                                        "prefill_tps",
                                        "kv_cache_tokens",
                                        "spec_tokens",
                                        "spec_accept",
                                        "accelerators",
                                        "power_idle_w",
                                        "power_max_w",
                                        "usage_style",
                                        "seed",
                                        "reasoning_fraction",
                                        "default_max_tokens",
                                        "natural_min_tokens",
                                        "natural_span_tokens",
                                        "faults",
                                        NULL};
    for (cJSON *it = root->child; it; it = it->next) {
        int ok = 0;
        for (int i = 0; known[i]; i++)
            if (!strcmp(it->string, known[i])) ok = 1;
        if (!ok) {
            fprintf(stderr, "strobe-emu: profile %s has unknown field '%s'.\n", path, it->string);
            cJSON_Delete(root);
            return -1;
        }
    }
    double v;
    int rc = 0;
#define NUM(field, name, cast, kind)                                                               \
    v = (double)p->field;                                                                          \
    rc |= number(path, root, name, kind, &v);                                                      \
    p->field = (cast)v
    NUM(step_us, "step_us", double, REAL);
    NUM(step_us_per_seq, "step_us_per_seq", double, REAL);
    NUM(max_batch, "max_batch", int, WHOLE_INT);
    NUM(prefill_tps, "prefill_tps", double, REAL);
    NUM(kv_cache_tokens, "kv_cache_tokens", int64_t, WHOLE_64);
    NUM(spec_tokens, "spec_tokens", int, WHOLE_INT);
    NUM(spec_accept, "spec_accept", double, REAL);
    NUM(accelerators, "accelerators", int, WHOLE_INT);
    NUM(power_idle_w, "power_idle_w", double, REAL);
    NUM(power_max_w, "power_max_w", double, REAL);
    NUM(seed, "seed", uint64_t, SEED);
    NUM(reasoning_fraction, "reasoning_fraction", double, REAL);
    NUM(default_max_tokens, "default_max_tokens", int, WHOLE_INT);
    NUM(natural_min_tokens, "natural_min_tokens", int, WHOLE_INT);
    NUM(natural_span_tokens, "natural_span_tokens", int, WHOLE_INT);
#undef NUM
    cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (cJSON_IsString(s)) snprintf(p->model, sizeof p->model, "%s", s->valuestring);
    s = cJSON_GetObjectItemCaseSensitive(root, "usage_style");
    if (cJSON_IsString(s)) {
        if (!strcmp(s->valuestring, "final-chunk"))
            p->usage_style = USAGE_FINAL_CHUNK;
        else if (!strcmp(s->valuestring, "finish-chunk"))
            p->usage_style = USAGE_FINISH_CHUNK;
        else {
            fprintf(stderr,
                    "strobe-emu: profile usage_style must be final-chunk or finish-chunk.\n");
            rc = -1;
        }
    }
    s = cJSON_GetObjectItemCaseSensitive(root, "faults");
    if (cJSON_IsString(s) && emu_params_parse_faults(&p->faults, s->valuestring)) rc = -1;
    cJSON_Delete(root);
    return rc ? -1 : 0;
}

/* lo <= x <= hi, false for NaN (x < lo and x > hi both are): every range below is written
 * this way, so a NaN from any source is refused rather than passed. */
static int within(double x, double lo, double hi) { return x >= lo && x <= hi; }

int emu_params_check(const struct emu_params *p)
{
    const char *bad = NULL;
    /* a decode step is scheduled in int64 nanoseconds from the last one: a day at most
     * keeps every deadline far inside that (an infinite step wrapped it negative) */
    const double day_us = 86400e6;
    if (!within(p->step_us, 0, day_us))
        bad = "--step-us must be from 0 (unpaced) to 86400000000 microseconds (a day)";
    else if (!within(p->step_us_per_seq, 0, day_us))
        bad = "--step-us-per-seq must be from 0 to 86400000000 microseconds (a day)";
    else if (p->step_us == 0 && p->step_us_per_seq != 0)
        bad = "--step-us 0 (unpaced: each step as soon as the connection took the last) needs "
              "--step-us-per-seq 0";
    else if (p->max_batch < 1)
        bad = "--max-batch must be >= 1";
    else if (!within(p->step_us + p->step_us_per_seq * p->max_batch, 0, day_us))
        bad = "a full batch's step, --step-us + --step-us-per-seq x --max-batch, must be at most "
              "86400000000 microseconds (a day)";
    /* a prompt's prefill is scheduled in int64 nanoseconds too: one token a second keeps a
     * prompt of millions of tokens within it */
    else if (!within(p->prefill_tps, 1, HUGE_VAL) || !isfinite(p->prefill_tps))
        bad = "--prefill-tps must be a finite number >= 1 (tokens per second)";
    else if (p->kv_cache_tokens < 0)
        bad = "--kv-cache-tokens must be >= 0";
    else if (p->spec_tokens < 0 || p->spec_tokens > 64)
        bad = "--spec-tokens must be in 0..64";
    else if (!within(p->spec_accept, 0, 1))
        bad = "--spec-accept must be in [0,1]";
    else if (p->accelerators < 1)
        bad = "--accelerators must be >= 1";
    else if (!within(p->power_idle_w, 0, HUGE_VAL) ||
             !within(p->power_max_w, p->power_idle_w, HUGE_VAL) || !isfinite(p->power_max_w))
        bad = "power needs 0 <= --power-idle-w <= --power-max-w, both finite";
    else if (!within(p->reasoning_fraction, 0, 1))
        bad = "reasoning_fraction must be in [0,1]";
    else if (p->default_max_tokens < 1)
        bad = "default_max_tokens must be >= 1";
    else if (p->natural_min_tokens < 1 || p->natural_span_tokens < 1)
        bad = "natural_min_tokens and natural_span_tokens must be >= 1";
    else if (!within(p->idle_backoff_us, 0, 10000))
        bad = "--idle-backoff-us must be in 0..10000 microseconds";
    else if (p->transport == EMU_TRANSPORT_DPDK && (!p->dpdk_args || !*p->dpdk_args))
        bad = "--transport dpdk needs --dpdk-args with the EAL arguments naming its ports, e.g. "
              "--dpdk-args '--no-huge -m 512 --no-pci "
              "--vdev=net_memif0,role=server,socket=/tmp/m.sock'";
    else if (p->transport != EMU_TRANSPORT_DPDK && (p->dpdk_args || p->control_port >= 0))
        bad = "--dpdk-args and --control-listen are used only with --transport dpdk";
    if (bad) {
        fprintf(stderr, "strobe-emu: %s.\n", bad);
        return -1;
    }
    return 0;
}
