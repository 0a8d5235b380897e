/* One timeline across ranks: each rank's clock offset to rank 0's, measured NTP style by an
 * MPI ping-pong (the exchange with the smallest round trip wins: offset = ((t1 - t0) +
 * (t2 - t3)) / 2, uncertainty = that round trip / 2), and what disciplines each host's clock
 * (chrony, PTP, or the kernel's own status), read so that a reader knows what an offset
 * means. An offset is rank k's clock minus rank 0's: rank 0's time = rank k's - offset. */
#ifndef STROBE_CLOCK_SYNC_H
#define STROBE_CLOCK_SYNC_H
#include <stddef.h>
#include <stdint.h>

#define CLOCK_SYNC_EXCHANGES      24
#define CLOCK_SYNC_EXCHANGES_TEXT "24"

struct clock_offset {
    int64_t t_ref;          /* rank 0's clock at the best exchange's middle */
    int64_t offset_ns;      /* rank k's clock - rank 0's */
    int64_t uncertainty_ns; /* half the best exchange's round trip */
};

/* Every rank calls it at the same point of the run; on rank 0, out[k] is rank k's offset
 * (out[0] is zero); on the others out is not touched. 0, or -1 with err naming the rank that
 * did not answer within timeout_s. */
int clock_sync_measure(struct clock_offset *out, double timeout_s, char *err, size_t errlen);
/* This host's clock discipline in one short line: chronyc tracking's key fields, pmc's
 * TIME_STATUS_NP when ptp4l answers, and always the kernel's adjtimex status. */
void clock_discipline_read(char *buf, size_t n);

#endif
