#include "chunk_facts.h"

#include "chunk_scan.h"
#include "chunk_template.h"
#include "json_num.h"
#include "must_alloc.h"

#include <cjson/cJSON.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *chunk_finish_intern(const char *s, size_t len)
{
    static const char *const known[] = {"stop",           "length",        "tool_calls",
                                        "content_filter", "function_call", NULL};
    for (int i = 0; known[i]; i++)
        if (strlen(known[i]) == len && !memcmp(s, known[i], len)) return known[i];
    return "other";
}

/* Zeroes cf without the `rep stos` GCC makes of a memset of this size (or of a loop it
 * recognises as one): 15 ns a call on this project's VMs against 3 for these stores, once per
 * event of the analysis. */
static void zero_facts(struct chunk_facts *cf)
{
#ifdef __SSE2__
    _Static_assert(sizeof *cf >= 16, "the last store overlaps the one before it");
    char *p = (char *)cf;
    __m128i zero = _mm_setzero_si128();
    __asm__("" : "+x"(zero)); /* not a known zero: the stores stay stores */
    for (size_t at = 0; at + 16 <= sizeof *cf; at += 16) _mm_storeu_si128((void *)(p + at), zero);
    _mm_storeu_si128((void *)(p + sizeof *cf - 16), zero);
#else
    memset(cf, 0, sizeof *cf);
#endif
}

void chunk_reader_begin(struct chunk_reader *rd, struct chunk_facts *cf)
{
    zero_facts(cf);
    rd->len = 0;
    rd->ntexts = 0;
}

size_t chunk_reader_reserve(struct chunk_reader *rd, size_t n)
{
    if (rd->len + n > rd->cap) {
        while (rd->len + n > rd->cap) rd->cap = rd->cap ? rd->cap * 2 : 4096;
        rd->buf = must_realloc(rd->buf, rd->cap, "an event's texts");
    }
    size_t at = rd->len;
    rd->len += n;
    return at;
}

void chunk_reader_add_text(struct chunk_reader *rd, enum chunk_field field, uint32_t call,
                           const char *s, size_t buf_off, size_t len)
{
    if (!len) return; /* an empty field counts no token */
    if (rd->ntexts == rd->texts_cap) {
        rd->texts_cap = rd->texts_cap ? rd->texts_cap * 2 : 16;
        rd->texts = must_realloc(rd->texts, rd->texts_cap * sizeof *rd->texts, "an event's texts");
    }
    rd->texts[rd->ntexts++] = (struct chunk_text){
        .field = field, .call = call, .s = s, .len = len, .buf_off = s ? SIZE_MAX : buf_off};
}

void chunk_reader_end(struct chunk_reader *rd, struct chunk_facts *cf)
{
    for (size_t i = 0; i < rd->ntexts; i++)
        if (rd->texts[i].buf_off != SIZE_MAX) rd->texts[i].s = rd->buf + rd->texts[i].buf_off;
    cf->texts = rd->texts;
    cf->ntexts = rd->ntexts;
}

void chunk_reader_free(struct chunk_reader *rd)
{
    free(rd->buf);
    free(rd->texts);
    free(rd->templates);
    memset(rd, 0, sizeof *rd);
}

/* A cJSON string's bytes up to its first NUL, as facts.c always measured them. */
static size_t str_len(const cJSON *j) { return cJSON_IsString(j) ? strlen(j->valuestring) : 0; }

static void text_of(struct chunk_reader *rd, int want, enum chunk_field field, uint32_t call,
                    const cJSON *j)
{
    size_t n = str_len(j);
    if (!want || !n) return;
    size_t at = chunk_reader_reserve(rd, n);
    memcpy(rd->buf + at, j->valuestring, n);
    chunk_reader_add_text(rd, field, call, NULL, at, n);
}

static void usage_of(struct chunk_facts *cf, const cJSON *u)
{
    if (!cJSON_IsObject(u)) return;
    if (!json_int64(cJSON_GetObjectItemCaseSensitive(u, "completion_tokens"),
                    &cf->completion_tokens))
        return;
    cf->has_usage = 1;
    cf->has_prompt_tokens =
        json_int64(cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens"), &cf->prompt_tokens);
    const cJSON *pd = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens_details");
    cf->has_cached_tokens =
        json_int64(cJSON_GetObjectItemCaseSensitive(pd, "cached_tokens"), &cf->cached_tokens);
    const cJSON *cd = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens_details");
    cf->has_reasoning_tokens =
        json_int64(cJSON_GetObjectItemCaseSensitive(cd, "reasoning_tokens"), &cf->reasoning_tokens);
}

void chunk_facts_parse(const char *data, size_t len, int want, struct chunk_reader *rd,
                       struct chunk_facts *cf)
{
    chunk_reader_begin(rd, cf);
    size_t error_at = 0; /* the message's place in the buffer, which may still move */
    cJSON *j = cJSON_ParseWithLength(data, len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        chunk_reader_end(rd, cf);
        return;
    }
    cf->is_object = 1;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (err) {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
        const char *text = cJSON_IsString(msg)   ? msg->valuestring
                           : cJSON_IsString(err) ? err->valuestring
                                                 : "(no message)";
        size_t n = strlen(text);
        error_at = chunk_reader_reserve(rd, n + 1);
        memcpy(rd->buf + error_at, text, n + 1);
        cf->has_error = 1;
    }
    usage_of(cf, cJSON_GetObjectItemCaseSensitive(j, "usage"));
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    if (choice) {
        const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
        const cJSON *fields[] = {cJSON_GetObjectItemCaseSensitive(delta, "content"),
                                 cJSON_GetObjectItemCaseSensitive(choice, "text"),
                                 cJSON_GetObjectItemCaseSensitive(delta, "reasoning_content"),
                                 cJSON_GetObjectItemCaseSensitive(delta, "reasoning")};
        cf->answer_bytes = str_len(fields[0]) + str_len(fields[1]);
        cf->visible_bytes = cf->answer_bytes + str_len(fields[2]) + str_len(fields[3]);
        for (int i = 0; i < 4; i++) text_of(rd, want, (enum chunk_field)i, 0, fields[i]);
        const cJSON *call;
        uint32_t k = 0;
        cJSON_ArrayForEach (call, cJSON_GetObjectItemCaseSensitive(delta, "tool_calls")) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
            const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
            size_t n = str_len(name) + str_len(args);
            cf->visible_bytes += n;
            cf->answer_bytes += n;
            text_of(rd, want, FIELD_TOOL_NAME, k, name);
            text_of(rd, want, FIELD_TOOL_ARGUMENTS, k, args);
            k++;
        }
        const cJSON *fr = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
        if (cJSON_IsString(fr))
            cf->finish_reason = chunk_finish_intern(fr->valuestring, strlen(fr->valuestring));
    }
    cf->has_sent_ns =
        json_int64(cJSON_GetObjectItemCaseSensitive(j, "x_emu_sent_ns"), &cf->sent_ns);
    cf->has_sched_ns =
        json_int64(cJSON_GetObjectItemCaseSensitive(j, "x_emu_sched_ns"), &cf->sched_ns);
    cf->has_emu_tokens =
        json_int64(cJSON_GetObjectItemCaseSensitive(j, "x_emu_tokens"), &cf->emu_tokens);
    cJSON_Delete(j);
    chunk_reader_end(rd, cf);
    if (cf->has_error) cf->error_message = rd->buf + error_at;
}

int chunk_facts_read(const char *data, size_t len, int want_texts, struct chunk_reader *rd,
                     struct chunk_facts *cf)
{
    if (chunk_scan(data, len, want_texts, rd, cf)) {
        rd->scanned++;
        return 1;
    }
    chunk_facts_parse(data, len, want_texts, rd, cf);
    rd->parsed++;
    return 0;
}

int chunk_facts_read_keyed(const char *data, size_t len, uint64_t key, int want_texts,
                           struct chunk_reader *rd, struct chunk_facts *cf)
{
    if (chunk_template_read(data, len, key, want_texts, rd, cf)) {
        rd->templated++;
        rd->scanned++; /* the scanner's facts, read by the shape it learned */
        return 2;
    }
    if (chunk_template_learn(data, len, key, want_texts, rd, cf)) {
        rd->scanned++;
        return 1;
    }
    chunk_facts_parse(data, len, want_texts, rd, cf);
    rd->parsed++;
    return 0;
}

static int cmp_text(const void *a, const void *b)
{
    const struct chunk_text *x = a, *y = b;
    if (x->field != y->field) return (int)x->field - (int)y->field;
    return (x->call > y->call) - (x->call < y->call);
}

#define DIFF(cond, ...)                                                                            \
    do {                                                                                           \
        if (cond) {                                                                                \
            snprintf(why, whylen, __VA_ARGS__);                                                    \
            return 0;                                                                              \
        }                                                                                          \
    } while (0)

int chunk_facts_equal(const struct chunk_facts *a, const struct chunk_facts *b, char *why,
                      size_t whylen)
{
    DIFF(a->is_object != b->is_object, "is_object %d vs %d", a->is_object, b->is_object);
    DIFF(a->has_error != b->has_error, "has_error %d vs %d", a->has_error, b->has_error);
    DIFF(a->has_error && strcmp(a->error_message, b->error_message), "error message differs");
    DIFF(a->has_usage != b->has_usage, "has_usage %d vs %d", a->has_usage, b->has_usage);
    if (a->has_usage) {
        DIFF(a->completion_tokens != b->completion_tokens, "completion_tokens %lld vs %lld",
             (long long)a->completion_tokens, (long long)b->completion_tokens);
        DIFF(a->has_prompt_tokens != b->has_prompt_tokens ||
                 (a->has_prompt_tokens && a->prompt_tokens != b->prompt_tokens),
             "prompt_tokens differ");
        DIFF(a->has_cached_tokens != b->has_cached_tokens ||
                 (a->has_cached_tokens && a->cached_tokens != b->cached_tokens),
             "cached_tokens differ");
        DIFF(a->has_reasoning_tokens != b->has_reasoning_tokens ||
                 (a->has_reasoning_tokens && a->reasoning_tokens != b->reasoning_tokens),
             "reasoning_tokens differ");
    }
    DIFF(a->answer_bytes != b->answer_bytes, "answer_bytes %zu vs %zu", a->answer_bytes,
         b->answer_bytes);
    DIFF(a->visible_bytes != b->visible_bytes, "visible_bytes %zu vs %zu", a->visible_bytes,
         b->visible_bytes);
    DIFF(a->finish_reason != b->finish_reason, "finish_reason %s vs %s",
         a->finish_reason ? a->finish_reason : "(none)",
         b->finish_reason ? b->finish_reason : "(none)");
    DIFF(a->has_sent_ns != b->has_sent_ns || (a->has_sent_ns && a->sent_ns != b->sent_ns),
         "x_emu_sent_ns differs");
    DIFF(a->has_sched_ns != b->has_sched_ns || (a->has_sched_ns && a->sched_ns != b->sched_ns),
         "x_emu_sched_ns differs");
    DIFF(a->has_emu_tokens != b->has_emu_tokens ||
             (a->has_emu_tokens && a->emu_tokens != b->emu_tokens),
         "x_emu_tokens differs");
    DIFF(a->ntexts != b->ntexts, "%zu texts vs %zu", a->ntexts, b->ntexts);
    struct chunk_text *x = must_calloc(a->ntexts + 1, sizeof *x, "the texts compared"),
                      *y = must_calloc(b->ntexts + 1, sizeof *y, "the texts compared");
    if (a->ntexts) memcpy(x, a->texts, a->ntexts * sizeof *x);
    if (b->ntexts) memcpy(y, b->texts, b->ntexts * sizeof *y);
    qsort(x, a->ntexts, sizeof *x, cmp_text);
    qsort(y, b->ntexts, sizeof *y, cmp_text);
    int same = 1;
    for (size_t i = 0; i < a->ntexts && same; i++)
        if (x[i].field != y[i].field || x[i].call != y[i].call || x[i].len != y[i].len ||
            memcmp(x[i].s, y[i].s, x[i].len)) {
            snprintf(why, whylen, "text %zu (field %d, call %u) differs", i, (int)x[i].field,
                     x[i].call);
            same = 0;
        }
    free(x);
    free(y);
    return same;
}
