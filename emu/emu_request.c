/* strobe-emu's request handling: a generation request becomes a scheduled request (its
 * rendered prompt gives prompt_tokens and prefix-cache blocks; its fault is drawn here), and
 * the other endpoints answer at once. */
#include "emu_state.h"

#include "emu_request.h"
#include "tokenizer.h"

#include "clock.h"
#include "json_num.h"
#include "emu_model.h"
#include "emu_wire.h"
#include "prefix_cache.h"
#include "rng.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- request parsing ---------- */

static void render_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = realloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n);
    *len += n;
}

static void render_content(char **buf, size_t *len, size_t *cap, const cJSON *content)
{
    if (cJSON_IsString(content)) {
        render_append(buf, len, cap, content->valuestring, strlen(content->valuestring));
    } else if (cJSON_IsArray(content)) {
        const cJSON *part;
        cJSON_ArrayForEach (part, content) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (cJSON_IsString(t))
                render_append(buf, len, cap, t->valuestring, strlen(t->valuestring));
        }
    }
}

static struct tokenizer *prompt_tokenizer;

void emu_request_count_prompts_with(struct tokenizer *t) { prompt_tokenizer = t; }

/* The rendered prompt whose bytes give prompt_tokens and prefix-cache blocks:
 * chat: for each message "ROLE\n" + content + tool-call names and arguments + "\n";
 * completions: the prompt text. */
static char *render_prompt(const cJSON *root, int chat, size_t *out_len)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    render_append(&buf, &len, &cap, "", 0);
    if (chat) {
        const cJSON *msg;
        cJSON_ArrayForEach (msg, cJSON_GetObjectItemCaseSensitive(root, "messages")) {
            const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
            if (cJSON_IsString(role))
                render_append(&buf, &len, &cap, role->valuestring, strlen(role->valuestring));
            render_append(&buf, &len, &cap, "\n", 1);
            render_content(&buf, &len, &cap, cJSON_GetObjectItemCaseSensitive(msg, "content"));
            const cJSON *call;
            cJSON_ArrayForEach (call, cJSON_GetObjectItemCaseSensitive(msg, "tool_calls")) {
                const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
                const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
                if (cJSON_IsString(name))
                    render_append(&buf, &len, &cap, name->valuestring, strlen(name->valuestring));
                if (cJSON_IsString(args))
                    render_append(&buf, &len, &cap, args->valuestring, strlen(args->valuestring));
            }
            render_append(&buf, &len, &cap, "\n", 1);
        }
    } else {
        const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(root, "prompt");
        if (cJSON_IsString(prompt)) {
            render_append(&buf, &len, &cap, prompt->valuestring, strlen(prompt->valuestring));
        } else if (cJSON_IsArray(prompt)) {
            const cJSON *p;
            cJSON_ArrayForEach (p, prompt)
                if (cJSON_IsString(p))
                    render_append(&buf, &len, &cap, p->valuestring, strlen(p->valuestring));
        }
    }
    *out_len = len;
    return buf;
}

void emu_request_reply_error(struct conn *c, int status, const char *msg)
{
    char body[512];
    int n = emu_wire_error_body(body, sizeof body, status, msg);
    emu_server_send_response(c, status, "application/json", body, (size_t)n);
}

static int json_flag(const cJSON *obj, const char *name)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, name));
}

static void handle_generation(struct conn *c, int chat, int64_t now)
{
    cJSON *root = cJSON_ParseWithLength(c->body, c->body_len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        emu_request_reply_error(c, 400, "request body is not a JSON object");
        return;
    }
    if (chat && !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "messages"))) {
        cJSON_Delete(root);
        emu_request_reply_error(c, 400, "'messages' must be an array");
        return;
    }
    if (!chat && !cJSON_GetObjectItemCaseSensitive(root, "prompt")) {
        cJSON_Delete(root);
        emu_request_reply_error(c, 400, "'prompt' is required");
        return;
    }
    struct req *r = calloc(1, sizeof *r);
    r->conn = c;
    r->chat = chat;
    r->arrival_ns = now;
    r->stream = json_flag(root, "stream");
    r->include_usage =
        json_flag(cJSON_GetObjectItemCaseSensitive(root, "stream_options"), "include_usage");
    /* vLLM's continuous_usage_stats: cumulative usage on every chunk */
    r->continuous_usage = json_flag(cJSON_GetObjectItemCaseSensitive(root, "stream_options"),
                                    "continuous_usage_stats");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    snprintf(r->model, sizeof r->model, "%s",
             cJSON_IsString(model) ? model->valuestring : emu_state.p->model);
    for (char *q = r->model; *q; q++)
        if (*q == '"' || *q == '\\') *q = '_';
    snprintf(r->id, sizeof r->id, "%s-emu-%llu", chat ? "chatcmpl" : "cmpl",
             (unsigned long long)++emu_state.request_seq);

    size_t rlen;
    char *rendered = render_prompt(root, chat, &rlen);
    r->prompt_tokens = prompt_tokenizer ? (int64_t)tokenizer_count(prompt_tokenizer, rendered, rlen)
                                        : emu_model_prompt_tokens(rlen);
    r->cached_tokens = prefix_cache_lookup_insert(emu_state.cache, rendered, rlen);
    if (r->cached_tokens > r->prompt_tokens) r->cached_tokens = r->prompt_tokens;
    uint64_t h = emu_model_hash(1469598103934665603ULL, c->body, c->body_len);
    free(rendered);
    r->rng = emu_state.p->seed ^ h;

    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");
    if (!cJSON_IsNumber(mt)) mt = cJSON_GetObjectItemCaseSensitive(root, "max_completion_tokens");
    int64_t asked_max, asked_min;
    int max_tokens = json_int64(mt, &asked_max) && asked_max >= 1 && asked_max <= INT32_MAX
                         ? (int)asked_max
                         : emu_state.p->default_max_tokens;
    const cJSON *mn = cJSON_GetObjectItemCaseSensitive(root, "min_tokens");
    int min_tokens =
        json_int64(mn, &asked_min) && asked_min >= 0 && asked_min <= INT32_MAX ? (int)asked_min : 0;
    int n = json_flag(root, "ignore_eos") ? max_tokens : emu_model_natural_tokens(emu_state.p, h);
    if (n < min_tokens) n = min_tokens;
    if (n >= max_tokens) {
        n = max_tokens;
        r->finish = "length";
    } else {
        r->finish = "stop";
    }
    r->target_tokens = n;
    r->reasoning_target = (int)floor(emu_state.p->reasoning_fraction * n);
    cJSON_Delete(root);

    emu_state.requests_total++;
    emu_state.prompt_tokens_total += (uint64_t)r->prompt_tokens;
    emu_state.cache_query_tokens += (uint64_t)r->prompt_tokens;
    emu_state.cache_hit_tokens += (uint64_t)r->cached_tokens;

    /* at most one fault per request, drawn from the global fault stream */
    double u = (double)(splitmix64(&emu_state.fault_rng) >> 11) * 0x1.0p-53, acc = 0;
    for (int k = 0; k < FAULT_COUNT; k++) {
        acc += emu_state.p->faults.probability[k];
        if (u < acc) {
            r->has_fault = 1;
            r->fault = (enum fault_kind)k;
            r->fault_at_token =
                (int)(splitmix64(&emu_state.fault_rng) % (uint64_t)(n > 1 ? n - 1 : 1));
            break;
        }
    }
    if (!r->stream && r->has_fault && r->fault >= FAULT_MALFORMED && r->fault <= FAULT_STALL)
        r->has_fault = 0; /* mid-stream faults need a stream */
    c->req = r;
    if (r->has_fault) {
        switch (r->fault) {
        case FAULT_HTTP500:
        case FAULT_HTTP503:
        case FAULT_HTTP429: {
            int status = r->fault == FAULT_HTTP500 ? 500 : r->fault == FAULT_HTTP503 ? 503 : 429;
            emu_state.faults_injected[r->fault]++;
            c->req = NULL;
            r->state = RS_DONE;
            free(r);
            emu_request_reply_error(c, status,
                                    status == 429 ? "emulated rate limit: slow down"
                                                  : "emulated server error");
            return;
        }
        case FAULT_ENDLESS_HEADERS:
            emu_state.faults_injected[r->fault]++;
            r->state = RS_HEADER_DRIP;
            emu_server_conn_write(c, "HTTP/1.1 200 OK\r\n", 17);
            emu_sched_heap_push(now + 100000000LL, r);
            return;
        case FAULT_SLOW_FIRST_BYTE:
            emu_state.faults_injected[r->fault]++;
            r->state = RS_DELAYED;
            emu_sched_heap_push(now + (int64_t)(emu_state.p->faults.seconds[r->fault] * 1e9), r);
            return;
        default: break;
        }
    }
    emu_sched_begin_request(r, now);
}

static void handle_metrics(struct conn *c, int64_t now)
{
    emu_sched_set_decoding(now, 0);
    char body[16384];
    size_t at = 0;
    int waiting = emu_sched_waiting_count();
    at += (size_t)snprintf(
        body + at, sizeof body - at,
        "# HELP strobe_emu_requests_running Requests admitted (prefilling or decoding).\n"
        "# TYPE strobe_emu_requests_running gauge\nstrobe_emu_requests_running %d\n"
        "# HELP strobe_emu_requests_decoding Requests in the decode batch.\n"
        "# TYPE strobe_emu_requests_decoding gauge\nstrobe_emu_requests_decoding %d\n"
        "# HELP strobe_emu_requests_waiting Requests waiting for a batch slot.\n"
        "# TYPE strobe_emu_requests_waiting gauge\nstrobe_emu_requests_waiting %d\n"
        "# HELP strobe_emu_prefix_cache_queries_total Prompt tokens looked up in the prefix "
        "cache.\n"
        "# TYPE strobe_emu_prefix_cache_queries_total "
        "counter\nstrobe_emu_prefix_cache_queries_total %llu\n"
        "# HELP strobe_emu_prefix_cache_hits_total Prompt tokens found in the prefix cache.\n"
        "# TYPE strobe_emu_prefix_cache_hits_total counter\nstrobe_emu_prefix_cache_hits_total "
        "%llu\n"
        "# HELP strobe_emu_prompt_tokens_total Prompt tokens received.\n"
        "# TYPE strobe_emu_prompt_tokens_total counter\nstrobe_emu_prompt_tokens_total %llu\n"
        "# HELP strobe_emu_generation_tokens_total Output tokens generated.\n"
        "# TYPE strobe_emu_generation_tokens_total counter\nstrobe_emu_generation_tokens_total "
        "%llu\n"
        "# HELP strobe_emu_requests_total Generation requests received.\n"
        "# TYPE strobe_emu_requests_total counter\nstrobe_emu_requests_total %llu\n"
        "# HELP strobe_emu_power_watts Modelled accelerator power, all accelerators.\n"
        "# TYPE strobe_emu_power_watts gauge\nstrobe_emu_power_watts %.3f\n"
        "# HELP strobe_emu_energy_joules_total Modelled accelerator energy since start.\n"
        "# TYPE strobe_emu_energy_joules_total counter\nstrobe_emu_energy_joules_total %.6f\n"
        "# HELP strobe_emu_faults_injected_total Faults injected, by kind.\n"
        "# TYPE strobe_emu_faults_injected_total counter\n",
        emu_state.admitted, emu_state.decoding, waiting,
        (unsigned long long)emu_state.cache_query_tokens,
        (unsigned long long)emu_state.cache_hit_tokens,
        (unsigned long long)emu_state.prompt_tokens_total,
        (unsigned long long)emu_state.generation_tokens_total,
        (unsigned long long)emu_state.requests_total,
        emu_model_power_w(emu_state.p, emu_state.decoding), emu_state.energy_j);
    for (int k = 0; k < FAULT_COUNT; k++)
        at += (size_t)snprintf(body + at, sizeof body - at,
                               "strobe_emu_faults_injected_total{kind=\"%s\"} %llu\n",
                               emu_params_fault_name((enum fault_kind)k),
                               (unsigned long long)emu_state.faults_injected[k]);
    if (emu_state.io->unclosed) {
        unsigned unclosed = emu_state.io->unclosed();
        /* a scrape over the DPDK port is answered on one of them, open by definition */
        if (c->io == emu_state.io && unclosed) unclosed--;
        at += (size_t)snprintf(body + at, sizeof body - at,
                               "# HELP strobe_emu_tcp_connections_unclosed TCP connections of "
                               "the DPDK ports not yet closed at both ends (open, or closing), "
                               "other than the one this answer goes out on.\n"
                               "# TYPE strobe_emu_tcp_connections_unclosed gauge\n"
                               "strobe_emu_tcp_connections_unclosed %u\n",
                               unclosed);
    }
    emu_hist_write(&emu_state.ttft, "strobe_emu_time_to_first_token_seconds",
                   "Time from a request's arrival to its first token.", body, sizeof body, &at);
    emu_hist_write(&emu_state.itl, "strobe_emu_inter_token_latency_seconds",
                   "Time between a request's successive decode steps.", body, sizeof body, &at);
    emu_server_send_response(c, 200, "text/plain; version=0.0.4", body, at);
}

/* Redfish Power resource (DMTF Power.v1_7_0 shape); energy in Oem as Redfish has no
 * cumulative energy field in Power. */
static void handle_power(struct conn *c, int64_t now)
{
    emu_sched_set_decoding(now, 0);
    char body[2048];
    double w = emu_model_power_w(emu_state.p, emu_state.decoding);
    double cap = emu_state.p->accelerators * emu_state.p->power_max_w;
    int n = snprintf(
        body, sizeof body,
        "{\"@odata.id\":\"/redfish/v1/Chassis/emu/Power\",\"@odata.type\":\"#Power.v1_7_0.Power\","
        "\"Id\":\"Power\",\"Name\":\"Accelerator power\",\"PowerControl\":[{"
        "\"@odata.id\":\"/redfish/v1/Chassis/emu/Power#/PowerControl/0\",\"MemberId\":\"0\","
        "\"Name\":\"Accelerators\",\"PowerConsumedWatts\":%.3f,\"PowerCapacityWatts\":%.1f,"
        "\"PhysicalContext\":\"Accelerator\",\"Oem\":{\"StrobeEmu\":{\"EnergyJoules\":%.6f,"
        "\"TimestampNs\":%lld,\"Accelerators\":%d,\"Decoding\":%d,\"MaxBatch\":%d}}}]}",
        w, cap, emu_state.energy_j, (long long)now, emu_state.p->accelerators, emu_state.decoding,
        emu_state.p->max_batch);
    emu_server_send_response(c, 200, "application/json", body, (size_t)n);
}

void emu_request_dispatch(struct conn *c)
{
    int64_t now = clock_now_ns();
    int post = c->parser.method == HTTP_POST, get = c->parser.method == HTTP_GET;
    c->url[c->url_len] = 0;
    char *q = strchr(c->url, '?');
    if (q) *q = 0;
    if (post && !strcmp(c->url, "/v1/chat/completions")) {
        handle_generation(c, 1, now);
    } else if (post && !strcmp(c->url, "/v1/completions")) {
        handle_generation(c, 0, now);
    } else if (get && !strcmp(c->url, "/v1/models")) {
        char body[512];
        int n = snprintf(body, sizeof body,
                         "{\"object\":\"list\",\"data\":[{\"id\":\"%s\",\"object\":\"model\","
                         "\"created\":%lld,\"owned_by\":\"strobe-emu\"}]}",
                         emu_state.p->model, (long long)(emu_state.started_ns / 1000000000LL));
        emu_server_send_response(c, 200, "application/json", body, (size_t)n);
    } else if (get && !strcmp(c->url, "/health")) {
        emu_server_send_response(c, 200, "text/plain", "ok\n", 3);
    } else if (get && !strcmp(c->url, "/metrics")) {
        handle_metrics(c, now);
    } else if (get && !strcmp(c->url, "/redfish/v1/Chassis/emu/Power")) {
        handle_power(c, now);
    } else {
        emu_request_reply_error(c, 404, "no such endpoint");
    }
}
