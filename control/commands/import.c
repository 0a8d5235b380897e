/* `strobe import --from mini-swe-agent|swe-agent|openai-messages FILES... -o REPLAY_DIR`:
 * each recording read (control/import/recording.h) and written as one trace, or skipped with
 * one line saying why; then the manifest and a summary of what was imported. */
#include "commands.h"

#include "read_file.h"
#include "recording.h"
#include "stats.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* a manifest entry's task_id (always a string: this command wrote it) */
static const char *task_id(const cJSON *task)
{
    return cJSON_GetObjectItemCaseSensitive(task, "task_id")->valuestring;
}

static void print_dist(const char *what, struct dvec *v, const char *unit)
{
    struct summary s;
    summarise(v->v, v->n, &s);
    printf("  %-28s min %.0f, median %.0f, max %.0f %s\n", what, s.min, s.p50, s.max, unit);
}

int cmd_import(int argc, char **argv)
{
    const char *from = NULL, *out = NULL;
    static const struct option opts[] = {
        {"from", 1, 0, 'f'}, {"out", 1, 0, 'o'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int o;
    opterr = 0;
    optind = 1;
    while ((o = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        if (o == 'f')
            from = optarg;
        else if (o == 'o')
            out = optarg;
        else if (o == 'h') {
            printf("usage: strobe import --from mini-swe-agent|swe-agent|openai-messages FILES... "
                   "-o REPLAY_DIR\n\n"
                   "Writes AA's replay format (manifest.json, traces/TASK_ID.jsonl) from agent\n"
                   "recordings. Unusable recordings are skipped with one line each saying why.\n");
            return 0;
        } else {
            fprintf(stderr,
                    "strobe import: unknown option or missing value in '%s'; see strobe import "
                    "--help.\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    int kind = recording_format(from);
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
            fprintf(stderr,
                    "strobe import: -o %s is not empty; give a new or empty directory "
                    "(import never adds to an existing replay).\n",
                    out);
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
        char why[256] = "";
        struct recording r = {0};
        int rc = recording_parse((enum recording_format)kind, text, &r, why, sizeof why);
        free(text);
        if (rc) {
            printf("skipped %s: %s\n", argv[i], why);
            skipped++;
            recording_free(&r);
            continue;
        }
        recording_name(&r, argv[i]);
        /* the same name twice (SWE-agent runs of one instance): number them */
        char unique[230];
        snprintf(unique, sizeof unique, "%s", r.task_id);
        for (int k = 2;; k++) {
            int clash = 0;
            const cJSON *t;
            cJSON_ArrayForEach (t, tasks) clash |= !strcmp(task_id(t), unique);
            if (!clash) break;
            snprintf(unique, sizeof unique, "%s-%d", r.task_id, k);
        }
        snprintf(r.task_id, sizeof r.task_id, "%s", unique);
        long calls, delay;
        if (recording_write_trace(out, &r, &calls, &delay, err, sizeof err)) {
            fprintf(stderr, "strobe import: %s.\n", err);
            recording_free(&r);
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
        recording_free(&r);
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
