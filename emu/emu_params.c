#include "emu_params.h"

#include "read_file.h"

#include <cjson/cJSON.h>
#include <errno.h>
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
        if (errno || *end || prob < 0 || prob > 1 || secs < 0) {
            fprintf(stderr,
                    "strobe-emu: fault '%s=%s' is not PROBABILITY[:SECONDS] with probability in "
                    "[0,1].\n",
                    item, eq + 1);
            return -1;
        }
        if ((kind == FAULT_STALL || kind == FAULT_SLOW_FIRST_BYTE) && secs == 0) secs = 1;
        f->probability[kind] = prob;
        f->seconds[kind] = secs;
    }
    return 0;
}

static int number(cJSON *root, const char *name, double *out)
{
    cJSON *it = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!it) return 0;
    if (!cJSON_IsNumber(it)) {
        fprintf(stderr, "strobe-emu: profile field '%s' must be a number.\n", name);
        return -1;
    }
    *out = it->valuedouble;
    return 0;
}

int emu_params_load_profile(struct emu_params *p, const char *path)
{
    char *text = read_file(path, NULL);
    if (!text) {
        fprintf(stderr, "strobe-emu: cannot open profile %s: %s.\n", path, strerror(errno));
        return -1;
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        fprintf(stderr, "strobe-emu: profile %s is not a JSON object; check its syntax.\n", path);
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
#define NUM(field, name, cast)                                                                     \
    v = (double)p->field;                                                                          \
    rc |= number(root, name, &v);                                                                  \
    p->field = (cast)v
    NUM(step_us, "step_us", double);
    NUM(step_us_per_seq, "step_us_per_seq", double);
    NUM(max_batch, "max_batch", int);
    NUM(prefill_tps, "prefill_tps", double);
    NUM(kv_cache_tokens, "kv_cache_tokens", int64_t);
    NUM(spec_tokens, "spec_tokens", int);
    NUM(spec_accept, "spec_accept", double);
    NUM(accelerators, "accelerators", int);
    NUM(power_idle_w, "power_idle_w", double);
    NUM(power_max_w, "power_max_w", double);
    NUM(seed, "seed", uint64_t);
    NUM(reasoning_fraction, "reasoning_fraction", double);
    NUM(default_max_tokens, "default_max_tokens", int);
    NUM(natural_min_tokens, "natural_min_tokens", int);
    NUM(natural_span_tokens, "natural_span_tokens", int);
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

int emu_params_check(const struct emu_params *p)
{
    const char *bad = NULL;
    if (p->step_us < 0)
        bad = "--step-us must be >= 0 (0: unpaced)";
    else if (p->step_us_per_seq < 0)
        bad = "--step-us-per-seq must be >= 0";
    else if (p->step_us == 0 && p->step_us_per_seq != 0)
        bad = "--step-us 0 (unpaced: each step as soon as the connection took the last) needs "
              "--step-us-per-seq 0";
    else if (p->max_batch < 1)
        bad = "--max-batch must be >= 1";
    else if (p->prefill_tps <= 0)
        bad = "--prefill-tps must be > 0";
    else if (p->kv_cache_tokens < 0)
        bad = "--kv-cache-tokens must be >= 0";
    else if (p->spec_tokens < 0 || p->spec_tokens > 64)
        bad = "--spec-tokens must be in 0..64";
    else if (p->spec_accept < 0 || p->spec_accept > 1)
        bad = "--spec-accept must be in [0,1]";
    else if (p->accelerators < 1)
        bad = "--accelerators must be >= 1";
    else if (p->power_idle_w < 0 || p->power_max_w < p->power_idle_w)
        bad = "power needs 0 <= --power-idle-w <= --power-max-w";
    else if (p->reasoning_fraction < 0 || p->reasoning_fraction > 1)
        bad = "reasoning_fraction must be in [0,1]";
    else if (p->default_max_tokens < 1)
        bad = "default_max_tokens must be >= 1";
    else if (p->natural_min_tokens < 1 || p->natural_span_tokens < 1)
        bad = "natural_min_tokens and natural_span_tokens must be >= 1";
    else if (p->idle_backoff_us < 0 || p->idle_backoff_us > 10000)
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
