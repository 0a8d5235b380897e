/* An MPI run's directory (mpirun -n N strobe slt|agents): rank 0's log in RUN_DIR, rank k's
 * in RUN_DIR/rank-K (the header's "ranks" table names each rank's folder and host). Merges
 * every other rank's requests into rank 0's facts on rank 0's timeline: each of rank k's
 * stamps minus rank k's clock offset at that moment, interpolated between the measurements
 * rank 0 logged before and after each phase (REC_CLOCK_OFFSET; the nearer one outside
 * them). Phases, marks and power stay rank 0's. Afterwards the facts hold the union of every
 * rank's requests, each rank's load per phase (run_facts.ranks) and the largest offset
 * uncertainty (run_facts.offset_uncertainty_ns). */
#ifndef STROBE_RANKS_MERGE_H
#define STROBE_RANKS_MERGE_H
#include "facts.h"

/* f: rank 0's facts, loaded from dir as facts_load does (same tokenizer, threads and
 * only_phase). Nothing to do (0) for a run of one process, or for rank k's own folder
 * (RUN_DIR/rank-K analysed alone). 0, or -1 with err set. */
int ranks_merge(const char *dir, struct tokenizer *tok, const char *tokenizer_path,
                unsigned threads, int only_phase, struct run_facts *f, char *err, size_t errlen);

#endif
