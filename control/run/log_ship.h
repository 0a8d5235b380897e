/* A rank's event log reaching rank 0 when their hosts do not share the run directory: after
 * every phase or iteration, and once its log is closed, rank k says how long its events.bin
 * and bodies.bin are; rank 0 answers how much of each it already sees in RUN_DIR/rank-K (all
 * of it on a shared or the same file system: nothing moves; less on its own disk, or none
 * when what it sees belongs to another run), and rank k sends the rest in chunks. The files
 * are append-only, so what rank 0 holds is always a prefix that strobe analyze reads. */
#ifndef STROBE_LOG_SHIP_H
#define STROBE_LOG_SHIP_H
#include <stddef.h>

/* Rank k: its log in dir (synced or closed). 0, or -1 with err set. */
int log_ship_send(const char *dir, char *err, size_t errlen);
/* Rank 0: rank k's log into out/rank-K; run_id is this run's (its header's ranks.run_id).
 * 0, or -1 with err set. */
int log_ship_take(const char *out, int k, const char *run_id, double wait_s, char *err,
                  size_t errlen);

#endif
