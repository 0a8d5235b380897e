#include "replay.h"

#include "json_num.h"
#include "json_whole.h"
#include "read_file.h"
#include "must_alloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where the cache-isolation nonce goes: the start of the first text of the message. */
static long find_nonce_at(const char *json)
{
    const char *p = strstr(json, "\"content\":\"");
    if (p) return (long)(p - json) + 11;
    p = strstr(json, "\"text\":\"");
    if (p) return (long)(p - json) + 8;
    return -1;
}

static void push_msg(struct replay_task *t, char *json)
{
    if (t->nmsgs == t->cap_msgs) {
        t->cap_msgs = t->cap_msgs ? t->cap_msgs * 2 : 64;
        t->msgs = must_realloc(t->msgs, t->cap_msgs * sizeof *t->msgs, "a trajectory's messages");
        t->msg_len =
            must_realloc(t->msg_len, t->cap_msgs * sizeof *t->msg_len, "a trajectory's messages");
        t->nonce_at =
            must_realloc(t->nonce_at, t->cap_msgs * sizeof *t->nonce_at, "a trajectory's messages");
    }
    t->msgs[t->nmsgs] = json;
    t->msg_len[t->nmsgs] = strlen(json);
    t->nonce_at[t->nmsgs] = -1;
    t->nmsgs++;
}

static int32_t intern_tools(struct replay_task *t, const cJSON *tools)
{
    if (!tools || cJSON_IsNull(tools)) return -1;
    char *s = must_have(cJSON_PrintUnformatted(tools), "a trajectory's tools");
    for (size_t i = 0; i < t->ntools; i++)
        if (!strcmp(t->tools[i], s)) {
            free(s);
            return (int32_t)i;
        }
    t->tools = must_realloc(t->tools, (t->ntools + 1) * sizeof *t->tools, "a trajectory's tools");
    t->tools_len =
        must_realloc(t->tools_len, (t->ntools + 1) * sizeof *t->tools_len, "a trajectory's tools");
    t->tools[t->ntools] = s;
    t->tools_len[t->ntools] = strlen(s);
    return (int32_t)t->ntools++;
}

/* A count: a whole number from 0 to INT32_MAX (a turn keeps it in 32 bits: a larger one
 * would wrap, e.g. 4294967303 became max_tokens 7); -1 when absent. */
static int32_t int_field(const cJSON *line, const char *name, int *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(line, name);
    if (!v || cJSON_IsNull(v)) return -1;
    int64_t n;
    if (!json_int64(v, &n) || n < 0 || n > INT32_MAX || v->valuedouble != (double)n) {
        *bad = 1;
        return -1;
    }
    return (int32_t)n;
}

/* A delay in milliseconds: any number from 0 to 1e12 (AA's manifests write fractional
 * milliseconds, e.g. 351.825774); -1 when absent. */
static double delay_field(const cJSON *line, const char *name, int *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(line, name);
    if (!v || cJSON_IsNull(v)) return -1;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1e12)) {
        *bad = 1;
        return -1;
    }
    return v->valuedouble;
}

static void task_free(struct replay_task *t)
{
    for (size_t i = 0; i < t->nmsgs; i++) free(t->msgs[i]);
    for (size_t i = 0; i < t->ntools; i++) free(t->tools[i]);
    free(t->msgs);
    free(t->msg_len);
    free(t->nonce_at);
    free(t->tools);
    free(t->tools_len);
    free(t->turns);
    free(t->task_id);
    memset(t, 0, sizeof *t);
}

/* Loads one trace. 0 ok, 1 skipped (reason in why), -1 malformed (err). */
static int load_trace(const char *path, const char *shown, struct replay_task *t, char *why,
                      size_t whylen, char *err, size_t errlen, long *tool_calls_out)
{
    size_t len;
    const char *special = read_file_special(path);
    char *text = special ? NULL : read_file(path, &len);
    if (!text) {
        snprintf(err, errlen,
                 "cannot read trace %s: %s; check the replay directory (strobe "
                 "import writes one)",
                 shown, special ? special : strerror(errno));
        return -1;
    }
    char **prev = NULL; /* the previous turn's serialised messages, for the prefix check */
    size_t nprev = 0, cap_turns = 0;
    long tool_calls = 0;
    int rc = 0, lineno = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        lineno++;
        if (!*line || (*line == '\r' && !line[1])) continue;
        char where[80], twice[200] = "";
        int more = 0;
        cJSON *j = json_parse_whole(line, &more, where, sizeof where);
        if (!cJSON_IsObject(j) || json_key_twice(j, twice, sizeof twice)) {
            if (twice[0])
                snprintf(err, errlen, "%s line %d sets %s twice; give each field once", shown,
                         lineno, twice);
            else if (more)
                snprintf(err, errlen, "%s line %d holds more after its JSON object %s", shown,
                         lineno, where);
            else
                snprintf(err, errlen, "%s line %d is not a JSON object (%s)", shown, lineno,
                         j ? "another JSON value" : where);
            cJSON_Delete(j);
            rc = -1;
            break;
        }
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "messages");
        if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
            snprintf(why, whylen, "line %d has no 'messages' array", lineno);
            cJSON_Delete(j);
            rc = 1;
            break;
        }
        int bad = 0;
        struct replay_turn turn = {0};
        turn.target_output_tokens = int_field(j, "target_output_tokens", &bad);
        turn.max_output_tokens = int_field(j, "max_output_tokens", &bad);
        int bad_delay = 0;
        turn.tool_delay_ms = delay_field(j, "simulated_tool_delay_ms_after", &bad_delay);
        const cJSON *calls = cJSON_GetObjectItemCaseSensitive(j, "recorded_tool_calls_after");
        if (cJSON_IsArray(calls))
            turn.recorded_tool_calls = cJSON_GetArraySize(calls);
        else
            turn.recorded_tool_calls = int_field(j, "recorded_tool_calls_after", &bad);
        if (bad || bad_delay) {
            if (bad_delay)
                snprintf(err, errlen,
                         "%s line %d: simulated_tool_delay_ms_after must be a number of "
                         "milliseconds from 0 to 1e12; fix that line",
                         shown, lineno);
            else
                snprintf(err, errlen,
                         "%s line %d: counts must be whole numbers from 0 to %d "
                         "(target_output_tokens, max_output_tokens, "
                         "recorded_tool_calls_after)",
                         shown, lineno, INT32_MAX);
            cJSON_Delete(j);
            rc = -1;
            break;
        }
        if (turn.recorded_tool_calls > 0) tool_calls += turn.recorded_tool_calls;
        size_t n = (size_t)cJSON_GetArraySize(msgs);
        char **ser = must_calloc(n, sizeof *ser, "a turn's messages");
        size_t i = 0;
        const cJSON *m;
        cJSON_ArrayForEach (m, msgs)
            ser[i++] = must_have(cJSON_PrintUnformatted(m), "a turn's messages");
        /* extends the previous turn when the previous turn's messages are a prefix of these */
        int extends = prev && nprev <= n;
        for (size_t k = 0; extends && k < nprev; k++) extends = !strcmp(prev[k], ser[k]);
        turn.nmsgs = (uint32_t)n;
        if (extends) {
            turn.base = t->turns[t->nturns - 1].base;
            for (size_t k = nprev; k < n; k++)
                push_msg(t, must_strdup(ser[k], "a trajectory's messages"));
        } else {
            turn.rebuild = 1;
            turn.base = (uint32_t)t->nmsgs;
            for (size_t k = 0; k < n; k++)
                push_msg(t, must_strdup(ser[k], "a trajectory's messages"));
            t->nonce_at[turn.base] = find_nonce_at(t->msgs[turn.base]);
        }
        turn.tools = intern_tools(t, cJSON_GetObjectItemCaseSensitive(j, "tools"));
        for (size_t k = 0; k < n; k++) turn.body_bytes += (int64_t)strlen(ser[k]) + 1;
        if ((size_t)turn.body_bytes > t->max_body_bytes)
            t->max_body_bytes = (size_t)turn.body_bytes;
        if (!t->task_id) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "task_id");
            if (cJSON_IsString(id)) t->task_id = strdup(id->valuestring);
        }
        if (t->nturns == cap_turns) {
            cap_turns = cap_turns ? cap_turns * 2 : 64;
            t->turns = must_realloc(t->turns, cap_turns * sizeof *t->turns, "a trajectory's turns");
        }
        t->turns[t->nturns++] = turn;
        for (size_t k = 0; k < nprev; k++) free(prev[k]);
        free(prev);
        prev = ser;
        nprev = n;
        cJSON_Delete(j);
    }
    for (size_t k = 0; k < nprev; k++) free(prev[k]);
    free(prev);
    free(text);
    if (rc == 0 && t->nturns == 0) {
        snprintf(why, whylen, "the trace has no turns");
        rc = 1;
    }
    *tool_calls_out = tool_calls;
    return rc;
}

int replay_load(const char *dir, struct replay *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    char path[PATH_MAX], real_dir[PATH_MAX];
    if (!realpath(dir, real_dir)) {
        snprintf(err, errlen, "--trajectories %s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/manifest.json", real_dir);
    const char *special = read_file_special(path);
    char *text = special ? NULL : read_file(path, NULL);
    if (!text) {
        snprintf(err, errlen,
                 "cannot read %s/manifest.json: %s; is %s a replay directory? "
                 "(strobe import writes one)",
                 dir, special ? special : strerror(errno), dir);
        return -1;
    }
    /* one object, each key once: a second object pasted below, or a key given twice, would
     * be dropped or read as its first */
    char where[80], twice[200] = "";
    int more;
    cJSON *man = json_parse_whole(text, &more, where, sizeof where);
    free(text);
    if (!man || json_key_twice(man, twice, sizeof twice)) {
        if (man)
            snprintf(err, errlen, "%s/manifest.json sets %s twice; give each field once", dir,
                     twice);
        else
            snprintf(err, errlen, "%s/manifest.json %s %s; give one JSON object", dir,
                     more ? "holds more after its JSON object" : "is not valid JSON", where);
        cJSON_Delete(man);
        return -1;
    }
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(man, "tasks");
    if (!cJSON_IsObject(man) || !cJSON_IsArray(tasks)) {
        snprintf(err, errlen, "%s/manifest.json must be a JSON object with a 'tasks' array", dir);
        cJSON_Delete(man);
        return -1;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(man, "name");
    snprintf(r->name, sizeof r->name, "%s", cJSON_IsString(name) ? name->valuestring : dir);
    r->tasks =
        must_calloc((size_t)cJSON_GetArraySize(tasks) + 1, sizeof *r->tasks, "the replay's tasks");
    const cJSON *task;
    int idx = 0, rc = 0;
    cJSON_ArrayForEach (task, tasks) {
        idx++;
        const cJSON *trace = cJSON_GetObjectItemCaseSensitive(task, "trace");
        const cJSON *tid = cJSON_GetObjectItemCaseSensitive(task, "task_id");
        if (!cJSON_IsString(trace) || !cJSON_IsString(tid)) {
            snprintf(err, errlen, "manifest.json task %d needs string fields 'task_id' and 'trace'",
                     idx);
            rc = -1;
            break;
        }
        /* a task id is printed in messages and written into results: a control character
         * in it (an escape sequence) would reach the terminal */
        const char *c = tid->valuestring;
        while (*c && !json_control_at(c)) c++;
        if (*c || !*tid->valuestring) {
            snprintf(err, errlen,
                     "manifest.json task %d: its task_id %s; give each task a printable "
                     "name",
                     idx, *c ? "holds a control character" : "is empty");
            rc = -1;
            break;
        }
        /* trace paths must stay inside the replay directory */
        char want[PATH_MAX], real[PATH_MAX];
        snprintf(want, sizeof want, "%s/%s", real_dir, trace->valuestring);
        if (trace->valuestring[0] == '/' || !realpath(want, real) ||
            strncmp(real, real_dir, strlen(real_dir)) || real[strlen(real_dir)] != '/') {
            snprintf(err, errlen,
                     "manifest.json task '%s': trace '%s' is missing or lies outside "
                     "the replay directory",
                     tid->valuestring, trace->valuestring);
            rc = -1;
            break;
        }
        int bad = 0;
        int64_t calls = int_field(task, "model_calls", &bad);
        int64_t tcalls = int_field(task, "tool_calls", &bad);
        int bad_delay = 0;
        delay_field(task, "total_recorded_tool_delay_ms", &bad_delay);
        if (bad || bad_delay) {
            if (bad)
                snprintf(err, errlen,
                         "manifest.json task '%s': model_calls and tool_calls must be whole "
                         "numbers from 0 to %d",
                         tid->valuestring, INT32_MAX);
            else
                snprintf(err, errlen,
                         "manifest.json task '%s': total_recorded_tool_delay_ms must be a "
                         "number of milliseconds from 0 to 1e12; fix that task's entry",
                         tid->valuestring);
            rc = -1;
            break;
        }
        struct replay_task *t = &r->tasks[r->ntasks];
        char why[256] = "", shown[PATH_MAX + 64];
        snprintf(shown, sizeof shown, "%s/%s", dir, trace->valuestring);
        long tool_calls = 0;
        int lr = load_trace(real, shown, t, why, sizeof why, err, errlen, &tool_calls);
        if (lr < 0) {
            task_free(t);
            rc = -1;
            break;
        }
        if (lr == 0 && calls >= 0 && (size_t)calls != t->nturns) {
            snprintf(err, errlen,
                     "manifest.json task '%s' declares model_calls %lld but %s has %zu "
                     "turns",
                     tid->valuestring, (long long)calls, shown, t->nturns);
            task_free(t);
            rc = -1;
            break;
        }
        if (lr == 0 && tcalls >= 0 && tool_calls && tcalls != tool_calls) {
            snprintf(err, errlen,
                     "manifest.json task '%s' declares tool_calls %lld but its trace "
                     "records %ld",
                     tid->valuestring, (long long)tcalls, tool_calls);
            task_free(t);
            rc = -1;
            break;
        }
        if (lr == 1) {
            fprintf(stderr, "strobe: skipping trajectory '%s': %s\n", tid->valuestring, why);
            task_free(t);
            r->skipped++;
            continue;
        }
        free(t->task_id);
        t->task_id = strdup(tid->valuestring);
        for (size_t i = 0; i < t->nmsgs; i++) r->shared_bytes += t->msg_len[i];
        for (size_t i = 0; i < t->ntools; i++) r->shared_bytes += t->tools_len[i];
        r->ntasks++;
    }
    cJSON_Delete(man);
    if (rc == 0 && r->ntasks == 0) {
        snprintf(err, errlen, "%s holds no usable trajectory", dir);
        rc = -1;
    }
    if (rc) replay_free(r);
    return rc;
}

struct replay_cut replay_truncate(struct replay *r, long max_context_tokens, int keep_first)
{
    struct replay_cut cut = {0, 0};
    if (max_context_tokens <= 0) return cut;
    for (size_t i = 0; i < r->ntasks; i++) {
        struct replay_task *t = &r->tasks[i];
        size_t keep = 0;
        while (keep < t->nturns && t->turns[keep].body_bytes / 4 <= max_context_tokens) keep++;
        /* a first prompt already over the limit cannot be sent within it: the task is left
         * out (the sources skip tasks of no turns), not sent oversized */
        if (!keep && keep_first && t->nturns) keep = 1;
        cut.shortened += keep && keep < t->nturns;
        cut.left_out += !keep && t->nturns;
        t->nturns = keep;
    }
    return cut;
}

void replay_free(struct replay *r)
{
    for (size_t i = 0; i < r->ntasks; i++) task_free(&r->tasks[i]);
    free(r->tasks);
    memset(r, 0, sizeof *r);
}
