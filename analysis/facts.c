#include "facts.h"

#include "clock.h"
#include "json_num.h"
#include "tap_join.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Requests are found by id through an open-addressing table: ids are (worker << 48 | seq). */
struct idmap {
    uint64_t *keys;
    size_t *vals;
    size_t cap;
};

static size_t *idmap_slot(struct idmap *m, uint64_t key, int insert)
{
    size_t i = (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 20) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) {
        if (!insert) return NULL;
        m->keys[i] = key;
    }
    return &m->vals[i];
}

/* Per-request scratch while events are read. */
struct pending {
    int64_t *t;
    double *bytes, *tokenized, *server; /* server: NAN when the event had no usage */
    int64_t *lag, *gap, *pace;
    int32_t *emu;
    size_t n, cap;
};

/* One token event as read, before the request's rule is known. */
struct event_fact {
    int64_t t, lag, gap, pace;
    double bytes, tokenized, server;
    int32_t emu;
};

#define GROW(p, field) p->field = realloc(p->field, p->cap * sizeof *p->field)

static void pend_push(struct pending *p, const struct event_fact *e)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        GROW(p, t);
        GROW(p, bytes);
        GROW(p, tokenized);
        GROW(p, server);
        GROW(p, lag);
        GROW(p, gap);
        GROW(p, pace);
        GROW(p, emu);
    }
    p->t[p->n] = e->t;
    p->bytes[p->n] = e->bytes;
    p->tokenized[p->n] = e->tokenized;
    p->server[p->n] = e->server;
    p->lag[p->n] = e->lag;
    p->gap[p->n] = e->gap;
    p->pace[p->n] = e->pace;
    p->emu[p->n] = e->emu;
    p->n++;
}

static void pend_free(struct pending *p)
{
    free(p->t);
    free(p->bytes);
    free(p->tokenized);
    free(p->server);
    free(p->lag);
    free(p->gap);
    free(p->pace);
    free(p->emu);
}

static size_t str_len(const cJSON *j) { return cJSON_IsString(j) ? strlen(j->valuestring) : 0; }

/* Tokens of one text field; each field is tokenized on its own, as the server sent it. */
static double tokens_of(struct tokenizer *tok, const cJSON *j)
{
    return tok && cJSON_IsString(j)
               ? (double)tokenizer_count(tok, j->valuestring, strlen(j->valuestring))
               : 0;
}

static const char *intern_finish(const char *s)
{
    static const char *const known[] = {"stop",           "length",        "tool_calls",
                                        "content_filter", "function_call", NULL};
    for (int i = 0; known[i]; i++)
        if (!strcmp(s, known[i])) return known[i];
    return "other";
}

/* The first failure of a request wins: its class and its reason, one line. */
static void set_failed(struct req_facts *r, enum fail_class cls, const char *fmt, ...)
{
    if (r->failed) return;
    r->failed = 1;
    r->fail_class = cls;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
}

/* 1 when this event carried usage (completion_tokens), taken into r */
static int read_usage(struct req_facts *r, const cJSON *u)
{
    if (!cJSON_IsObject(u)) return 0;
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    if (!json_int64(ct, &r->completion_tokens)) return 0;
    r->usage_seen = 1;
    json_int64(pt, &r->prompt_tokens);
    const cJSON *pd = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens_details");
    const cJSON *cached = cJSON_GetObjectItemCaseSensitive(pd, "cached_tokens");
    json_int64(cached, &r->cached_tokens);
    const cJSON *cd = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens_details");
    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(cd, "reasoning_tokens");
    json_int64(rt, &r->reasoning_tokens);
    return 1;
}

/* One SSE event of a successful-status stream. */
static void take_event(struct req_facts *r, struct pending *p, const struct rec_event *ev,
                       const char *data, size_t len, uint64_t *src_counts, struct tokenizer *tok)
{
    if (ev->ts_source < 5) src_counts[ev->ts_source]++;
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        r->saw_done = 1;
        return;
    }
    cJSON *j = cJSON_ParseWithLength(data, len);
    if (!cJSON_IsObject(j)) {
        set_failed(r, FAIL_MALFORMED_CHUNK, "malformed chunk JSON at event %ld", (long)ev->index);
        cJSON_Delete(j);
        return;
    }
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (err) {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
        set_failed(r, FAIL_ERROR_EVENT, "error event in stream: %s",
                   cJSON_IsString(msg)   ? msg->valuestring
                   : cJSON_IsString(err) ? err->valuestring
                                         : "(no message)");
    }
    int64_t cumulative_before = r->usage_seen ? r->completion_tokens : 0;
    int usage_here = read_usage(r, cJSON_GetObjectItemCaseSensitive(j, "usage"));
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    size_t answer = 0, visible = 0;
    double tokenized = 0;
    if (choice) {
        const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
        const cJSON *fields[] = {cJSON_GetObjectItemCaseSensitive(delta, "content"),
                                 cJSON_GetObjectItemCaseSensitive(choice, "text"),
                                 cJSON_GetObjectItemCaseSensitive(delta, "reasoning_content"),
                                 cJSON_GetObjectItemCaseSensitive(delta, "reasoning")};
        answer = str_len(fields[0]) + str_len(fields[1]);
        visible = answer + str_len(fields[2]) + str_len(fields[3]);
        if (visible > answer && !r->t_first_reasoning) r->t_first_reasoning = ev->t_stamp;
        for (int i = 0; i < 4; i++) tokenized += tokens_of(tok, fields[i]);
        const cJSON *call;
        cJSON_ArrayForEach (call, cJSON_GetObjectItemCaseSensitive(delta, "tool_calls")) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
            const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
            size_t n = str_len(name) + str_len(args);
            visible += n;
            answer += n;
            tokenized += tokens_of(tok, name) + tokens_of(tok, args);
        }
        const cJSON *fr = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
        if (cJSON_IsString(fr)) r->finish_reason = intern_finish(fr->valuestring);
    }
    if (visible) {
        if (!r->t_first_token) {
            r->t_first_token = ev->t_stamp;
            r->usage_per_chunk = usage_here; /* decided by the first token event */
        }
        if (answer && !r->t_first_answer) r->t_first_answer = ev->t_stamp;
        r->t_last_token = ev->t_stamp;
        r->n_token_events++;
        const cJSON *sent = cJSON_GetObjectItemCaseSensitive(j, "x_emu_sent_ns");
        const cJSON *sched = cJSON_GetObjectItemCaseSensitive(j, "x_emu_sched_ns");
        const cJSON *emu_k = cJSON_GetObjectItemCaseSensitive(j, "x_emu_tokens");
        int64_t sent_ns, sched_ns, emu_tokens, lag = INT64_MIN, pace = INT64_MIN;
        if (json_int64(sent, &sent_ns)) {
            if (__builtin_sub_overflow(ev->t_stamp, sent_ns, &lag)) lag = INT64_MIN;
            if (json_int64(sched, &sched_ns)) pace = sent_ns - sched_ns; /* both within 2^62 */
        }
        struct event_fact e = {
            .t = ev->t_stamp,
            .lag = lag,
            .gap = ev->ts_source == TS_KERNEL ? ev->t_read - ev->t_stamp : INT64_MIN,
            .pace = pace,
            .bytes = (double)visible,
            .tokenized = tokenized,
            .server = usage_here ? (double)(r->completion_tokens - cumulative_before) : NAN,
            .emu = json_int64(emu_k, &emu_tokens) && emu_tokens >= 0 && emu_tokens <= INT32_MAX
                       ? (int32_t)emu_tokens
                       : -1,
        };
        if (!usage_here) r->usage_per_chunk = 0;
        pend_push(p, &e);
    }
    cJSON_Delete(j);
}

static void reason_from_body(struct req_facts *r, const char *body, size_t len)
{
    cJSON *j = body ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *msg = cJSON_IsObject(err) ? cJSON_GetObjectItemCaseSensitive(err, "message") : err;
    if (cJSON_IsString(msg))
        snprintf(r->reason, sizeof r->reason, "HTTP %d: %s", r->status, msg->valuestring);
    else
        snprintf(r->reason, sizeof r->reason, "HTTP %d: %.*s", r->status,
                 (int)(len > 120 ? 120 : len), body ? body : "");
    for (char *c = r->reason; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    cJSON_Delete(j);
}

/* Closes a request: its counting rule, token totals, failure verdict, and its token events
 * into the run arrays. */
static void finish(struct run_facts *f, struct req_facts *r, struct pending *p, size_t *tok_cap,
                   int have_tokenizer)
{
    double bytes = 0, tokenized = 0, server = 0;
    for (size_t i = 0; i < p->n; i++) {
        bytes += p->bytes[i];
        tokenized += p->tokenized[i];
        server += isnan(p->server[i]) ? 0 : p->server[i];
    }
    r->count_rule = p->n && r->usage_per_chunk ? COUNT_SERVER
                    : have_tokenizer           ? COUNT_TOKENIZER
                                               : COUNT_NONE;
    const double *counts = r->count_rule == COUNT_SERVER      ? p->server
                           : r->count_rule == COUNT_TOKENIZER ? p->tokenized
                                                              : NULL;
    double counted = r->count_rule == COUNT_SERVER ? server : tokenized;
    r->tokenizer_tokens = have_tokenizer ? (int64_t)tokenized : -1;
    r->output_source = OUT_USAGE;
    if (!r->usage_seen) {
        r->output_source = have_tokenizer ? OUT_TOKENIZER : OUT_BYTES;
        r->completion_tokens = have_tokenizer ? (int64_t)tokenized : (int64_t)((bytes + 3) / 4);
        r->output_estimated = r->completion_tokens > 0;
    }
    r->first_chunk_tokens = counts && p->n ? counts[0] : 1;
    if (!r->failed && r->t_done && !r->transport_error && r->status >= 200 && r->status <= 299 &&
        !r->saw_done)
        set_failed(r, FAIL_NO_DONE, "stream ended without [DONE]");
    r->tok_first = f->ntok;
    r->tok_count = p->n;
    if (f->ntok + p->n > *tok_cap) {
        while (f->ntok + p->n > *tok_cap) *tok_cap = *tok_cap ? *tok_cap * 2 : 4096;
        f->tok_t = realloc(f->tok_t, *tok_cap * sizeof *f->tok_t);
        f->tok_n = realloc(f->tok_n, *tok_cap * sizeof *f->tok_n);
        f->tok_k = realloc(f->tok_k, *tok_cap * sizeof *f->tok_k);
        f->tok_emu_k = realloc(f->tok_emu_k, *tok_cap * sizeof *f->tok_emu_k);
        f->tok_lag = realloc(f->tok_lag, *tok_cap * sizeof *f->tok_lag);
        f->tok_user_gap = realloc(f->tok_user_gap, *tok_cap * sizeof *f->tok_user_gap);
        f->tok_pacing = realloc(f->tok_pacing, *tok_cap * sizeof *f->tok_pacing);
    }
    /* shares of the request's total: by counted tokens when known, else by bytes */
    const double *weight = counts && counted > 0 ? counts : p->bytes;
    double weight_sum = counts && counted > 0 ? counted : bytes;
    for (size_t i = 0; i < p->n; i++) {
        f->tok_t[f->ntok] = p->t[i];
        f->tok_n[f->ntok] =
            weight_sum > 0 ? (double)r->completion_tokens * weight[i] / weight_sum : 0;
        f->tok_k[f->ntok] = counts ? counts[i] : NAN;
        f->tok_emu_k[f->ntok] = p->emu[i];
        f->tok_lag[f->ntok] = p->lag[i];
        f->tok_user_gap[f->ntok] = p->gap[i];
        f->tok_pacing[f->ntok] = p->pace[i];
        f->ntok++;
    }
    p->n = 0;
}

double req_output_speed(const struct req_facts *r)
{
    if (r->n_token_events < 2 || r->t_last_token <= r->t_first_token) return NAN;
    return ((double)r->completion_tokens - r->first_chunk_tokens) /
           ((double)(r->t_last_token - r->t_first_token) / 1e9);
}

const char *count_rule_name(enum count_rule r)
{
    return r == COUNT_SERVER      ? "server-usage-per-chunk"
           : r == COUNT_TOKENIZER ? "tokenizer"
                                  : "none";
}

/* What facts_load carries between records. */
struct loader {
    struct run_facts *f;
    struct tokenizer *tok;
    int only_phase;
    struct eventlog_reader *lr;
    struct tap_join *tap;
    struct idmap ids;
    struct pending *pend; /* per request, aligned with f->reqs */
    size_t tok_cap, phase_cap, tap_cap;
};

/* A phase is written when it starts and again when it ends: the last one wins. */
static void take_phase(struct loader *L, const struct rec_phase *v)
{
    struct run_facts *f = L->f;
    size_t k;
    for (k = 0; k < f->nphases && f->phases[k].index != v->index; k++) {
    }
    if (k == f->nphases) {
        if (f->nphases == L->phase_cap) {
            L->phase_cap = L->phase_cap ? L->phase_cap * 2 : 16;
            f->phases = realloc(f->phases, L->phase_cap * sizeof *f->phases);
        }
        memset(&f->phases[k], 0, sizeof f->phases[k]);
        f->nphases++;
    }
    struct phase_info *ph = &f->phases[k];
    ph->index = v->index;
    ph->concurrency = v->concurrency;
    ph->t_start = v->t_start;
    ph->t_window_start = v->t_window_start;
    ph->t_window_end = v->t_window_end;
    ph->t_end = v->t_end;
    ph->flags = v->flags;
}

static void take_power(struct run_facts *f, const struct rec_power *v)
{
    if (v->device < 0) {
        f->power_failures++;
        return;
    }
    struct power_series *ps = NULL;
    for (size_t k = 0; k < f->npower; k++)
        if (f->power[k].source == v->source && f->power[k].device == v->device) ps = &f->power[k];
    if (!ps) {
        f->power = realloc(f->power, (f->npower + 1) * sizeof *f->power);
        ps = &f->power[f->npower++];
        memset(ps, 0, sizeof *ps);
        ps->source = v->source;
        ps->device = v->device;
    }
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 256;
        ps->t = realloc(ps->t, ps->cap * sizeof *ps->t);
        ps->watts = realloc(ps->watts, ps->cap * sizeof *ps->watts);
        ps->energy_j = realloc(ps->energy_j, ps->cap * sizeof *ps->energy_j);
    }
    ps->t[ps->n] = v->t;
    ps->watts[ps->n] = v->milliwatts == POWER_NONE ? NAN : (double)v->milliwatts / 1e3;
    ps->energy_j[ps->n] = v->microjoules == POWER_NONE ? NAN : (double)v->microjoules / 1e6;
    ps->n++;
}

static void take_trajectory(struct run_facts *f, const struct rec_trajectory_done *v)
{
    f->traj_t = realloc(f->traj_t, (f->ntraj + 1) * sizeof *f->traj_t);
    f->traj_phase = realloc(f->traj_phase, (f->ntraj + 1) * sizeof *f->traj_phase);
    f->traj_t[f->ntraj] = v->t;
    f->traj_phase[f->ntraj++] = v->phase;
}

static void take_mark(struct run_facts *f, const struct rec_mark *v)
{
    if (v->kind == MARK_INTERRUPTED) f->interrupted = 1;
    if (v->kind == MARK_RUN_END) f->run_ended = 1;
    if (v->kind == MARK_CLIENT_MEMORY)
        for (size_t k = 0; k < f->nphases; k++)
            if (f->phases[k].index == v->phase) f->phases[k].client_bytes = v->client_bytes;
}

static void take_sent(struct loader *L, const struct rec_request_sent *v)
{
    struct run_facts *f = L->f;
    if (L->only_phase >= 0 && v->phase != L->only_phase) return; /* its events are skipped too */
    *idmap_slot(&L->ids, v->req_id, 1) = f->nreqs;
    struct req_facts *r = &f->reqs[f->nreqs++];
    r->req_id = v->req_id;
    r->phase = v->phase;
    r->t_sched = v->t_sched;
    r->t_written = v->t_written;
    r->finish_reason = "";
}

/* An event's stamp: the FPGA tap's when its record joins the event, else the host's own. */
static void stamp_from_tap(struct loader *L, struct req_facts *r, struct rec_event *ev)
{
    struct run_facts *f = L->f;
    int64_t t_tap;
    int64_t addr = (int64_t)ev->local_ip << 16 | ev->local_port;
    if (L->tap && ev->stream_offset >= 0 && addr) {
        if (tap_join_lookup(L->tap, ev->stream_offset, addr, &t_tap)) {
            if (f->ntap_minus_host == L->tap_cap) {
                L->tap_cap = L->tap_cap ? L->tap_cap * 2 : 4096;
                f->tap_minus_host_us =
                    realloc(f->tap_minus_host_us, L->tap_cap * sizeof *f->tap_minus_host_us);
            }
            f->tap_minus_host_us[f->ntap_minus_host++] = (double)(t_tap - ev->t_stamp) / 1e3;
            ev->t_stamp = t_tap;
            ev->ts_source = TS_FPGA;
            f->tap_matched++;
        } else {
            f->tap_fallback++; /* the host's own stamp stays, with its own source */
        }
    }
    if (ev->ts_source == TS_FPGA && ev->t_stamp < r->t_prev_event) f->tap_out_of_order++;
    r->t_prev_event = ev->t_stamp;
}

static void take_end(struct loader *L, struct req_facts *r, struct pending *p,
                     const struct rec_request_end *v, const char *body, size_t len)
{
    r->t_done = v->t_end;
    r->t_first_byte = v->t_first_byte;
    r->status = v->status;
    r->transport_error = (int)v->error;
    if (r->status && (r->status < 200 || r->status > 299)) {
        r->failed = 1;
        r->fail_class = FAIL_HTTP_STATUS;
        reason_from_body(r, body, len);
    } else if (r->transport_error) {
        /* older logs recorded the cut event too: its torn JSON is not the reason */
        if (r->transport_error == ERR_EVENT_TOO_LONG) r->failed = 0;
        char what[160];
        snprintf(what, sizeof what, "%.*s", (int)(len > 150 ? 150 : len), body ? body : "");
        set_failed(r, FAIL_TRANSPORT, "%s%s%s", req_error_name(v->error), what[0] ? ": " : "",
                   what);
    } else if (!r->status) {
        set_failed(r, FAIL_NO_STATUS, "no HTTP status: the response ended without a status line");
    }
    finish(L->f, r, p, &L->tok_cap, L->tok != NULL);
}

/* A record about one request: its events, its retry, its end. */
static void take_request_record(struct loader *L, const struct log_record *rec)
{
    size_t *slot = idmap_slot(&L->ids, rec->req_id, 0);
    if (!slot) return; /* another phase's, or its start was lost with a torn log */
    struct req_facts *r = &L->f->reqs[*slot];
    struct pending *p = &L->pend[*slot];
    const char *body = eventlog_body(L->lr, rec);
    if (rec->len && !body) {
        L->f->torn_bodies++;
        return;
    }
    if (rec->type == REC_REQUEST_RETRY) {
        r->retried = 1;
    } else if (rec->type == REC_EVENT) {
        r->n_events++;
        struct rec_event ev = rec_event_decode(rec);
        stamp_from_tap(L, r, &ev);
        take_event(r, p, &ev, body, rec->len, L->f->ts_source_events, L->tok);
    } else if (rec->type == REC_REQUEST_END) {
        struct rec_request_end end = rec_request_end_decode(rec);
        take_end(L, r, p, &end, body, rec->len);
    }
}

int facts_load(const char *dir, struct tokenizer *tok, int only_phase, struct run_facts *f,
               char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    struct loader L = {.f = f, .tok = tok, .only_phase = only_phase};
    L.lr = eventlog_open(dir, err, errlen);
    if (!L.lr) return -1;
    f->header_json = strdup(L.lr->header_json);
    if (errlen) err[0] = 0;
    L.tap = tap_join_open(dir, L.lr->header_json, err, errlen);
    if (!L.tap && err[0]) {
        eventlog_reader_close(L.lr);
        free(f->header_json);
        f->header_json = NULL;
        return -1;
    }
    f->tap_present = L.tap != NULL;
    size_t nsent = 0;
    for (size_t i = 0; i < L.lr->nrecords; i++)
        nsent += L.lr->records[i].type == REC_REQUEST_SENT &&
                 (only_phase < 0 || rec_request_sent_decode(&L.lr->records[i]).phase == only_phase);
    L.ids.cap = 1024;
    while (L.ids.cap < nsent * 2 + 2) L.ids.cap <<= 1;
    L.ids.keys = calloc(L.ids.cap, sizeof *L.ids.keys);
    L.ids.vals = calloc(L.ids.cap, sizeof *L.ids.vals);
    f->reqs = calloc(nsent ? nsent : 1, sizeof *f->reqs);
    L.pend = calloc(nsent ? nsent : 1, sizeof *L.pend);
    for (size_t i = 0; i < L.lr->nrecords; i++) {
        const struct log_record *rec = &L.lr->records[i];
        switch (rec->type) {
        case REC_PHASE: {
            struct rec_phase v = rec_phase_decode(rec);
            take_phase(&L, &v);
            break;
        }
        case REC_POWER: {
            struct rec_power v = rec_power_decode(rec);
            take_power(f, &v);
            break;
        }
        case REC_TRAJECTORY_DONE: {
            struct rec_trajectory_done v = rec_trajectory_done_decode(rec);
            take_trajectory(f, &v);
            break;
        }
        case REC_MARK: {
            struct rec_mark v = rec_mark_decode(rec);
            take_mark(f, &v);
            break;
        }
        case REC_REQUEST_SENT: {
            struct rec_request_sent v = rec_request_sent_decode(rec);
            take_sent(&L, &v);
            break;
        }
        default: take_request_record(&L, rec); break; /* unknown types find no request */
        }
    }
    /* requests without an end record (the run was killed): failed, their tokens kept */
    for (size_t i = 0; i < f->nreqs; i++) {
        struct req_facts *r = &f->reqs[i];
        if (!r->t_done) {
            set_failed(r, FAIL_NO_END, "no end record: the run stopped before this request ended");
            r->transport_error = ERR_INTERRUPTED;
            finish(f, r, &L.pend[i], &L.tok_cap, tok != NULL);
        }
        pend_free(&L.pend[i]);
    }
    free(L.pend);
    if (L.tap) {
        tap_join_stats(L.tap, &f->tap_records, &f->tap_lost, &f->tap_drift_ppm,
                       &f->tap_uncertainty_ns);
        tap_join_close(L.tap);
    }
    free(L.ids.keys);
    free(L.ids.vals);
    eventlog_reader_close(L.lr);
    return 0;
}

void facts_free(struct run_facts *f)
{
    free(f->header_json);
    free(f->reqs);
    free(f->tok_t);
    free(f->tok_n);
    free(f->tok_k);
    free(f->tok_emu_k);
    free(f->tap_minus_host_us);
    free(f->tok_lag);
    free(f->tok_user_gap);
    free(f->tok_pacing);
    free(f->phases);
    for (size_t i = 0; i < f->npower; i++) {
        free(f->power[i].t);
        free(f->power[i].watts);
        free(f->power[i].energy_j);
    }
    free(f->power);
    free(f->traj_t);
    free(f->traj_phase);
    memset(f, 0, sizeof *f);
}
