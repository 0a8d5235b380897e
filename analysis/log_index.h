/* Where a log's records about the run lie (phases, power, trajectories, marks) and where each
 * phase's requests begin (its first REC_REQUEST_SENT: a request's other records follow its
 * start), found once per log in this process and extended as the log grows. Analysing one
 * phase of a long log (`strobe agents` does after every iteration) then reads the run's few
 * records and that phase's part of the log, not every record header before it: a search's
 * analysis stays linear in its length. Kept for the last log asked about; analysis threads
 * never call it (facts_load does, before they start). */
#ifndef STROBE_LOG_INDEX_H
#define STROBE_LOG_INDEX_H
#include "eventlog.h"

#include <stddef.h>

/* lr is dir's open log. Gives a copy of the run records' positions (*run, to free) and the
 * first record of phase's requests (lr->nrecords when it has none); 0, or -1 out of memory. */
int log_index_phase(const char *dir, const struct eventlog_reader *lr, int phase, size_t **run,
                    size_t *nrun, size_t *first);

#endif
