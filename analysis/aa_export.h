/* The files AA's single-user tool (agentperf-local) writes for a replay, from strobe's turns
 * (aa_turns.h): turns.jsonl (one record per turn, keys sorted), tasks.json (totals per task),
 * tools.json (strobe replays no tool calls: zero calls), failures.json, strobe_export.json
 * (strobe's own: the source run, which request each turn was, validity by methodology.md §8,
 * what strobe cannot produce), and summary.json last, as the completion marker (written to a
 * hidden name and renamed). Units and names are AA's: milliseconds, tokens, tokens/s.
 * OUT_DIR must not exist (a symbolic link counts as existing): nothing is ever overwritten;
 * each file is created exclusively, without following links, and synced. */
#ifndef STROBE_AA_EXPORT_H
#define STROBE_AA_EXPORT_H
#include "aa_turns.h"
#include <stddef.h>

struct aa_export_source {
    const char *run_dir;
    const char *header_json; /* the run's log header */
    const char *manifest;    /* the replay's manifest.json */
};

/* 0 when out_dir does not exist (nor a link by that name), else -1 with why in err; the
 * writer checks again, so this only lets a caller refuse before any work. */
int aa_export_out_free(const char *out_dir, char *err, size_t errlen);
/* The export's validity: an iteration the run's stop (an interruption, a kill) did not cut
 * short (agent_iteration_cut_short), and methodology.md §8's rules over the turns. The first
 * rule broken, in why, or NULL. */
const char *aa_export_validity(const struct aa_turns *t, char *why, size_t len);
/* Writes the files; 0, or -1 with one sentence in err (what is wrong, what to do) and
 * OUT_DIR removed with whatever of it was written. */
int aa_export_write(const char *out_dir, const struct aa_turns *t,
                    const struct aa_export_source *src, char *err, size_t errlen);

#endif
