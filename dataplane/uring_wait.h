/* The io_uring batched wait (Linux 6.12's minimum wait, which liburing 2.3 predates), shared
 * by the uring transport and the benchmark's io_uring floor reader so that the floor waits
 * exactly as strobe does: one io_uring_enter submits what is queued and sleeps until wait_nr
 * completions are pending or, once min_wait_us have passed since the wait began, until any
 * is (min_wait_us 0: plain wait_nr), or until timeout_ns. Header-only: the transport's
 * poll calls it on every wake-up. */
#ifndef STROBE_URING_WAIT_H
#define STROBE_URING_WAIT_H
#include <liburing.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#define URING_FEAT_MIN_TIMEOUT (1U << 15) /* io_uring_params.features: the minimum wait */
#define URING_BATCH_MAX        256        /* the most completions one wait waits for */
#define URING_BATCH_MIN_US     200        /* the minimum wait, microseconds */

/* The syscall's result: >= 0, or -1 with errno (ETIME at the timeout, EINTR). enter_fd and
 * enter_flags: the ring's registered index with IORING_ENTER_REGISTERED_RING, or its
 * descriptor and 0. */
static inline long uring_enter_batched(struct io_uring *r, int enter_fd, unsigned enter_flags,
                                       unsigned wait_nr, unsigned min_wait_us, int64_t timeout_ns)
{
    struct io_uring_sq *sq = &r->sq;
    unsigned tail = sq->sqe_tail;
    if (sq->sqe_head != tail) { /* what io_uring_submit does before entering */
        sq->sqe_head = tail;
        io_uring_smp_store_release(sq->ktail, tail);
    }
    struct __kernel_timespec ts = {timeout_ns / 1000000000LL, timeout_ns % 1000000000LL};
    struct io_uring_getevents_arg arg = {.sigmask_sz = _NSIG / 8,
                                         .pad = min_wait_us, /* min_wait_usec since 6.12 */
                                         .ts = (uint64_t)(uintptr_t)&ts};
    return syscall(__NR_io_uring_enter, enter_fd, tail - *sq->khead, wait_nr,
                   IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG | enter_flags, &arg, sizeof arg);
}

#endif
