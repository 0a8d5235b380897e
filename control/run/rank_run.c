#include "rank_run.h"

#include "log_ship.h"
#include "ranks.h"
#include "must_alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DISCIPLINE_MAX 1024
#define HEADER_MAX     (4u << 20)
#define SETUP_WAIT_S   120.0

static const char *cmd_name = "run";
/* the run directory (rank 0's), this rank's own, and the run's id (rank 0 checks that what it
 * sees of a rank's log belongs to this run) */
static char run_out[4096], run_dir[4200], run_id[64];
/* rank 0: each rank's latest offset, to put phase times on its clock */
static struct clock_offset *latest;

int rank_run_active(void) { return ranks_size() > 1; }

int rank_share(int total, int k, int n) { return total / n + (k < total % n); }

int rank_run_dir(const char *out, char *dir, size_t n)
{
    int k = ranks_rank();
    snprintf(run_out, sizeof run_out, "%s", out);
    if (!k) {
        snprintf(dir, n, "%s", out);
        snprintf(run_dir, sizeof run_dir, "%s", out);
        return 0;
    }
    if (mkdir(out, 0755) && errno != EEXIST) {
        fprintf(stderr, "strobe %s: rank %d cannot create %s: %s.\n", cmd_name, k, out,
                strerror(errno));
        return 1;
    }
    snprintf(dir, n, "%s/rank-%d", out, k);
    snprintf(run_dir, sizeof run_dir, "%s", dir);
    return 0;
}

static int fail(const char *err)
{
    int me = ranks_rank();
    char who[RANKS_HOST_MAX + 40] = "";
    if (me) snprintf(who, sizeof who, "rank %d (host %s): ", me, ranks_host(me));
    fprintf(stderr,
            "strobe %s: %s%s; the run ends, and what every rank flushed stays readable with "
            "strobe analyze.\n",
            cmd_name, who, err);
    return 1;
}

static cJSON *ranks_table(char (*disc)[DISCIPLINE_MAX])
{
    int n = ranks_size();
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "size", n);
    snprintf(run_id, sizeof run_id, "%llx-%x", (unsigned long long)clock_now_ns(),
             (unsigned)getpid());
    cJSON_AddStringToObject(r, "run_id", run_id);
    cJSON_AddStringToObject(r, "log_transfer",
                            "after every phase or iteration and at the end, each rank's "
                            "events.bin and bodies.bin bytes that rank 0 cannot see in "
                            "RUN_DIR/rank-K are sent to it over MPI");
    cJSON_AddStringToObject(r, "share_rule",
                            "each phase's concurrency (or agents) split evenly over the ranks, "
                            "the remainder to the lowest ranks");
    cJSON_AddStringToObject(r, "offset_method",
                            "MPI ping-pong with rank 0, " /* the count follows */
                            "min-RTT exchange of " CLOCK_SYNC_EXCHANGES_TEXT
                            ": offset = ((t1-t0)+(t2-t3))/2, uncertainty = RTT/2; measured "
                            "before and after every phase (REC_CLOCK_OFFSET records)");
    cJSON *list = cJSON_AddArrayToObject(r, "ranks");
    for (int k = 0; k < n; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "rank", k);
        cJSON_AddStringToObject(o, "host", ranks_host(k));
        cJSON_AddStringToObject(o, "dir", k ? "" : ".");
        if (k) {
            char d[32];
            snprintf(d, sizeof d, "rank-%d", k);
            cJSON_ReplaceItemInObject(o, "dir", cJSON_CreateString(d));
        }
        cJSON_AddNumberToObject(o, "offset_ns", (double)latest[k].offset_ns);
        cJSON_AddNumberToObject(o, "offset_uncertainty_ns", (double)latest[k].uncertainty_ns);
        cJSON_AddStringToObject(o, "clock_discipline", disc[k]);
        cJSON_AddItemToArray(list, o);
    }
    return r;
}

int rank_run_setup(const char *cmd, cJSON *header, char **header_out)
{
    cmd_name = cmd;
    char err[512];
    int n = ranks_size(), me = ranks_rank();
    char(*disc)[DISCIPLINE_MAX] = must_calloc((size_t)n, sizeof *disc, "the ranks' clocks");
    clock_discipline_read(disc[me], DISCIPLINE_MAX);
    if (me) {
        if (ranks_send(0, RTAG_INFO, disc[me], DISCIPLINE_MAX, err, sizeof err) ||
            clock_sync_measure(NULL, SETUP_WAIT_S, err, sizeof err)) {
            free(disc);
            return fail(err);
        }
        free(disc);
        char *buf = must_malloc(HEADER_MAX, "the run's header");
        size_t len = 0;
        if (ranks_recv_any_len(0, RTAG_HEADER, buf, HEADER_MAX - 1, &len, SETUP_WAIT_S, err,
                               sizeof err)) {
            free(buf);
            return fail(err);
        }
        buf[len] = 0;
        cJSON *h = cJSON_Parse(buf);
        free(buf);
        if (!h) return fail("the run's header from rank 0 is not JSON (a damaged message?)");
        cJSON_AddNumberToObject(h, "rank", me);
        *header_out = must_have(cJSON_PrintUnformatted(h), "the run's header");
        cJSON_Delete(h);
        return 0;
    }
    latest = must_calloc((size_t)n, sizeof *latest, "the ranks' progress");
    for (int k = 1; k < n; k++)
        if (ranks_recv(k, RTAG_INFO, disc[k], DISCIPLINE_MAX, SETUP_WAIT_S, err, sizeof err)) {
            free(disc);
            return fail(err);
        }
    if (clock_sync_measure(latest, SETUP_WAIT_S, err, sizeof err)) {
        free(disc);
        return fail(err);
    }
    cJSON_AddItemToObject(header, "ranks", ranks_table(disc));
    free(disc);
    char *text = must_have(cJSON_PrintUnformatted(header), "the run's header");
    for (int k = 1; k < n; k++)
        if (ranks_send(k, RTAG_HEADER, text, strlen(text), err, sizeof err)) {
            free(text);
            return fail(err);
        }
    cJSON_AddNumberToObject(header, "rank", 0);
    *header_out = must_have(cJSON_PrintUnformatted(header), "the run's header");
    free(text);
    return 0;
}

char *rank_run_header(const char *cmd, char *own, int *rc)
{
    if (!rank_run_active()) return own;
    cJSON *h = ranks_rank() ? NULL : cJSON_Parse(own);
    free(own);
    char *out = NULL;
    *rc = rank_run_setup(cmd, h, &out);
    cJSON_Delete(h);
    return out;
}

int rank_run_stop(struct run_env *e)
{
    if (!rank_run_active() || ranks_rank()) return 0;
    struct rank_command stop = {.op = RANK_STOP};
    return rank_run_sync(e, -1) || rank_run_command(&stop, 0);
}

int rank_run_sync(struct run_env *e, int next_phase)
{
    char err[512];
    if (clock_sync_measure(latest, SETUP_WAIT_S, err, sizeof err)) return fail(err);
    if (ranks_rank()) return 0;
    for (int k = 1; k < ranks_size(); k++) {
        struct log_record r = rec_clock_offset_encode(
            &(struct rec_clock_offset){.rank = k,
                                       .phase = next_phase,
                                       .t_ref = latest[k].t_ref,
                                       .offset_ns = latest[k].offset_ns,
                                       .uncertainty_ns = latest[k].uncertainty_ns});
        eventlog_put(e->log, e->threads, &r, NULL, 0);
    }
    return 0;
}

int rank_run_command(struct rank_command *cmd, double wait_s)
{
    char err[512];
    int n = ranks_size();
    if (ranks_rank()) {
        if (ranks_recv(0, RTAG_COMMAND, cmd, sizeof *cmd, wait_s, err, sizeof err))
            return fail(err);
        return 0;
    }
    for (int k = 1; k < n; k++) {
        struct rank_command c = *cmd;
        int64_t off = latest[k].offset_ns;
        c.share = rank_share(cmd->concurrency, k, n);
        if (c.op == RANK_PHASE) {
            c.t_start += off;
            c.t_window_start += off;
            c.t_window_end += off;
        }
        if (ranks_send(k, RTAG_COMMAND, &c, sizeof c, err, sizeof err)) return fail(err);
    }
    cmd->share = rank_share(cmd->concurrency, 0, n);
    return 0;
}

int rank_run_report(const struct rank_report *r, struct rank_report *all, double wait_s)
{
    char err[512];
    if (ranks_rank()) {
        if (ranks_send(0, RTAG_REPORT, r, sizeof *r, err, sizeof err) ||
            log_ship_send(run_dir, err, sizeof err))
            return fail(err);
        return 0;
    }
    for (int k = 1; k < ranks_size(); k++) {
        struct rank_report got;
        if (ranks_recv(k, RTAG_REPORT, &got, sizeof got, wait_s, err, sizeof err) ||
            log_ship_take(run_out, k, run_id, wait_s, err, sizeof err))
            return fail(err);
        if (all) all[k] = got;
    }
    if (all) all[0] = *r;
    return 0;
}

int rank_run_progress(const struct rank_progress *mine, struct rank_progress *all)
{
    char err[512];
    if (ranks_rank())
        return ranks_send(0, RTAG_PROGRESS, mine, sizeof *mine, err, sizeof err) ? fail(err) : 0;
    all[0] = *mine;
    for (int k = 1; k < ranks_size(); k++) {
        struct rank_progress p;
        int got;
        while ((got = ranks_poll(k, RTAG_PROGRESS, &p, sizeof p, err, sizeof err)) == 1) all[k] = p;
        if (got < 0) return fail(err);
    }
    return 0;
}

int rank_run_signal(int *op)
{
    char err[512];
    int32_t v = *op;
    if (ranks_rank()) {
        int got = ranks_poll(0, RTAG_SIGNAL, &v, sizeof v, err, sizeof err);
        if (got < 0) return fail(err);
        *op = got ? v : 0;
        return 0;
    }
    for (int k = 1; k < ranks_size(); k++)
        if (ranks_send(k, RTAG_SIGNAL, &v, sizeof v, err, sizeof err)) return fail(err);
    return 0;
}

int rank_run_done(double wait_s)
{
    char err[512];
    int32_t done = 1;
    if (ranks_rank()) {
        if (ranks_send(0, RTAG_DONE, &done, sizeof done, err, sizeof err) ||
            log_ship_send(run_dir, err, sizeof err))
            return fail(err);
        return 0;
    }
    for (int k = 1; k < ranks_size(); k++)
        if (ranks_recv(k, RTAG_DONE, &done, sizeof done, wait_s, err, sizeof err) ||
            log_ship_take(run_out, k, run_id, wait_s, err, sizeof err))
            return fail(err);
    return 0;
}
