/* Importers: real agent recordings into AA's replay format (methodology.md §7).
 *  - mini-swe-agent (trajectory_format mini-swe-agent-1.1): the turns are the assistant
 *    messages; target_output_tokens is that response's usage.completion_tokens; the tool
 *    delay is the last tool message's timestamp before the next turn minus the assistant's.
 *  - swe-agent (.traj): `history`; tool messages' tool_call_ids lists become one tool_call_id
 *    each; output tokens share info.model_stats.tokens_received by the bytes of each turn;
 *    the tool delay is the step's execution_time.
 *  - openai-messages: a JSON list of messages (or {"messages": [...], "tools": [...]});
 *    output tokens are the assistant text's bytes / 4; no tool delay is recorded.
 * History is cleaned to what a chat-completions request carries: role, content, tool_calls
 * (id, type, function name and arguments), tool_call_id, name. Recorded reasoning_content
 * is not sent back, as DeepSeek's API requires. */
#include "recording.h"

#include "json_num.h"
#include "json_whole.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What strobe agents refuses in a trace or manifest (control/workload/replay.c): import
 * checks the same so that it never writes a replay that agents will not load. */
#define REPLAY_DELAY_MAX_MS 1e12 /* a tool delay, and a task's total of them */

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* 0 when m is an object with a string role; else 1 with the reason (a numeric or missing
 * role once dropped that message, and with it a turn, silently). list names the array m is
 * in ("messages", "history"; "" for a top-level list). */
static int check_role(const cJSON *m, const char *list, int at, char *why, size_t wl)
{
    if (str(m, "role")) return 0;
    snprintf(why, wl,
             "%s%s%d%s has no string 'role' (system, user, assistant or tool), so it cannot be "
             "replayed; fix or drop that recording",
             list, *list ? "[" : "message ", at, *list ? "]" : " (from 0)");
    return 1;
}

static cJSON *clean_calls(const cJSON *calls)
{
    if (!cJSON_IsArray(calls) || cJSON_GetArraySize(calls) == 0) return NULL;
    cJSON *out = cJSON_CreateArray();
    const cJSON *c;
    cJSON_ArrayForEach (c, calls) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", str(c, "id") ? str(c, "id") : "");
        cJSON_AddStringToObject(o, "type", "function");
        cJSON *f = cJSON_AddObjectToObject(o, "function");
        cJSON_AddStringToObject(f, "name", str(fn, "name") ? str(fn, "name") : "");
        cJSON_AddStringToObject(f, "arguments", str(fn, "arguments") ? str(fn, "arguments") : "{}");
        cJSON_AddItemToArray(out, o);
    }
    return out;
}

/* One message in chat-completions form; NULL for roles a request never carries. */
static cJSON *clean_message(const cJSON *m, const char *tool_call_id)
{
    const char *role = str(m, "role");
    if (!role || (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") &&
                  strcmp(role, "tool")))
        return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "role", role);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (cJSON_IsString(content) || cJSON_IsArray(content))
        cJSON_AddItemToObject(o, "content", cJSON_Duplicate(content, 1));
    else
        cJSON_AddStringToObject(o, "content", "");
    if (!strcmp(role, "assistant")) {
        cJSON *calls = clean_calls(cJSON_GetObjectItemCaseSensitive(m, "tool_calls"));
        if (calls) cJSON_AddItemToObject(o, "tool_calls", calls);
    }
    if (!strcmp(role, "tool")) {
        const char *id = tool_call_id ? tool_call_id : str(m, "tool_call_id");
        cJSON_AddStringToObject(o, "tool_call_id", id ? id : "");
    }
    if (str(m, "name") && strcmp(role, "tool") == 0)
        cJSON_AddStringToObject(o, "name", str(m, "name"));
    return o;
}

static long text_bytes(const cJSON *m)
{
    long n = 0;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (cJSON_IsString(c)) n += (long)strlen(c->valuestring);
    const char *r = str(m, "reasoning_content");
    if (r) n += (long)strlen(r);
    const cJSON *call;
    cJSON_ArrayForEach (call, cJSON_GetObjectItemCaseSensitive(m, "tool_calls")) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        if (str(fn, "arguments")) n += (long)strlen(str(fn, "arguments"));
        if (str(fn, "name")) n += (long)strlen(str(fn, "name"));
    }
    return n;
}

static cJSON *calls_record(const cJSON *assistant, long delay_ms)
{
    cJSON *out = cJSON_CreateArray();
    const cJSON *c;
    int i = 0;
    cJSON_ArrayForEach (c, cJSON_GetObjectItemCaseSensitive(assistant, "tool_calls")) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "action_index", i++);
        cJSON_AddStringToObject(o, "tool_call_id", str(c, "id") ? str(c, "id") : "");
        cJSON_AddStringToObject(o, "tool_name", str(fn, "name") ? str(fn, "name") : "");
        if (delay_ms >= 0 && i == 1) cJSON_AddNumberToObject(o, "duration_ms", (double)delay_ms);
        cJSON_AddItemToArray(out, o);
    }
    return out;
}

/* Appends a turn, growing the list by doubling (a recording may have thousands of turns).
 * 0, or 1 with the reason in why (calls is freed either way on failure). */
static int add_turn(struct recording *r, int msg_index, long out, long prompt, long delay,
                    cJSON *calls, char *why, size_t wl)
{
    if (r->nturns == r->cap_turns) {
        int cap = r->cap_turns ? r->cap_turns * 2 : 16;
        struct recording_turn *t = realloc(r->turns, (size_t)cap * sizeof *t);
        if (!t) {
            cJSON_Delete(calls);
            snprintf(why, wl, "out of memory at turn %d; import fewer or smaller recordings",
                     r->nturns);
            return 1;
        }
        r->turns = t;
        r->cap_turns = cap;
    }
    r->turns[r->nturns++] = (struct recording_turn){msg_index, out, prompt, delay, calls};
    return 0;
}

static double ts(const cJSON *m)
{
    const cJSON *t =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "extra"), "timestamp");
    return cJSON_IsNumber(t) ? t->valuedouble : -1;
}

/* The output size a mini-swe-agent answer records (usage.completion_tokens), else its
 * text's bytes / 4. A recorded size that is not a whole number of tokens the replay can send
 * (0 to INT32_MAX: strobe agents reads it as a 32-bit count) makes the file unusable, so
 * this says which turn instead of writing a trace `strobe agents` would refuse later.
 * 0, or 1 with the reason in why. */
static int recorded_output(const cJSON *m, int turn, int at, long *out, char *why, size_t wl)
{
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "extra"), "response"),
        "usage");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");
    if (!cJSON_IsNumber(ct)) {
        *out = (text_bytes(m) + 3) / 4;
        return 0;
    }
    int64_t given;
    if (!json_int64(ct, &given) || given < 0 || given > INT32_MAX ||
        ct->valuedouble != (double)given) { /* 12.5 is no count */
        snprintf(why, wl,
                 "turn %d (messages[%d]) records usage.completion_tokens %g; a recorded output "
                 "size must be a whole number from 0 to %d, so fix or drop that recording",
                 turn, at, ct->valuedouble, INT32_MAX);
        return 1;
    }
    *out = (long)given;
    return 0;
}

/* Returns 0, or 1 with a reason to skip. The message list is walked by its links (never by
 * index: cJSON_GetArrayItem walks from the head each time, quadratic in the messages). */
static int from_mini_swe(const cJSON *root, struct recording *r, char *why, size_t wl)
{
    const char *fmt = str(root, "trajectory_format");
    if (!fmt || strncmp(fmt, "mini-swe-agent", 14)) {
        snprintf(why, wl, "not a mini-swe-agent trajectory (trajectory_format '%s')",
                 fmt ? fmt : "missing");
        return 1;
    }
    const char *id = str(root, "instance_id");
    if (id) snprintf(r->task_id, sizeof r->task_id, "%s", id);
    snprintf(r->source, sizeof r->source, "%s", fmt);
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    r->messages = cJSON_CreateArray();
    int uses_tools = 0, kept = 0, at = -1;
    const cJSON *m;
    cJSON_ArrayForEach (m, msgs) {
        at++;
        if (check_role(m, "messages", at, why, wl)) return 1;
        cJSON *c = clean_message(m, NULL);
        if (!c) continue;
        int idx = kept++;
        cJSON_AddItemToArray(r->messages, c);
        if (strcmp(str(m, "role"), "assistant")) continue;
        long out;
        if (recorded_output(m, r->nturns, at, &out, why, wl)) return 1;
        const cJSON *pt = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "extra"),
                                                 "response"),
                "usage"),
            "prompt_tokens");
        int64_t given_in;
        /* tool time: from this answer to the last tool result before the next request */
        double t0 = ts(m), t1 = -1;
        for (const cJSON *mk = m->next; mk; mk = mk->next) {
            const char *role = str(mk, "role");
            if (!role || !strcmp(role, "assistant")) break;
            if (!strcmp(role, "tool") || !strcmp(role, "user")) t1 = ts(mk) > t1 ? ts(mk) : t1;
        }
        double ms = t0 >= 0 && t1 >= t0 ? (t1 - t0) * 1000 : 0;
        if (!(ms <= REPLAY_DELAY_MAX_MS)) { /* also keeps lround in long's range */
            snprintf(why, wl,
                     "turn %d (messages[%d]): its tool results come %g s after it "
                     "(extra.timestamp); a tool delay must be at most %.0e ms, so fix or drop "
                     "that recording",
                     r->nturns, at, ms / 1000, REPLAY_DELAY_MAX_MS);
            return 1;
        }
        long delay = lround(ms);
        if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "tool_calls")) > 0)
            uses_tools = 1;
        if (add_turn(r, idx, out, json_int64(pt, &given_in) ? (long)given_in : -1, delay,
                     calls_record(m, delay), why, wl))
            return 1;
    }
    if (r->nturns == 0) {
        const char *exit = str(cJSON_GetObjectItemCaseSensitive(root, "info"), "exit_status");
        snprintf(why, wl, "no assistant turn: the run ended at turn 0 (exit_status %s)",
                 exit ? exit : "unknown");
        return 1;
    }
    if (uses_tools) {
        /* the recordings do not store the tool schema: mini-swe-agent's single bash tool */
        r->tools = cJSON_Parse(
            "[{\"type\":\"function\",\"function\":{\"name\":\"bash\",\"description\":"
            "\"Execute a bash command\",\"parameters\":{\"type\":\"object\",\"properties\":"
            "{\"command\":{\"type\":\"string\",\"description\":\"The bash command to execute\"}},"
            "\"required\":[\"command\"]}}}]");
    }
    return 0;
}

static int from_swe_agent(const cJSON *root, struct recording *r, char *why, size_t wl)
{
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(root, "history");
    if (!cJSON_IsArray(hist)) {
        snprintf(why, wl, "not a SWE-agent .traj (no 'history' list)");
        return 1;
    }
    snprintf(r->source, sizeof r->source, "swe-agent-traj");
    const cJSON *traj = cJSON_GetObjectItemCaseSensitive(root, "trajectory");
    /* the step of each turn, walked alongside (by index it would be quadratic) */
    const cJSON *step = cJSON_IsArray(traj) ? traj->child : NULL;
    r->messages = cJSON_CreateArray();
    cJSON *names = cJSON_CreateArray();
    long total_bytes = 0;
    int kept = 0, at = -1;
    const cJSON *m;
    cJSON_ArrayForEach (m, hist) {
        if (check_role(m, "history", ++at, why, wl)) {
            cJSON_Delete(names);
            return 1;
        }
        const char *role = str(m, "role");
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(m, "tool_call_ids");
        if (role && !strcmp(role, "tool") && cJSON_IsArray(ids) && cJSON_GetArraySize(ids) > 0) {
            const cJSON *id;
            cJSON_ArrayForEach (id, ids)
                if (cJSON_IsString(id))
                    kept += cJSON_AddItemToArray(r->messages, clean_message(m, id->valuestring));
            continue;
        }
        cJSON *c = clean_message(m, NULL);
        if (!c) continue;
        int idx = kept++;
        cJSON_AddItemToArray(r->messages, c);
        if (strcmp(role, "assistant")) continue;
        const cJSON *call;
        cJSON_ArrayForEach (call, cJSON_GetObjectItemCaseSensitive(m, "tool_calls")) {
            const char *nm = str(cJSON_GetObjectItemCaseSensitive(call, "function"), "name");
            int seen = 0;
            const cJSON *e;
            cJSON_ArrayForEach (e, names) seen |= nm && !strcmp(e->valuestring, nm);
            if (nm && !seen) cJSON_AddItemToArray(names, cJSON_CreateString(nm));
        }
        const cJSON *et = cJSON_GetObjectItemCaseSensitive(step, "execution_time");
        step = step ? step->next : NULL;
        if (cJSON_IsNumber(et) &&
            !(et->valuedouble >= 0 && et->valuedouble * 1000 <= REPLAY_DELAY_MAX_MS)) {
            snprintf(why, wl,
                     "turn %d (history[%d]) records execution_time %g s; a tool delay must be "
                     "from 0 to %.0e ms, so fix or drop that recording",
                     r->nturns, at, et->valuedouble, REPLAY_DELAY_MAX_MS);
            cJSON_Delete(names);
            return 1;
        }
        long delay = cJSON_IsNumber(et) ? lround(et->valuedouble * 1000) : -1;
        long bytes = text_bytes(m);
        total_bytes += bytes;
        if (add_turn(r, idx, bytes, -1, delay, calls_record(m, delay), why, wl)) {
            cJSON_Delete(names);
            return 1;
        }
    }
    if (r->nturns == 0) {
        snprintf(why, wl, "no assistant turn in 'history'");
        cJSON_Delete(names);
        return 1;
    }
    /* share the recorded total of output tokens by bytes, largest remainders last */
    const cJSON *recv = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "info"),
                                         "model_stats"),
        "tokens_received");
    int64_t received;
    long total = json_int64(recv, &received) ? (long)received : -1;
    long given = 0;
    for (int i = 0; i < r->nturns; i++) {
        long b = r->turns[i].output_tokens;
        long t =
            total > 0 && total_bytes > 0 ? (long)((double)total * b / total_bytes) : (b + 3) / 4;
        if (t < 1) t = 1;
        r->turns[i].output_tokens = t;
        given += t;
    }
    if (total > 0 && total > given) r->turns[r->nturns - 1].output_tokens += total - given;
    if (cJSON_GetArraySize(names) > 0) {
        r->tools = cJSON_CreateArray();
        const cJSON *e;
        cJSON_ArrayForEach (e, names) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "type", "function");
            cJSON *f = cJSON_AddObjectToObject(t, "function");
            cJSON_AddStringToObject(f, "name", e->valuestring);
            cJSON_AddItemToObject(f, "parameters", cJSON_Parse("{\"type\":\"object\"}"));
            cJSON_AddItemToArray(r->tools, t);
        }
    }
    cJSON_Delete(names);
    return 0;
}

static int from_openai(const cJSON *root, struct recording *r, char *why, size_t wl)
{
    const cJSON *msgs =
        cJSON_IsArray(root) ? root : cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!cJSON_IsArray(msgs)) {
        snprintf(why, wl, "expected a JSON list of messages or an object with 'messages'");
        return 1;
    }
    snprintf(r->source, sizeof r->source, "openai-messages");
    r->messages = cJSON_CreateArray();
    int kept = 0, at = -1;
    const cJSON *m;
    cJSON_ArrayForEach (m, msgs) {
        if (check_role(m, msgs == root ? "" : "messages", ++at, why, wl)) return 1;
        cJSON *c = clean_message(m, NULL);
        if (!c) continue;
        int idx = kept++;
        cJSON_AddItemToArray(r->messages, c);
        long out = (text_bytes(m) + 3) / 4;
        if (!strcmp(str(m, "role"), "assistant") &&
            add_turn(r, idx, out > 0 ? out : 1, -1, -1, calls_record(m, -1), why, wl))
            return 1;
    }
    const cJSON *tools =
        cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "tools") : NULL;
    if (cJSON_IsArray(tools)) r->tools = cJSON_Duplicate(tools, 1);
    if (r->nturns == 0) {
        snprintf(why, wl, "no assistant message, so no turn to replay");
        return 1;
    }
    return 0;
}

int recording_format(const char *name)
{
    return !name                              ? -1
           : !strcmp(name, "mini-swe-agent")  ? RECORDING_MINI_SWE_AGENT
           : !strcmp(name, "swe-agent")       ? RECORDING_SWE_AGENT
           : !strcmp(name, "openai-messages") ? RECORDING_OPENAI_MESSAGES
                                              : -1;
}

/* 1 when text nests arrays and objects deeper than cJSON reads (CJSON_NESTING_LIMIT): cJSON
 * reports that only as a failed parse, so this tells it apart from a syntax error. Brackets
 * inside strings do not count. */
static int nested_too_deep(const char *s)
{
    int depth = 0, in_string = 0;
    for (; *s; s++) {
        if (in_string) {
            if (*s == '\\' && s[1])
                s++;
            else if (*s == '"')
                in_string = 0;
        } else if (*s == '"')
            in_string = 1;
        else if ((*s == '[' || *s == '{') && ++depth > CJSON_NESTING_LIMIT)
            return 1;
        else if (*s == ']' || *s == '}')
            depth--;
    }
    return 0;
}

/* The file's one JSON document, or NULL with the reason in why: trailing text (a second
 * document) and a key held twice by one object are refused, as either would otherwise be
 * dropped or shadowed silently. */
static cJSON *parse_document(const char *text, char *why, size_t wl)
{
    int more = 0;
    char where[64] = "", key[200] = "";
    cJSON *root = json_parse_whole(text, &more, where, sizeof where);
    if (!root && more)
        snprintf(why, wl,
                 "more text follows its JSON document %s (a second document?); give one JSON "
                 "document per file",
                 where);
    else if (!root && nested_too_deep(text))
        snprintf(why, wl,
                 "its JSON nests arrays and objects more than %d levels deep, more than the "
                 "JSON reader takes; fix or drop that recording",
                 CJSON_NESTING_LIMIT);
    else if (!root)
        snprintf(why, wl, "not valid JSON (%s); fix or drop that recording", where);
    else if (json_key_twice(root, key, sizeof key)) {
        snprintf(why, wl,
                 "key '%s' appears twice in one object, and only the first would be read; "
                 "remove one of them",
                 key);
        cJSON_Delete(root);
        root = NULL;
    }
    return root;
}

/* A first message that is an assistant answer has no request before it: a turn from it would
 * send "messages":[], which strobe agents skips, so it stays history but is no turn. */
static void drop_unasked_turn(struct recording *r)
{
    if (r->nturns == 0 || r->turns[0].msg_index > 0) return;
    cJSON_Delete(r->turns[0].calls);
    memmove(r->turns, r->turns + 1, (size_t)(r->nturns - 1) * sizeof *r->turns);
    r->nturns--;
    snprintf(r->note, sizeof r->note,
             "its first message is an assistant answer with no request before it, so it is "
             "kept as history but not replayed as a turn");
}

/* The limits strobe agents applies to the trace and manifest entry import writes from r:
 * 0, or 1 with the reason in why. Delays were checked as they were read (a huge one does not
 * fit lround). */
static int check_replayable(const struct recording *r, enum recording_format format, char *why,
                            size_t wl)
{
    double delays = 0, calls = 0;
    for (int k = 0; k < r->nturns; k++) {
        const struct recording_turn *t = &r->turns[k];
        if (t->output_tokens < 0 || t->output_tokens > INT32_MAX) {
            snprintf(why, wl,
                     "turn %d's output size comes to %ld tokens%s; it must be from 0 to %d, so "
                     "fix or drop that recording",
                     k, t->output_tokens,
                     format == RECORDING_SWE_AGENT
                         ? " (its share of info.model_stats.tokens_received)"
                         : "",
                     INT32_MAX);
            return 1;
        }
        if (k < r->nturns - 1 && t->tool_delay_ms > 0) delays += (double)t->tool_delay_ms;
        calls += cJSON_GetArraySize(t->calls);
    }
    if (delays > REPLAY_DELAY_MAX_MS) {
        snprintf(why, wl,
                 "its tool delays add up to %.0f ms; a recording's total must be at most %.0e "
                 "ms, so fix or drop that recording",
                 delays, REPLAY_DELAY_MAX_MS);
        return 1;
    }
    if (calls > INT32_MAX) {
        snprintf(why, wl, "it records %.0f tool calls, more than %d; split or drop it", calls,
                 INT32_MAX);
        return 1;
    }
    return 0;
}

int recording_parse(enum recording_format format, const char *text, struct recording *r, char *why,
                    size_t wl)
{
    cJSON *root = parse_document(text, why, wl);
    if (!root) return 1;
    int rc;
    if (format == RECORDING_MINI_SWE_AGENT)
        rc = from_mini_swe(root, r, why, wl);
    else if (format == RECORDING_SWE_AGENT)
        rc = from_swe_agent(root, r, why, wl);
    else
        rc = from_openai(root, r, why, wl);
    cJSON_Delete(root);
    if (rc) return rc;
    drop_unasked_turn(r);
    if (r->nturns == 0) {
        snprintf(why, wl,
                 "its only assistant answer is its first message, with no request before it, so "
                 "there is no turn to replay");
        return 1;
    }
    return check_replayable(r, format, why, wl);
}

static void sanitise(char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            *s = '_';
}

void recording_name(struct recording *r, const char *path)
{
    if (!r->task_id[0]) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        while (*base == '.') base++; /* ".traj.json" once gave "" and traces/.jsonl */
        snprintf(r->task_id, sizeof r->task_id, "%s", base);
        char *dot = strchr(r->task_id, '.');
        if (dot) *dot = 0;
        if (!r->task_id[0]) snprintf(r->task_id, sizeof r->task_id, "recording");
    }
    sanitise(r->task_id);
}

void recording_free(struct recording *r)
{
    cJSON_Delete(r->messages);
    cJSON_Delete(r->tools);
    for (int i = 0; i < r->nturns; i++) cJSON_Delete(r->turns[i].calls);
    free(r->turns);
    memset(r, 0, sizeof *r);
}

/* A line's fields before "messages": cJSON prints them (so the ids are escaped) and the
 * closing brace is left off for the messages to follow. NULL when out of memory. */
static char *line_head(const struct recording *r, int k)
{
    char turn_id[sizeof r->task_id + 16];
    snprintf(turn_id, sizeof turn_id, "%s:%04d", r->task_id, k);
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (o && cJSON_AddNumberToObject(o, "version", 1) &&
        cJSON_AddStringToObject(o, "turn_id", turn_id) &&
        cJSON_AddStringToObject(o, "task_id", r->task_id) &&
        cJSON_AddStringToObject(o, "conversation_id", r->task_id) &&
        cJSON_AddNumberToObject(o, "conversation_idx", k))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s) s[strlen(s) - 1] = 0;
    return s;
}

/* A line's "source": the recording's format as it gave it (any string: cJSON escapes it).
 * NULL when out of memory. */
static char *line_source(const struct recording *r, int k)
{
    const struct recording_turn *t = &r->turns[k];
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (o && cJSON_AddStringToObject(o, "format", r->source) &&
        cJSON_AddNumberToObject(o, "model_call_index", k) &&
        (t->prompt_tokens < 0 ||
         cJSON_AddNumberToObject(o, "recorded_prompt_tokens", (double)t->prompt_tokens)))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Writes turn k's line from the messages serialised once (ser) and the tools (or NULL).
 * 0, or -1 with errno set (a failed write, or ENOMEM). */
static int write_turn(FILE *f, const struct recording *r, int k, char **ser, const char *tools)
{
    const struct recording_turn *t = &r->turns[k];
    char *head = line_head(r, k), *source = line_source(r, k);
    char *calls = cJSON_PrintUnformatted(t->calls);
    int rc = head && source && calls ? 0 : -1;
    if (rc) errno = ENOMEM;
    if (!rc && fprintf(f, "%s,\"messages\":[", head) < 0) rc = -1;
    for (int i = 0; !rc && i < t->msg_index; i++)
        if (fprintf(f, "%s%s", i ? "," : "", ser[i]) < 0) rc = -1;
    long delay = k == r->nturns - 1 ? 0 : t->tool_delay_ms;
    if (!rc && fprintf(f, "],\"tools\":%s,\"target_output_tokens\":%ld,\"max_output_tokens\":%ld",
                       tools ? tools : "null", t->output_tokens, t->output_tokens) < 0)
        rc = -1;
    if (!rc && delay >= 0 && fprintf(f, ",\"simulated_tool_delay_ms_after\":%ld", delay) < 0)
        rc = -1;
    if (!rc && fprintf(f, ",\"recorded_tool_calls_after\":%s,\"source\":%s}\n", calls, source) < 0)
        rc = -1;
    free(head);
    free(source);
    free(calls);
    return rc;
}

/* Each message serialised once, walking the list by its links; NULL when out of memory. */
static char **serialise_messages(const cJSON *messages, int *n)
{
    *n = 0;
    const cJSON *m;
    cJSON_ArrayForEach (m, messages) (*n)++;
    char **ser = calloc((size_t)*n + 1, sizeof *ser);
    if (!ser) return NULL;
    int i = 0;
    cJSON_ArrayForEach (m, messages) {
        if (!(ser[i++] = cJSON_PrintUnformatted(m))) {
            for (int k = 0; k < i; k++) free(ser[k]);
            free(ser);
            return NULL;
        }
    }
    return ser;
}

#define WRITE_ADVICE "free space there (or give another -o) and import again"

/* Writes traces/ID.jsonl: turn k carries the messages before its assistant answer. Each
 * message is serialised once and the lines are concatenated from those fragments. The file
 * is created exclusively ("x": an existing trace is another task's, never replaced), and a
 * failed write (a full disk shows at a write or at fclose) removes the partial file. */
int recording_write_trace(const char *out, const struct recording *r, long *tool_calls,
                          long *delay_total, char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/traces/%s.jsonl", out, r->task_id) >= (int)sizeof path) {
        snprintf(err, errlen, "the trace path under -o %s is too long; give a shorter -o", out);
        return -1;
    }
    int n;
    char **ser = serialise_messages(r->messages, &n);
    char *tools = r->tools ? cJSON_PrintUnformatted(r->tools) : NULL;
    if (!ser || (r->tools && !tools)) {
        snprintf(err, errlen,
                 "out of memory serialising task %s; import fewer or smaller recordings",
                 r->task_id);
        free(tools);
        for (int i = 0; ser && i < n; i++) free(ser[i]);
        free(ser);
        return -1;
    }
    FILE *f = fopen(path, "wx");
    int rc = f ? 0 : -1;
    if (!f)
        snprintf(err, errlen, "cannot create %s: %s%s", path, strerror(errno),
                 errno == EEXIST ? " (import never replaces a trace; give a new -o)" : "");
    *tool_calls = *delay_total = 0;
    for (int k = 0; !rc && k < r->nturns; k++) {
        const struct recording_turn *t = &r->turns[k];
        if (write_turn(f, r, k, ser, tools)) {
            snprintf(err, errlen, "cannot write %s: %s; %s", path, strerror(errno), WRITE_ADVICE);
            rc = -1;
        }
        long delay = k == r->nturns - 1 ? 0 : t->tool_delay_ms;
        *tool_calls += cJSON_GetArraySize(t->calls);
        if (delay > 0) *delay_total += delay;
    }
    if (f) {
        int unflushed = ferror(f); /* a write error that no fprintf reported */
        if ((fclose(f) || unflushed) && !rc) {
            snprintf(err, errlen, "cannot finish %s: %s; %s", path,
                     unflushed ? "a write failed" : strerror(errno), WRITE_ADVICE);
            rc = -1;
        }
        if (rc) unlink(path);
    }
    for (int i = 0; i < n; i++) free(ser[i]);
    free(ser);
    free(tools);
    return rc;
}
