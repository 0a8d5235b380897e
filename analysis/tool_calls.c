#include "tool_calls.h"

#include "must_alloc.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOOL_NAME_MAX  128
#define TOOL_INDEX_MAX 4096 /* beyond any real answer: a bound on what one index may allocate */

static void append(char **buf, size_t *len, const char *s)
{
    size_t n = strlen(s);
    *buf = must_realloc(*buf, *len + n + 1, "a tool call's text");
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

void tool_calls_feed(struct tool_calls *tc, const char *data, size_t len)
{
    if (!memmem(data, len, "\"tool_calls\"", 12)) return;
    cJSON *o = cJSON_ParseWithLength(data, len);
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "choices"), 0);
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
    const cJSON *call;
    uint32_t pos = 0;
    cJSON_ArrayForEach (call, cJSON_GetObjectItemCaseSensitive(delta, "tool_calls")) {
        const cJSON *index = cJSON_GetObjectItemCaseSensitive(call, "index");
        uint32_t at =
            cJSON_IsNumber(index) && index->valuedouble >= 0 && index->valuedouble < TOOL_INDEX_MAX
                ? (uint32_t)index->valuedouble
                : pos;
        pos++;
        if (at >= tc->n) {
            tc->v = must_realloc(tc->v, (at + 1) * sizeof *tc->v, "an answer's tool calls");
            memset(tc->v + tc->n, 0, (at + 1 - tc->n) * sizeof *tc->v);
            tc->n = at + 1;
        }
        struct tool_call *c = &tc->v[at];
        c->seen = 1;
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        if (cJSON_IsString(name)) append(&c->name, &c->name_len, name->valuestring);
        if (cJSON_IsString(args)) append(&c->args, &c->args_len, args->valuestring);
    }
    cJSON_Delete(o);
}

static int name_ok(const struct tool_call *c)
{
    if (!c->name || c->name_len < 1 || c->name_len > TOOL_NAME_MAX) return 0;
    for (size_t i = 0; i < c->name_len; i++)
        if (c->name[i] <= ' ' || c->name[i] > '~') return 0;
    return 1;
}

int tool_calls_check(const struct tool_calls *tc, const char *finish_reason, char *why,
                     size_t whylen)
{
    if (!tc->n) return 0;
    int cut = finish_reason && !strcmp(finish_reason, "length");
    if (!cut && (!finish_reason || strcmp(finish_reason, "tool_calls"))) {
        snprintf(why, whylen, "tool-call format: %u call(s) but finish reason '%s', not tool_calls",
                 tc->n, finish_reason ? finish_reason : "none");
        return -1;
    }
    for (uint32_t i = 0; i < tc->n; i++) {
        const struct tool_call *c = &tc->v[i];
        int last_cut = cut && i + 1 == tc->n;
        if (!c->seen) {
            snprintf(why, whylen,
                     "tool-call format: indices are not contiguous from 0 (%u missing)", i);
            return -1;
        }
        if (!name_ok(c) && !last_cut) {
            snprintf(why, whylen,
                     "tool-call format: call %u's name is not 1-128 printable ASCII characters "
                     "without spaces",
                     i);
            return -1;
        }
        cJSON *a = c->args ? cJSON_Parse(c->args) : NULL;
        int object = cJSON_IsObject(a);
        cJSON_Delete(a);
        if (!object && !last_cut) {
            snprintf(why, whylen, "tool-call format: call %u's arguments are not a JSON object", i);
            return -1;
        }
    }
    return 0;
}

void tool_calls_free(struct tool_calls *tc)
{
    for (uint32_t i = 0; i < tc->n; i++) {
        free(tc->v[i].name);
        free(tc->v[i].args);
    }
    free(tc->v);
    tc->v = NULL;
    tc->n = 0;
}
