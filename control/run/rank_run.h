/* A run over MPI ranks (mpirun -n N strobe slt|agents), the conversation between rank 0 (the
 * control plane: calibration, the phases or the search, every decision) and the others
 * (each a full dataplane with its share of the load, logging into RUN_DIR/rank-K/):
 *   setup: each rank sends rank 0 its clock discipline; offsets are measured; rank 0 sends
 *          every rank the run header (with the ranks table: hosts, disciplines, offsets);
 *   per phase or iteration: offsets measured again (rank 0 logs them), rank 0 sends each
 *          rank its command (its share, and the phase's times on that rank's own clock), each
 *          rank runs it and reports back; a stop command ends the loop;
 *   end:   each rank closes its log and says so; rank 0 then computes the merged results.
 * Every wait is bounded: a rank that dies is named (rank and host) and the run ends. */
#ifndef STROBE_RANK_RUN_H
#define STROBE_RANK_RUN_H
#include "clock_sync.h"
#include "run_env.h"

#include <cjson/cJSON.h>
#include <stdint.h>

/* How long past a phase's drain rank 0 waits for a rank's report before naming it: every rank
 * ends the phase at the same moment and drains for at most --drain-s. */
#define RANK_SLACK_S 20.0

/* Rank 0's lead between sending a phase's command and its start, so every rank starts it at
 * once. */
#define RANK_LEAD_NS 50000000LL

enum rank_op { RANK_STOP = 0, RANK_PHASE = 1, RANK_MARK = 2, RANK_END = 3 };

/* What a rank runs next; times are on the receiving rank's own clock. */
struct rank_command {
    int32_t op;          /* enum rank_op */
    int32_t index;       /* phase or iteration */
    int32_t concurrency; /* the whole run's (requests in flight, or agents) */
    int32_t share;       /* this rank's part of it */
    int64_t t_start, t_window_start, t_window_end;
    int64_t arg; /* the run kind's own (agents: the iteration's first agent) */
};

/* A rank's account of a phase or iteration it ran. */
struct rank_report {
    int64_t started, events;
    int32_t interrupted, pad;
};

/* How far a rank is in a running agents iteration. */
struct rank_progress {
    int64_t started; /* agents that have sent their first request */
    int64_t done;    /* trajectories completed since the window opened */
    int64_t fewest;  /* by the agent with the fewest (INT64_MAX: none marked yet) */
};

/* Whether this process is one rank of several (mpirun -n N, N > 1). */
int rank_run_active(void);
/* Rank k's part of total: an even split, the remainder to the lowest ranks. */
int rank_share(int total, int k, int n);
/* The run directory rank k writes: out itself for rank 0, else out/rank-K (made). */
int rank_run_dir(const char *out, char *dir, size_t n);

/* Setup, rank 0: takes every rank's clock discipline, measures the offsets, adds the
 * "ranks" table to header, and sends the header to every rank. Others: send theirs and get
 * the header (*header_out, to free; "rank" set to this rank). 0, or 1 after printing why. */
int rank_run_setup(const char *cmd, cJSON *header, char **header_out);
/* rank_run_setup for a run kind's header: own is rank 0's (freed here; NULL on the others);
 * returns the header this rank writes (to free), or NULL with *rc = 1 after printing why.
 * Outside mpirun, own itself. */
char *rank_run_header(const char *cmd, char *own, int *rc);
/* Rank 0, after the last phase or iteration: the last offsets, then stop to every rank.
 * Nothing outside mpirun, or on the others. 0, or 1 after printing why. */
int rank_run_stop(struct run_env *e);
/* Every rank, before each phase or iteration (and once after the last): the offsets again;
 * rank 0 logs them into e's log, tagged with the phase that follows (-1 after the last).
 * 0, or 1 after printing which rank failed. */
int rank_run_sync(struct run_env *e, int next_phase);
/* Rank 0: sends each rank its command (cmd's times are rank 0's; each rank gets them on its
 * own clock, and its share of cmd->concurrency). Others: receive theirs, waiting at most
 * wait_s. 0, or 1 after printing why. */
int rank_run_command(struct rank_command *cmd, double wait_s);
/* Others: report r. Rank 0: collects every rank's report, waiting at most wait_s, into
 * all[k] (all may be NULL). 0, or 1 after printing which rank did not report. */
int rank_run_report(const struct rank_report *r, struct rank_report *all, double wait_s);
/* During an iteration. Others: send their progress. Rank 0: take every rank's latest into
 * all[k] (left as it was for a rank that sent nothing new). 0, or 1 after printing why. */
int rank_run_progress(const struct rank_progress *mine, struct rank_progress *all);
/* Rank 0: tells every rank the iteration reached `op` (RANK_MARK: its window opens now;
 * RANK_END: it ends now). Others: *op is the signal waiting (0 none). 0, or 1 after printing
 * why. */
int rank_run_signal(int *op);
/* End of the run: others say their log is closed; rank 0 waits for all of them (wait_s).
 * 0, or 1 after printing which rank did not finish. */
int rank_run_done(double wait_s);

#endif
