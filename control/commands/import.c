/* `strobe import --from mini-swe-agent|swe-agent|openai-messages FILES... -o REPLAY_DIR`:
 * each recording read (control/import/recording.h) and written as one trace, or skipped with
 * one line saying why; then the manifest and a summary of what was imported. */
#include "flag_once.h"
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
#include <unistd.h>

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

/* What this run created under -o, so that a failed import takes back exactly that: the
 * trace files the manifest lists, the manifest, and the directories it made (an empty -o
 * given by the user stays). Without it a failure left a replay a rerun refuses as "not
 * empty". */
struct created {
    int out_dir, traces_dir, manifest;
};

static void undo_import(const char *out, const cJSON *tasks, const struct created *c)
{
    char path[4096];
    const cJSON *t;
    cJSON_ArrayForEach (t, tasks) {
        snprintf(path, sizeof path, "%s/%s", out,
                 cJSON_GetObjectItemCaseSensitive(t, "trace")->valuestring);
        unlink(path);
    }
    if (c->manifest) {
        snprintf(path, sizeof path, "%s/manifest.json", out);
        unlink(path);
    }
    if (c->traces_dir) {
        snprintf(path, sizeof path, "%s/traces", out);
        rmdir(path);
    }
    if (c->out_dir) rmdir(out);
}

static int id_taken(const cJSON *tasks, const char *id)
{
    const cJSON *t;
    cJSON_ArrayForEach (t, tasks)
        if (!strcmp(task_id(t), id)) return 1;
    return 0;
}

/* The task ids taken so far: an open-addressing hash set, each id with the next suffix to
 * try when it comes again as a base name. Rescanning the manifest for each suffix made N
 * recordings of one task cubic (2000 copies took 12 s). */
struct id_set {
    struct id_slot {
        char *id; /* NULL: an empty slot */
        int next; /* id-2 .. id-(next-1) are all taken */
    } * slot;
    size_t cap, n; /* cap a power of two, kept at least twice n */
};

/* id's slot, or the empty slot where it would go. */
static struct id_slot *id_find(const struct id_set *s, const char *id)
{
    size_t h = 14695981039346656037u; /* FNV-1a */
    for (const char *c = id; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211u;
    size_t i = h & (s->cap - 1);
    while (s->slot[i].id && strcmp(s->slot[i].id, id)) i = (i + 1) & (s->cap - 1);
    return &s->slot[i];
}

/* Adds id (not yet in s). 0, or -1 when out of memory. */
static int id_add(struct id_set *s, const char *id)
{
    if (2 * (s->n + 1) > s->cap) {
        struct id_set grown = {calloc(s->cap ? 2 * s->cap : 64, sizeof *s->slot),
                               s->cap ? 2 * s->cap : 64, s->n};
        if (!grown.slot) return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i].id) *id_find(&grown, s->slot[i].id) = s->slot[i];
        free(s->slot);
        *s = grown;
    }
    struct id_slot *e = id_find(s, id);
    if (!(e->id = strdup(id))) return -1;
    e->next = 2;
    s->n++;
    return 0;
}

static void id_set_free(struct id_set *s)
{
    for (size_t i = 0; i < s->cap; i++) free(s->slot[i].id);
    free(s->slot);
}

/* The same name twice (SWE-agent runs of one instance) is numbered -2, -3, ... (the first
 * free one, in the order the recordings were given); a name too long for the suffix is
 * shortened so the suffix always survives (two 199-character ids sharing their start once
 * became one id and one trace written twice). The id is added to ids. 0, or -1 when out of
 * memory. */
static int unique_task_id(struct id_set *ids, char *id, size_t size)
{
    struct id_slot *taken = ids->cap ? id_find(ids, id) : NULL;
    if (taken && taken->id) {
        char base[sizeof((struct recording *)0)->task_id];
        snprintf(base, sizeof base, "%s", id);
        int k = taken->next;
        for (;; k++) {
            char suffix[16];
            int sl = snprintf(suffix, sizeof suffix, "-%d", k);
            int keep = (int)strlen(base);
            if (keep > (int)size - 1 - sl) keep = (int)size - 1 - sl;
            snprintf(id, size, "%.*s%s", keep, base, suffix);
            if (!id_find(ids, id)->id) break;
        }
        taken->next = k + 1; /* before id_add, which may move the slots */
    }
    return id_add(ids, id);
}

/* Writes OUT/manifest.json, created exclusively (-o was empty). 0, or -1 with a sentence
 * printed; a partly written manifest is removed. */
static int write_manifest(const char *out, const cJSON *manifest, struct created *c)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", out);
    char *m = cJSON_Print(manifest);
    if (!m) {
        fprintf(stderr, "strobe import: out of memory printing %s; import fewer recordings.\n",
                path);
        return -1;
    }
    FILE *f = fopen(path, "wx");
    if (f) c->manifest = 1;
    int ok = f && fputs(m, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f)) ok = 0;
    free(m);
    if (!ok) {
        fprintf(stderr,
                "strobe import: cannot write %s: %s; free space there (or give another -o) and "
                "import again.\n",
                path, strerror(errno));
        return -1;
    }
    return 0;
}

/* The distributions the summary prints. */
struct sums {
    struct dvec turns, prompts, outputs;
};

static void sums_free(struct sums *s)
{
    dvec_free(&s->turns);
    dvec_free(&s->prompts);
    dvec_free(&s->outputs);
}

/* Adds a written trace to the manifest. 0, or -1 when out of memory. */
static int add_task(cJSON *tasks, const struct recording *r, const char *file, long calls,
                    long delay)
{
    char trace[300];
    snprintf(trace, sizeof trace, "traces/%s.jsonl", r->task_id);
    const char *base = strrchr(file, '/');
    cJSON *t = cJSON_CreateObject();
    if (!t || !cJSON_AddStringToObject(t, "task_id", r->task_id) ||
        !cJSON_AddStringToObject(t, "trace", trace) ||
        !cJSON_AddStringToObject(t, "source_recording", base ? base + 1 : file) ||
        !cJSON_AddNumberToObject(t, "model_calls", r->nturns) ||
        !cJSON_AddNumberToObject(t, "tool_calls", (double)calls) ||
        !cJSON_AddNumberToObject(t, "total_recorded_tool_delay_ms", (double)delay) ||
        !cJSON_AddItemToArray(tasks, t)) {
        cJSON_Delete(t);
        return -1;
    }
    return 0;
}

/* The largest prompt of a recording: the largest recorded, else bytes / 4 of its last
 * request. -1 when out of memory. */
static long biggest_prompt(const struct recording *r)
{
    long biggest = 0;
    for (int k = 0; k < r->nturns; k++)
        if (r->turns[k].prompt_tokens > biggest) biggest = r->turns[k].prompt_tokens;
    if (biggest > 0) return biggest;
    char *s = cJSON_PrintUnformatted(r->messages);
    if (!s) return -1;
    biggest = (long)strlen(s) / 4;
    free(s);
    return biggest;
}

/* One recording file read, written as a trace and added to the manifest. 0 taken, 1 skipped
 * (one line on stdout says why), -1 failed (a sentence on stderr; the caller undoes the
 * import). */
static int import_one(int kind, const char *file, const char *out, cJSON *tasks, struct id_set *ids,
                      struct sums *sum)
{
    /* a device is read until memory runs out (/dev/zero): a recording is a file (a directory
     * gets read_file's own advice below), or a pipe, which <(jq ...) gives and which is read
     * to its end once its writer has opened it */
    const char *special = read_file_special(file);
    if (special && strcmp(special, "a FIFO")) {
        printf("skipped %s: it is %s, not a recording file; save the recording to a file and "
               "give that\n",
               file, special);
        return 1;
    }
    char *text = read_file(file, NULL);
    if (!text) {
        printf("skipped %s: cannot read it: %s%s\n", file, strerror(errno),
               errno == EISDIR ? " (give the recording files inside it, e.g. DIR/*.json)" : "");
        return 1;
    }
    char why[256] = "";
    struct recording r = {0};
    int rc = recording_parse((enum recording_format)kind, text, &r, why, sizeof why);
    free(text);
    if (rc) {
        printf("skipped %s: %s\n", file, why);
        recording_free(&r);
        return 1;
    }
    recording_name(&r, file);
    long calls, delay, biggest;
    char err[512];
    if (unique_task_id(ids, r.task_id, sizeof r.task_id)) {
        fprintf(stderr, "strobe import: out of memory naming %s; import fewer recordings.\n", file);
        rc = -1;
    } else if (recording_write_trace(out, &r, &calls, &delay, err, sizeof err)) {
        fprintf(stderr, "strobe import: %s.\n", err);
        rc = -1;
    } else if (add_task(tasks, &r, file, calls, delay) || (biggest = biggest_prompt(&r)) < 0) {
        /* the trace is written but not yet listed: remove it here */
        char path[4096];
        snprintf(path, sizeof path, "%s/traces/%s.jsonl", out, r.task_id);
        if (!id_taken(tasks, r.task_id)) unlink(path);
        fprintf(stderr, "strobe import: out of memory after %s; import fewer recordings.\n", file);
        rc = -1;
    } else {
        if (r.note[0]) printf("note %s: %s\n", file, r.note);
        dvec_push(&sum->turns, r.nturns);
        for (int k = 0; k < r.nturns; k++)
            dvec_push(&sum->outputs, (double)r.turns[k].output_tokens);
        dvec_push(&sum->prompts, (double)biggest);
    }
    recording_free(&r);
    return rc;
}

/* 0 when all that was printed reached stdout, else 1 with a sentence on stderr: its lines
 * are the only account of the recordings skipped (stdout to /dev/full once lost them, exit
 * 0). */
static int stdout_lost(void)
{
    int e = fflush(stdout) ? errno : 0;
    if (!e && !ferror(stdout)) return 0;
    fprintf(stderr,
            "strobe import: cannot write to standard output (%s), so the account of what was "
            "imported and skipped is lost and nothing was kept; import again with standard "
            "output to a file or terminal that can take it.\n",
            e ? strerror(e) : "a write failed");
    return 1;
}

int cmd_import(int argc, char **argv)
{
    const char *from = NULL, *out = NULL;
    static const struct option opts[] = {
        {"from", 1, 0, 'f'}, {"out", 1, 0, 'o'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int o;
    opterr = 0;
    optind = 1;
    struct flag_once seen = {0};
    while ((o = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        if (flag_once(&seen, opts, o, optarg, "import", NULL)) return 2;
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
    if (from && kind < 0) {
        fprintf(stderr,
                "strobe import: unknown format '%s'; use mini-swe-agent, swe-agent or "
                "openai-messages (in lower case).\n",
                from);
        return 2;
    }
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
    struct created made = {0};
    char tdir[4096];
    snprintf(tdir, sizeof tdir, "%s/traces", out);
    made.out_dir = mkdir(out, 0755) == 0;
    int out_failed = !made.out_dir && errno != EEXIST;
    if (out_failed || !(made.traces_dir = mkdir(tdir, 0755) == 0)) {
        fprintf(stderr, "strobe import: cannot create %s: %s; give a writable -o.\n",
                out_failed ? out : tdir, strerror(errno));
        undo_import(out, NULL, &made);
        return 1;
    }
    cJSON *manifest = cJSON_CreateObject();
    cJSON *tasks = manifest ? cJSON_AddArrayToObject(manifest, "tasks") : NULL;
    if (!tasks || !cJSON_AddNumberToObject(manifest, "version", 1) ||
        !cJSON_AddStringToObject(manifest, "mode", "single_user_agentic_replay") ||
        !cJSON_AddStringToObject(manifest, "name", "strobe import") ||
        !cJSON_AddStringToObject(manifest, "source", from)) {
        fprintf(stderr, "strobe import: out of memory starting the manifest.\n");
        cJSON_Delete(manifest);
        undo_import(out, NULL, &made);
        return 1;
    }
    struct sums sum = {0};
    struct id_set ids = {0};
    int taken = 0, skipped = 0, rc = 0;
    for (int i = optind; !rc && i < argc; i++) {
        rc = import_one(kind, argv[i], out, tasks, &ids, &sum);
        taken += rc == 0;
        skipped += rc == 1;
        rc = rc < 0;
    }
    id_set_free(&ids);
    if (!rc && !taken) {
        /* the skipped lines first: stdout is buffered when piped */
        stdout_lost();
        fprintf(stderr, "strobe import: no recording could be imported (each is skipped above with "
                        "its reason), so nothing was written; give recording files of the --from "
                        "format.\n");
        rc = 1;
    }
    if (!rc) rc = write_manifest(out, manifest, &made) ? 1 : 0;
    if (!rc) {
        printf("imported %d trajectories into %s, skipped %d\n", taken, out, skipped);
        print_dist("turns per trajectory:", &sum.turns, "turns");
        print_dist("largest prompt per trajectory:", &sum.prompts, "tokens");
        print_dist("output per turn:", &sum.outputs, "tokens");
        rc = stdout_lost();
    }
    if (rc) undo_import(out, tasks, &made);
    cJSON_Delete(manifest);
    sums_free(&sum);
    return rc ? 1 : 0;
}
