/* The MPI seam: which rank this process is, how many there are, each one's host, and the
 * few messages the control plane exchanges (point to point from or to rank 0, every wait
 * bounded by a timeout so that a dead rank is named instead of hanging the run).
 * MPI is initialised only when strobe was built with it (meson feature `mpi`) AND started by
 * Open MPI's mpirun (OMPI_COMM_WORLD_SIZE in the environment); otherwise, and always in a
 * plain run, this is one rank of one, every call a no-op, and MPI is never initialised. */
#ifndef STROBE_RANKS_H
#define STROBE_RANKS_H
#include <stddef.h>

#define RANKS_HOST_MAX 256

/* Before anything else in main. Returns 0, or 1 after printing why MPI could not start. */
int ranks_init(int *argc, char ***argv);
/* At the end of main (every rank; waits for none). */
void ranks_finalize(void);
int ranks_rank(void);
int ranks_size(void);
/* This rank's host name, or rank k's (known to every rank after ranks_init). */
const char *ranks_host(int k);

/* Message tags: one per kind of exchange, so that a late message is never taken for another. */
enum rank_tag {
    RTAG_HEADER = 1, /* rank 0 -> k: the run header (length, then the text) */
    RTAG_COMMAND,    /* rank 0 -> k: the next phase or iteration, or stop */
    RTAG_REPORT,     /* k -> rank 0: done with it, and its load */
    RTAG_PING,       /* the clock ping-pong */
    RTAG_PONG,
    RTAG_INFO,     /* k -> rank 0: its clock discipline, once */
    RTAG_FILE,     /* k -> rank 0: bytes of its event log, when rank 0 cannot see them */
    RTAG_DONE,     /* k -> rank 0: its log is closed */
    RTAG_PROGRESS, /* k -> rank 0: how far it is in the running iteration */
    RTAG_SIGNAL,   /* rank 0 -> k: a moment of the running iteration (window opens, ends) */
};

/* Sends len bytes to rank `to`. 0, or -1 with err naming the rank and its host. */
int ranks_send(int to, enum rank_tag tag, const void *buf, size_t len, char *err, size_t errlen);
/* Receives a message of at most len bytes from rank `from`, waiting at most timeout_s. 0, or
 * -1 with err naming the rank and host on timeout or an MPI error. */
int ranks_recv(int from, enum rank_tag tag, void *buf, size_t len, double timeout_s, char *err,
               size_t errlen);
/* A message of unknown length (up to max) from rank `from`; its length in *len. */
int ranks_recv_any_len(int from, enum rank_tag tag, void *buf, size_t max, size_t *len,
                       double timeout_s, char *err, size_t errlen);
/* Takes one waiting message from rank `from` without blocking: 1 taken (len bytes into
 * buf), 0 none waiting, -1 with err on an MPI error. */
int ranks_poll(int from, enum rank_tag tag, void *buf, size_t len, char *err, size_t errlen);
/* Ends every rank at once (a rank that cannot go on and cannot tell rank 0). */
void ranks_abort(int status);

#endif
