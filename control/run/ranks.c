#include "ranks.h"

#include "clock.h"
#include "must_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef STROBE_HAVE_MPI
#include <mpi.h>
#endif

static int my_rank, nranks = 1;
static char (*hosts)[RANKS_HOST_MAX];
static char own_host[RANKS_HOST_MAX];

int ranks_rank(void) { return my_rank; }
int ranks_size(void) { return nranks; }
const char *ranks_host(int k) { return hosts && k >= 0 && k < nranks ? hosts[k] : own_host; }

#ifndef STROBE_HAVE_MPI

int ranks_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    gethostname(own_host, sizeof own_host - 1);
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (n && atoi(n) > 1) {
        fprintf(stderr,
                "strobe: started by mpirun with %s ranks, but this strobe was built "
                "without MPI; install libopenmpi-dev and rebuild (meson feature mpi).\n",
                n);
        return 1;
    }
    return 0;
}
void ranks_finalize(void) {}
int ranks_send(int to, enum rank_tag tag, const void *buf, size_t len, char *err, size_t errlen)
{
    (void)to, (void)tag, (void)buf, (void)len;
    snprintf(err, errlen, "this strobe was built without MPI");
    return -1;
}
int ranks_recv(int from, enum rank_tag tag, void *buf, size_t len, double timeout_s, char *err,
               size_t errlen)
{
    (void)from, (void)tag, (void)buf, (void)len, (void)timeout_s;
    snprintf(err, errlen, "this strobe was built without MPI");
    return -1;
}
int ranks_recv_any_len(int from, enum rank_tag tag, void *buf, size_t max, size_t *len,
                       double timeout_s, char *err, size_t errlen)
{
    (void)from, (void)tag, (void)buf, (void)max, (void)len, (void)timeout_s;
    snprintf(err, errlen, "this strobe was built without MPI");
    return -1;
}
int ranks_poll(int from, enum rank_tag tag, void *buf, size_t len, char *err, size_t errlen)
{
    (void)from, (void)tag, (void)buf, (void)len;
    snprintf(err, errlen, "this strobe was built without MPI");
    return -1;
}
void ranks_abort(int status) { exit(status); }

#else

static int mpi_on;

int ranks_init(int *argc, char ***argv)
{
    gethostname(own_host, sizeof own_host - 1);
    /* a plain run never initialises MPI: only mpirun sets this */
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (!n || atoi(n) < 2) return 0;
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "strobe: MPI_Init failed under mpirun; check the Open MPI "
                        "installation on every host.\n");
        return 1;
    }
    mpi_on = 1;
    /* a dead peer must give an error strobe can name, not end every rank */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    hosts = must_calloc((size_t)nranks, sizeof *hosts, "the ranks' hosts");
    MPI_Allgather(own_host, RANKS_HOST_MAX, MPI_CHAR, hosts, RANKS_HOST_MAX, MPI_CHAR,
                  MPI_COMM_WORLD);
    return 0;
}

void ranks_finalize(void)
{
    if (mpi_on) MPI_Finalize();
    mpi_on = 0;
}

static void name_peer(int k, const char *what, int mpi_rc, char *err, size_t errlen)
{
    char mpi_msg[MPI_MAX_ERROR_STRING] = "";
    int n = 0;
    if (mpi_rc != MPI_SUCCESS) MPI_Error_string(mpi_rc, mpi_msg, &n);
    snprintf(err, errlen, "rank %d on host %s %s%s%s", k, ranks_host(k), what,
             mpi_msg[0] ? ": " : "", mpi_msg);
}

int ranks_send(int to, enum rank_tag tag, const void *buf, size_t len, char *err, size_t errlen)
{
    int rc = MPI_Send(buf, (int)len, MPI_BYTE, to, tag, MPI_COMM_WORLD);
    if (rc == MPI_SUCCESS) return 0;
    name_peer(to, "could not be sent to (it died or its host is unreachable)", rc, err, errlen);
    return -1;
}

/* Receives up to max bytes from rank `from` (their count in *len), polling until the message
 * is complete or the time is up. */
static int recv_bytes(int from, enum rank_tag tag, void *buf, size_t max, size_t *len,
                      double timeout_s, char *err, size_t errlen)
{
    MPI_Request req;
    MPI_Status st;
    int rc = MPI_Irecv(buf, (int)max, MPI_BYTE, from, tag, MPI_COMM_WORLD, &req);
    int64_t deadline = clock_now_ns() + (int64_t)(timeout_s * 1e9);
    struct timespec nap = {0, 200000};
    for (int done = 0; rc == MPI_SUCCESS && !done;) {
        rc = MPI_Test(&req, &done, &st);
        if (rc != MPI_SUCCESS || done) break;
        if (clock_now_ns() > deadline) {
            MPI_Cancel(&req);
            MPI_Request_free(&req);
            char what[120];
            snprintf(what, sizeof what,
                     "did not answer within %.0f s (it died, hangs, or its host is unreachable)",
                     timeout_s);
            name_peer(from, what, MPI_SUCCESS, err, errlen);
            return -1;
        }
        nanosleep(&nap, NULL);
    }
    if (rc != MPI_SUCCESS) {
        name_peer(from, "failed", rc, err, errlen);
        return -1;
    }
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    *len = (size_t)count;
    return 0;
}

int ranks_recv(int from, enum rank_tag tag, void *buf, size_t len, double timeout_s, char *err,
               size_t errlen)
{
    size_t got;
    return recv_bytes(from, tag, buf, len, &got, timeout_s, err, errlen);
}

int ranks_recv_any_len(int from, enum rank_tag tag, void *buf, size_t max, size_t *len,
                       double timeout_s, char *err, size_t errlen)
{
    return recv_bytes(from, tag, buf, max, len, timeout_s, err, errlen);
}

int ranks_poll(int from, enum rank_tag tag, void *buf, size_t len, char *err, size_t errlen)
{
    int waiting = 0;
    MPI_Status st;
    int rc = MPI_Iprobe(from, tag, MPI_COMM_WORLD, &waiting, &st);
    if (rc == MPI_SUCCESS && waiting)
        rc = MPI_Recv(buf, (int)len, MPI_BYTE, from, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (rc == MPI_SUCCESS) return waiting;
    name_peer(from, "failed", rc, err, errlen);
    return -1;
}

void ranks_abort(int status)
{
    if (mpi_on) MPI_Abort(MPI_COMM_WORLD, status);
    exit(status);
}

#endif
