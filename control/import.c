/* `strobe import`: real agent recordings into AA's replay format (methodology.md §7).
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
#include "import.h"

#include "json_num.h"
#include "read_file.h"
#include "stats.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct rec_turn {
    int msg_index;      /* the assistant message answering this turn */
    long output_tokens;
    long prompt_tokens; /* recorded, or -1 */
    long tool_delay_ms; /* -1 when not recorded */
    cJSON *calls;       /* recorded_tool_calls_after (owned) */
};

struct recording {
    char task_id[200];
    cJSON *messages; /* cleaned history, owned */
    cJSON *tools;    /* owned or NULL */
    struct rec_turn *turns;
    int nturns;
    char source[64];
};

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *clean_calls(const cJSON *calls)
{
    if (!cJSON_IsArray(calls) || cJSON_GetArraySize(calls) == 0) return NULL;
    cJSON *out = cJSON_CreateArray();
    const cJSON *c;
    cJSON_ArrayForEach(c, calls)
    {
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
    if (str(m, "name") && strcmp(role, "tool") == 0) cJSON_AddStringToObject(o, "name", str(m, "name"));
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
    cJSON_ArrayForEach(call, cJSON_GetObjectItemCaseSensitive(m, "tool_calls"))
    {
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
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(assistant, "tool_calls"))
    {
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

static void add_turn(struct recording *r, int msg_index, long out, long prompt, long delay,
                     cJSON *calls)
{
    r->turns = realloc(r->turns, (size_t)(r->nturns + 1) * sizeof *r->turns);
    r->turns[r->nturns++] = (struct rec_turn){msg_index, out, prompt, delay, calls};
}

static double ts(const cJSON *m)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "extra"), "timestamp");
    return cJSON_IsNumber(t) ? t->valuedouble : -1;
}

/* Returns 0, or 1 with a reason to skip. */
static int from_mini_swe(const cJSON *root, struct recording *r, char *why, size_t wl)
{
    const char *fmt = str(root, "trajectory_format");
    if (!fmt || strncmp(fmt, "mini-swe-agent", 14)) {
        snprintf(why, wl, "not a mini-swe-agent trajectory (trajectory_format '%s')", fmt ? fmt : "missing");
        return 1;
    }
    const char *id = str(root, "instance_id");
    if (id) snprintf(r->task_id, sizeof r->task_id, "%s", id);
    snprintf(r->source, sizeof r->source, "%s", fmt);
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    r->messages = cJSON_CreateArray();
    int uses_tools = 0;
    const cJSON *m;
    int n = cJSON_GetArraySize(msgs);
    for (int i = 0; i < n; i++) {
        m = cJSON_GetArrayItem(msgs, i);
        cJSON *c = clean_message(m, NULL);
        if (!c) continue;
        int idx = cJSON_GetArraySize(r->messages);
        cJSON_AddItemToArray(r->messages, c);
        if (strcmp(str(m, "role"), "assistant")) continue;
        const cJSON *usage = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "extra"), "response"), "usage");
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");
        const cJSON *pt = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens");
        int64_t given_out, given_in;
        long out = json_int64(ct, &given_out) ? (long)given_out : (text_bytes(m) + 3) / 4;
        /* tool time: from this answer to the last tool result before the next request */
        double t0 = ts(m), t1 = -1;
        for (int k = i + 1; k < n; k++) {
            const cJSON *mk = cJSON_GetArrayItem(msgs, k);
            const char *role = str(mk, "role");
            if (!role || !strcmp(role, "assistant")) break;
            if (!strcmp(role, "tool") || !strcmp(role, "user")) t1 = ts(mk) > t1 ? ts(mk) : t1;
        }
        long delay = t0 >= 0 && t1 >= t0 ? lround((t1 - t0) * 1000) : 0;
        if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "tool_calls")) > 0) uses_tools = 1;
        add_turn(r, idx, out, json_int64(pt, &given_in) ? (long)given_in : -1, delay,
                 calls_record(m, delay));
    }
    if (r->nturns == 0) {
        const char *exit = str(cJSON_GetObjectItemCaseSensitive(root, "info"), "exit_status");
        snprintf(why, wl, "no assistant turn: the run ended at turn 0 (exit_status %s)", exit ? exit : "unknown");
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
    r->messages = cJSON_CreateArray();
    cJSON *names = cJSON_CreateArray();
    long total_bytes = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, hist)
    {
        const char *role = str(m, "role");
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(m, "tool_call_ids");
        if (role && !strcmp(role, "tool") && cJSON_IsArray(ids) && cJSON_GetArraySize(ids) > 0) {
            const cJSON *id;
            cJSON_ArrayForEach(id, ids) if (cJSON_IsString(id))
                cJSON_AddItemToArray(r->messages, clean_message(m, id->valuestring));
            continue;
        }
        cJSON *c = clean_message(m, NULL);
        if (!c) continue;
        int idx = cJSON_GetArraySize(r->messages);
        cJSON_AddItemToArray(r->messages, c);
        if (strcmp(role, "assistant")) continue;
        const cJSON *call;
        cJSON_ArrayForEach(call, cJSON_GetObjectItemCaseSensitive(m, "tool_calls"))
        {
            const char *nm = str(cJSON_GetObjectItemCaseSensitive(call, "function"), "name");
            int seen = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, names) seen |= nm && !strcmp(e->valuestring, nm);
            if (nm && !seen) cJSON_AddItemToArray(names, cJSON_CreateString(nm));
        }
        const cJSON *step = cJSON_GetArrayItem(traj, r->nturns);
        const cJSON *et = cJSON_GetObjectItemCaseSensitive(step, "execution_time");
        long delay = cJSON_IsNumber(et) ? lround(et->valuedouble * 1000) : -1;
        long bytes = text_bytes(m);
        total_bytes += bytes;
        add_turn(r, idx, bytes, -1, delay, calls_record(m, delay));
    }
    if (r->nturns == 0) {
        snprintf(why, wl, "no assistant turn in 'history'");
        cJSON_Delete(names);
        return 1;
    }
    /* share the recorded total of output tokens by bytes, largest remainders last */
    const cJSON *recv = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "info"), "model_stats"),
        "tokens_received");
    int64_t received;
    long total = json_int64(recv, &received) ? (long)received : -1;
    long given = 0;
    for (int i = 0; i < r->nturns; i++) {
        long b = r->turns[i].output_tokens;
        long t = total > 0 && total_bytes > 0 ? (long)((double)total * b / total_bytes) : (b + 3) / 4;
        if (t < 1) t = 1;
        r->turns[i].output_tokens = t;
        given += t;
    }
    if (total > 0 && total > given) r->turns[r->nturns - 1].output_tokens += total - given;
    if (cJSON_GetArraySize(names) > 0) {
        r->tools = cJSON_CreateArray();
        const cJSON *e;
        cJSON_ArrayForEach(e, names)
        {
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
    const cJSON *msgs = cJSON_IsArray(root) ? root : cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!cJSON_IsArray(msgs)) {
        snprintf(why, wl, "expected a JSON list of messages or an object with 'messages'");
        return 1;
    }
    snprintf(r->source, sizeof r->source, "openai-messages");
    r->messages = cJSON_CreateArray();
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        cJSON *c = clean_message(m, NULL);
        if (!c) continue;
        int idx = cJSON_GetArraySize(r->messages);
        cJSON_AddItemToArray(r->messages, c);
        if (!strcmp(str(m, "role"), "assistant"))
            add_turn(r, idx, (text_bytes(m) + 3) / 4 > 0 ? (text_bytes(m) + 3) / 4 : 1, -1, -1,
                     calls_record(m, -1));
    }
    const cJSON *tools = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "tools") : NULL;
    if (cJSON_IsArray(tools)) r->tools = cJSON_Duplicate(tools, 1);
    if (r->nturns == 0) {
        snprintf(why, wl, "no assistant message, so no turn to replay");
        return 1;
    }
    return 0;
}

static void sanitise(char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            *s = '_';
}

static void rec_free(struct recording *r)
{
    cJSON_Delete(r->messages);
    cJSON_Delete(r->tools);
    for (int i = 0; i < r->nturns; i++) cJSON_Delete(r->turns[i].calls);
    free(r->turns);
    memset(r, 0, sizeof *r);
}

/* Writes traces/ID.jsonl: turn k carries the messages before its assistant answer. Each
 * message is serialised once and the lines are concatenated from those fragments. */
static int write_trace(const char *out, const struct recording *r, long *tool_calls,
                       long *delay_total, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/traces/%s.jsonl", out, r->task_id);
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    int n = cJSON_GetArraySize(r->messages);
    char **ser = malloc((size_t)n * sizeof *ser);
    for (int i = 0; i < n; i++) ser[i] = cJSON_PrintUnformatted(cJSON_GetArrayItem(r->messages, i));
    char *tools = r->tools ? cJSON_PrintUnformatted(r->tools) : NULL;
    *tool_calls = *delay_total = 0;
    for (int k = 0; k < r->nturns; k++) {
        const struct rec_turn *t = &r->turns[k];
        fprintf(f, "{\"version\":1,\"turn_id\":\"%s:%04d\",\"task_id\":\"%s\",\"conversation_id\":\"%s\","
                   "\"conversation_idx\":%d,\"messages\":[",
                r->task_id, k, r->task_id, r->task_id, k);
        for (int i = 0; i < t->msg_index; i++) fprintf(f, "%s%s", i ? "," : "", ser[i]);
        fprintf(f, "],\"tools\":%s,\"target_output_tokens\":%ld,\"max_output_tokens\":%ld",
                tools ? tools : "null", t->output_tokens, t->output_tokens);
        long delay = k == r->nturns - 1 ? 0 : t->tool_delay_ms;
        if (delay >= 0) fprintf(f, ",\"simulated_tool_delay_ms_after\":%ld", delay);
        char *calls = cJSON_PrintUnformatted(t->calls);
        fprintf(f, ",\"recorded_tool_calls_after\":%s,\"source\":{\"format\":\"%s\",\"model_call_index\":%d",
                calls, r->source, k);
        if (t->prompt_tokens >= 0) fprintf(f, ",\"recorded_prompt_tokens\":%ld", t->prompt_tokens);
        fprintf(f, "}}\n");
        free(calls);
        *tool_calls += cJSON_GetArraySize(t->calls);
        if (delay > 0) *delay_total += delay;
    }
    for (int i = 0; i < n; i++) free(ser[i]);
    free(ser);
    free(tools);
    if (fclose(f)) {
        snprintf(err, errlen, "cannot finish %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void print_dist(const char *what, struct dvec *v, const char *unit)
{
    struct summary s;
    summarise(v->v, v->n, &s);
    printf("  %-28s min %.0f, median %.0f, max %.0f %s\n", what, s.min, s.p50, s.max, unit);
}

int import_main(int argc, char **argv)
{
    const char *from = NULL, *out = NULL;
    static const struct option opts[] = {{"from", 1, 0, 'f'}, {"out", 1, 0, 'o'},
                                         {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int o;
    opterr = 0;
    optind = 1;
    while ((o = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        if (o == 'f') from = optarg;
        else if (o == 'o') out = optarg;
        else if (o == 'h') {
            printf("usage: strobe import --from mini-swe-agent|swe-agent|openai-messages FILES... -o REPLAY_DIR\n\n"
                   "Writes AA's replay format (manifest.json, traces/TASK_ID.jsonl) from agent\n"
                   "recordings. Unusable recordings are skipped with one line each saying why.\n");
            return 0;
        } else {
            fprintf(stderr, "strobe import: unknown option or missing value in '%s'; see strobe import --help.\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    int kind = !from ? -1 : !strcmp(from, "mini-swe-agent") ? 0 : !strcmp(from, "swe-agent") ? 1
                          : !strcmp(from, "openai-messages") ? 2 : -1;
    if (kind < 0 || !out || optind >= argc) {
        fprintf(stderr, "strobe import: needs --from mini-swe-agent|swe-agent|openai-messages, "
                        "-o REPLAY_DIR and at least one FILE; see strobe import --help.\n");
        return 2;
    }
    /* a replay directory is one import's: mixing in another's traces and overwriting its
     * manifest would leave trajectories no manifest names */
    DIR *existing = opendir(out);
    if (existing) {
        struct dirent *d;
        int empty = 1;
        while (empty && (d = readdir(existing)))
            empty = !strcmp(d->d_name, ".") || !strcmp(d->d_name, "..");
        closedir(existing);
        if (!empty) {
            fprintf(stderr, "strobe import: -o %s is not empty; give a new or empty directory "
                            "(import never adds to an existing replay).\n", out);
            return 2;
        }
    } else if (errno != ENOENT) {
        fprintf(stderr, "strobe import: -o %s: %s; give a new or empty directory.\n", out,
                strerror(errno));
        return 2;
    }
    char tdir[4096];
    snprintf(tdir, sizeof tdir, "%s/traces", out);
    if ((mkdir(out, 0755) && errno != EEXIST) || (mkdir(tdir, 0755) && errno != EEXIST)) {
        fprintf(stderr, "strobe import: cannot create %s: %s.\n", tdir, strerror(errno));
        return 1;
    }
    cJSON *manifest = cJSON_CreateObject();
    cJSON_AddNumberToObject(manifest, "version", 1);
    cJSON_AddStringToObject(manifest, "mode", "single_user_agentic_replay");
    cJSON_AddStringToObject(manifest, "name", "strobe import");
    cJSON_AddStringToObject(manifest, "source", from);
    cJSON *tasks = cJSON_AddArrayToObject(manifest, "tasks");
    struct dvec turns = {0}, prompts = {0}, outputs = {0};
    int taken = 0, skipped = 0;
    char err[512];
    for (int i = optind; i < argc; i++) {
        char *text = read_file(argv[i], NULL);
        if (!text) {
            printf("skipped %s: cannot read it: %s%s\n", argv[i], strerror(errno),
                   errno == EISDIR ? " (give the recording files inside it, e.g. DIR/*.json)" : "");
            skipped++;
            continue;
        }
        cJSON *root = cJSON_Parse(text);
        free(text);
        char why[256] = "";
        struct recording r = {0};
        int rc = 1;
        if (!root) snprintf(why, sizeof why, "not valid JSON");
        else if (kind == 0) rc = from_mini_swe(root, &r, why, sizeof why);
        else if (kind == 1) rc = from_swe_agent(root, &r, why, sizeof why);
        else rc = from_openai(root, &r, why, sizeof why);
        cJSON_Delete(root);
        if (rc) {
            printf("skipped %s: %s\n", argv[i], why);
            skipped++;
            rec_free(&r);
            continue;
        }
        if (!r.task_id[0]) {
            const char *base = strrchr(argv[i], '/');
            snprintf(r.task_id, sizeof r.task_id, "%s", base ? base + 1 : argv[i]);
            char *dot = strchr(r.task_id, '.');
            if (dot) *dot = 0;
        }
        sanitise(r.task_id);
        /* the same name twice (SWE-agent runs of one instance): number them */
        char unique[230];
        snprintf(unique, sizeof unique, "%s", r.task_id);
        for (int k = 2;; k++) {
            int clash = 0;
            const cJSON *t;
            cJSON_ArrayForEach(t, tasks) clash |= !strcmp(str(t, "task_id"), unique);
            if (!clash) break;
            snprintf(unique, sizeof unique, "%s-%d", r.task_id, k);
        }
        snprintf(r.task_id, sizeof r.task_id, "%s", unique);
        long calls, delay;
        if (write_trace(out, &r, &calls, &delay, err, sizeof err)) {
            fprintf(stderr, "strobe import: %s.\n", err);
            rec_free(&r);
            cJSON_Delete(manifest);
            return 1;
        }
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "task_id", r.task_id);
        char trace[300];
        snprintf(trace, sizeof trace, "traces/%s.jsonl", r.task_id);
        cJSON_AddStringToObject(t, "trace", trace);
        const char *base = strrchr(argv[i], '/');
        cJSON_AddStringToObject(t, "source_recording", base ? base + 1 : argv[i]);
        cJSON_AddNumberToObject(t, "model_calls", r.nturns);
        cJSON_AddNumberToObject(t, "tool_calls", (double)calls);
        cJSON_AddNumberToObject(t, "total_recorded_tool_delay_ms", (double)delay);
        cJSON_AddItemToArray(tasks, t);
        dvec_push(&turns, r.nturns);
        long biggest = 0;
        for (int k = 0; k < r.nturns; k++) {
            dvec_push(&outputs, (double)r.turns[k].output_tokens);
            if (r.turns[k].prompt_tokens > biggest) biggest = r.turns[k].prompt_tokens;
        }
        if (biggest <= 0) { /* no recorded prompt sizes: bytes / 4 of the last request */
            char *s = cJSON_PrintUnformatted(r.messages);
            biggest = (long)strlen(s) / 4;
            free(s);
        }
        dvec_push(&prompts, (double)biggest);
        taken++;
        rec_free(&r);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", out);
    char *m = cJSON_Print(manifest);
    FILE *f = fopen(path, "w");
    int ok = f && fputs(m, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f)) ok = 0;
    free(m);
    cJSON_Delete(manifest);
    if (!ok) {
        fprintf(stderr, "strobe import: cannot write %s: %s.\n", path, strerror(errno));
        return 1;
    }
    printf("imported %d trajectories into %s, skipped %d\n", taken, out, skipped);
    if (!taken)
        fprintf(stderr, "strobe import: no recording could be imported (each is skipped above with "
                        "its reason); give recording files of the --from format.\n");
    if (taken) {
        print_dist("turns per trajectory:", &turns, "turns");
        print_dist("largest prompt per trajectory:", &prompts, "tokens");
        print_dist("output per turn:", &outputs, "tokens");
    }
    dvec_free(&turns);
    dvec_free(&prompts);
    dvec_free(&outputs);
    return taken ? 0 : 1;
}
