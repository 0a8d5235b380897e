/* `strobe export-aa RUN_DIR OUT_DIR`: a `strobe agents` run's first iteration at one agent,
 * written as the files AA's single-user tool (agentperf-local) writes for a replay, so a
 * user can put strobe's and AA's figures side by side (analysis/aa_turns.h says how each
 * figure is computed, analysis/aa_export.h what each file holds). The replay the run used
 * names the turns (its manifest and traces: task_id, turn_id, conversation_idx). */
#include "commands.h"
#include "flag_once.h"

#include "aa_export.h"
#include "read_file.h"
#include "replay.h"
#include "results.h"
#include "must_alloc.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The turn names of each replay task, read from its trace (replay.h keeps only indices). */
struct names {
    const struct replay *rp;
    int exact;
    /* turns the run logged past the end of their task in this replay: then it is not the
     * replay the run used (the first such, for the message) */
    size_t beyond;
    int beyond_task, beyond_turn;
    char ***turn_id; /* [task][turn], NULL when the trace had none */
    int **conv_idx;
    size_t *nlines;
};

static void read_trace_names(struct names *nm, size_t task, const char *trace)
{
    char *text = read_file(trace, NULL);
    if (!text) return;
    size_t cap = 16, n = 0;
    nm->turn_id[task] = must_calloc(cap, sizeof(char *), "the turns' names");
    nm->conv_idx[task] = must_calloc(cap, sizeof(int), "the turns' names");
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        if (!o) continue; /* blank or broken lines: the loader refused those already */
        if (n == cap) {
            cap *= 2;
            nm->turn_id[task] =
                must_realloc(nm->turn_id[task], cap * sizeof(char *), "the turns' names");
            nm->conv_idx[task] =
                must_realloc(nm->conv_idx[task], cap * sizeof(int), "the turns' names");
        }
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "turn_id");
        const cJSON *ci = cJSON_GetObjectItemCaseSensitive(o, "conversation_idx");
        nm->turn_id[task][n] =
            cJSON_IsString(id) ? must_strdup(id->valuestring, "the turns' names") : NULL;
        nm->conv_idx[task][n] = cJSON_IsNumber(ci) ? ci->valueint : (int)n;
        n++;
        cJSON_Delete(o);
    }
    nm->nlines[task] = n;
    free(text);
}

static void names_load(struct names *nm, const char *dir)
{
    size_t nt = nm->rp->ntasks ? nm->rp->ntasks : 1;
    nm->turn_id = must_calloc(nt, sizeof *nm->turn_id, "the turns' names");
    nm->conv_idx = must_calloc(nt, sizeof *nm->conv_idx, "the turns' names");
    nm->nlines = must_calloc(nt, sizeof *nm->nlines, "the turns' names");
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    char *text = read_file(path, NULL);
    cJSON *m = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(m, "tasks"), *t;
    cJSON_ArrayForEach (t, tasks) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(t, "task_id");
        const cJSON *trace = cJSON_GetObjectItemCaseSensitive(t, "trace");
        if (!cJSON_IsString(id) || !cJSON_IsString(trace)) continue;
        for (size_t i = 0; i < nm->rp->ntasks; i++)
            if (!strcmp(nm->rp->tasks[i].task_id, id->valuestring) && !nm->turn_id[i]) {
                snprintf(path, sizeof path, "%s/%s", dir, trace->valuestring);
                read_trace_names(nm, i, path);
            }
    }
    cJSON_Delete(m);
}

static void names_free(struct names *nm)
{
    for (size_t i = 0; i < nm->rp->ntasks; i++) {
        for (size_t k = 0; nm->turn_id[i] && k < nm->nlines[i]; k++) free(nm->turn_id[i][k]);
        free(nm->turn_id[i]);
        free(nm->conv_idx[i]);
    }
    free(nm->turn_id);
    free(nm->conv_idx);
    free(nm->nlines);
}

static void plan(void *arg, int task, int turn, struct aa_turn_plan *p)
{
    struct names *nm = arg;
    memset(p, 0, sizeof *p);
    p->target_output_tokens = -1;
    p->requested_max_output_tokens = 16384; /* agent_source.c's natural-policy cap */
    if (task < 0 || (size_t)task >= nm->rp->ntasks) {
        p->task_id = "unknown";
        snprintf(p->turn_id, sizeof p->turn_id, "task%d:%04d", task, turn);
        p->conversation_idx = turn;
        return;
    }
    const struct replay_task *t = &nm->rp->tasks[task];
    p->task_id = t->task_id;
    p->task_turns = (int)t->nturns;
    int named = nm->turn_id[task] && (size_t)turn < nm->nlines[task] && nm->turn_id[task][turn];
    if (named)
        snprintf(p->turn_id, sizeof p->turn_id, "%s", nm->turn_id[task][turn]);
    else
        snprintf(p->turn_id, sizeof p->turn_id, "%s:%04d", t->task_id, turn);
    p->conversation_idx = named ? nm->conv_idx[task][turn] : turn;
    if (turn < 0 || (size_t)turn >= t->nturns) {
        if (!nm->beyond++) nm->beyond_task = task, nm->beyond_turn = turn;
        return;
    }
    const struct replay_turn *r = &t->turns[turn];
    p->target_output_tokens = r->target_output_tokens;
    /* as agent_source.c asks: a turn recorded with 0 tokens asks for 1 */
    if (nm->exact && r->target_output_tokens >= 0)
        p->requested_max_output_tokens = r->target_output_tokens > 0 ? r->target_output_tokens : 1;
    p->recorded_tool_delay_ms = r->tool_delay_ms > 0 ? r->tool_delay_ms : 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: strobe export-aa RUN_DIR OUT_DIR [--trajectories REPLAY_DIR]\n\n"
            "Writes the first iteration at one agent of a `strobe agents` run (RUN_DIR) as the\n"
            "files AA's single-user tool agentperf-local writes: turns.jsonl, tasks.json,\n"
            "tools.json, failures.json, strobe_export.json, and summary.json last. OUT_DIR must\n"
            "not exist. The turns are named from the replay the run used (its header's\n"
            "--trajectories directory, or REPLAY_DIR when it has moved).\n"
            "A single-user replay: strobe agents ... --max-agents 1 (one iteration, one agent).\n\n"
            "Exit status: 0 exported and valid; 4 exported but not valid (a failed turn, a\n"
            "short-output warning, a stop during the iteration: strobe_export.json says which);\n"
            "1 the files could not be written; 2 a bad command line or a run that cannot be\n"
            "exported.\n");
}

int cmd_export_aa(int argc, char **argv)
{
    const char *run_dir = NULL, *out_dir = NULL, *traj = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--trajectories") && i + 1 < argc) {
            if (traj) return flag_given_twice("export-aa", "trajectories", traj, argv[i + 1]);
            traj = argv[++i];
        } else if (argv[i][0] != '-' && !run_dir) {
            run_dir = argv[i];
        } else if (argv[i][0] != '-' && !out_dir) {
            out_dir = argv[i];
        } else {
            fprintf(stderr,
                    "strobe export-aa: unexpected argument '%s'; give RUN_DIR OUT_DIR "
                    "[--trajectories REPLAY_DIR] (see strobe export-aa --help).\n",
                    argv[i]);
            return 2;
        }
    }
    if (!run_dir || !out_dir) {
        fprintf(stderr, "strobe export-aa: give RUN_DIR and OUT_DIR (see strobe export-aa "
                        "--help).\n");
        return 2;
    }
    char err[1024];
    if (aa_export_out_free(out_dir, err, sizeof err)) {
        fprintf(stderr, "strobe export-aa: %s.\n", err);
        return 2;
    }
    struct run_results res;
    if (results_compute_threads(run_dir, NULL, 0, &res, err, sizeof err)) {
        fprintf(stderr, "strobe export-aa: %s.\n", err);
        return 1;
    }
    int rc = 2;
    cJSON *h = cJSON_Parse(res.facts.header_json);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(h, "kind");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(h, "config");
    const cJSON *hdir = cJSON_GetObjectItemCaseSensitive(cfg, "trajectories");
    const cJSON *policy = cJSON_GetObjectItemCaseSensitive(cfg, "output_policy");
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(cfg, "max_context_tokens");
    const cJSON *loaded = cJSON_GetObjectItemCaseSensitive(cfg, "trajectories_loaded");
    struct replay rp = {0};
    struct aa_turns turns = {0};
    if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "agents")) {
        fprintf(stderr,
                "strobe export-aa: %s is a%s %s run, not a `strobe agents` run: AA's tool "
                "replays agent trajectories, so only an agents run can be exported.\n",
                run_dir, cJSON_IsString(kind) && strchr("aeiou", kind->valuestring[0]) ? "n" : "",
                cJSON_IsString(kind) ? kind->valuestring : "unknown");
        goto out;
    }
    int traj_given = traj != NULL;
    if (!traj) traj = cJSON_IsString(hdir) ? hdir->valuestring : "";
    if (replay_load(traj, &rp, err, sizeof err)) {
        fprintf(stderr,
                "strobe export-aa: the run's replay cannot be read (%s); give it with "
                "--trajectories REPLAY_DIR.\n",
                err);
        goto out;
    }
    /* a run made before trajectories over the limit were left out kept their first turn; its
     * header does not count them */
    int keep_first = !cJSON_GetObjectItemCaseSensitive(cfg, "trajectories_over_max_context");
    replay_truncate(&rp, cJSON_IsNumber(ctx) ? (long)ctx->valuedouble : 0, keep_first);
    if (cJSON_IsNumber(loaded) && (size_t)loaded->valuedouble != rp.ntasks) {
        fprintf(stderr,
                "strobe export-aa: %s holds %zu usable trajectories but the run loaded %.0f: "
                "it is not the replay the run used; give that one with --trajectories.\n",
                traj, rp.ntasks, loaded->valuedouble);
        goto out;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(cfg, "replay_name");
    if (!traj_given && cJSON_IsString(name) && strcmp(name->valuestring, rp.name)) {
        fprintf(stderr,
                "strobe export-aa: the replay at %s is now named '%s' but the run used '%s': it "
                "has changed since the run; give the run's replay with --trajectories.\n",
                traj, rp.name, name->valuestring);
        goto out;
    }
    int exact = cJSON_IsString(policy) && !strcmp(policy->valuestring, "exact");
    struct names nm = {.rp = &rp, .exact = exact};
    names_load(&nm, traj);
    if (aa_turns_collect(run_dir, &res.facts, exact, plan, &nm, &turns, err, sizeof err)) {
        fprintf(stderr, "strobe export-aa: %s.\n", err);
        names_free(&nm);
        goto out;
    }
    if (nm.beyond) {
        fprintf(stderr,
                "strobe export-aa: the run played turn %d of trajectory %d, which %s does not "
                "have (%zu such turns): it is not the replay the run used; give that one with "
                "--trajectories.\n",
                nm.beyond_turn, nm.beyond_task, traj, nm.beyond);
        names_free(&nm);
        goto out;
    }
    char manifest[4096];
    snprintf(manifest, sizeof manifest, "%s/manifest.json", traj);
    struct aa_export_source src = {run_dir, res.facts.header_json, manifest};
    if (aa_export_write(out_dir, &turns, &src, err, sizeof err)) {
        fprintf(stderr, "strobe export-aa: %s.\n", err);
        rc = 1;
    } else {
        size_t ok = 0, cut = 0;
        for (size_t i = 0; i < turns.n; i++) {
            ok += turns.t[i].success;
            cut += aa_turn_starts_cut_task(&turns, i);
        }
        /* n/a where no successful turn gave a speed */
        char pooled[32] = "n/a", e2e[32] = "n/a";
        double v = aa_pooled_decode_tokens_per_s(&turns);
        if (!isnan(v)) snprintf(pooled, sizeof pooled, "%.2f", v);
        v = aa_end_to_end_tokens_per_s(&turns);
        if (!isnan(v)) snprintf(e2e, sizeof e2e, "%.2f", v);
        printf("exported iteration %d (1 agent): %zu turns (%zu failed), %zu repeated-task "
               "turns left out, %zu task%s cut short by the iteration's end; decode %s "
               "tokens/s pooled, end-to-end %s tokens/s\n"
               "files: %s/{turns.jsonl,tasks.json,tools.json,failures.json,strobe_export.json,"
               "summary.json}\n",
               turns.phase->index, turns.n, turns.n - ok, turns.repeats_left_out, cut,
               cut == 1 ? "" : "s", pooled, e2e, out_dir);
        char why[400];
        const char *bad = aa_export_validity(&turns, why, sizeof why);
        /* the files are written either way (they say why); the status says the verdict, as
         * strobe agents' does */
        if (bad)
            fprintf(stderr,
                    "strobe export-aa: the export is not valid (methodology.md section 8): "
                    "%s; strobe_export.json says so.\n",
                    bad);
        else if (cut)
            fprintf(stderr,
                    "strobe export-aa: %zu task%s cut short by the iteration's end, so "
                    "summary.json's success is false, as AA's tool would say; run a longer "
                    "--window-s to replay every task whole.\n",
                    cut, cut == 1 ? " was" : "s were");
        rc = fflush(stdout) || ferror(stdout) ? 1 : bad ? 4 : 0;
        if (rc == 1) fprintf(stderr, "strobe export-aa: writing to stdout failed.\n");
    }
    names_free(&nm);
out:
    aa_turns_free(&turns);
    replay_free(&rp);
    cJSON_Delete(h);
    results_free(&res);
    return rc;
}
