/* uring_floor_reader: the least an io_uring client can do, the floor that strobe's
 * `--transport uring` row of scripts/bench_capacity.sh is read against (floor_common.h: its
 * command line and output). One ring with deferred task work, one multishot recvmsg per
 * connection into a provided buffer ring with its SO_TIMESTAMPING stamp, and strobe's batched
 * wait: asleep until every connection has a completion (at most 256) or, once 200 µs have
 * passed, until anything has (Linux 6.12's minimum wait; one completion wakes it where the
 * kernel lacks it). What strobe's uring transport adds to this is its own work per event. */
#include "floor_common.h"
#include "uring_wait.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <liburing.h>
#include <linux/net_tstamp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBUF     4096 /* provided buffers (a power of two) */
#define BUF_SIZE 4096

static void arm(struct io_uring *r, struct msghdr *tmpl, int fd, unsigned index)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(r);
    if (!sqe) { /* the submission ring is full (more connections than entries): submit it */
        io_uring_submit(r);
        sqe = io_uring_get_sqe(r);
    }
    io_uring_prep_recvmsg_multishot(sqe, fd, tmpl, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = 0;
    io_uring_sqe_set_data64(sqe, index);
}

/* strobe's batched wait (uring_wait.h); 0, or -errno when the kernel refused the call itself
 * (a timeout or a signal is no error). */
static int enter(struct io_uring *r, int fd, unsigned flags, unsigned batch, int min_wait)
{
    /* the window's clock is read at least every 100 ms */
    long rc = uring_enter_batched(r, fd, flags, min_wait ? batch : 1,
                                  min_wait ? URING_BATCH_MIN_US : 0, 100000000);
    return rc >= 0 || errno == ETIME || errno == EINTR || errno == EBUSY ? 0 : -errno;
}

int main(int argc, char **argv)
{
    struct floor_args a;
    if (floor_parse_args(argc, argv, "uring_floor_reader", &a)) return 2;
    struct stream *streams = calloc((size_t)a.conns, sizeof *streams);
    if (floor_open_streams(&a, "uring_floor_reader", streams)) return 1;
    struct io_uring r;
    struct io_uring_params p = {.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER |
                                         IORING_SETUP_DEFER_TASKRUN,
                                .cq_entries = 32768};
    int rc = io_uring_queue_init_params(4096, &r, &p);
    if (rc) {
        fprintf(stderr,
                "uring_floor_reader: io_uring with deferred task work cannot be set up here "
                "(%s): Linux 6.1 or later, with io_uring enabled, is needed\n",
                strerror(-rc));
        return 1;
    }
    int min_wait = !!(p.features & URING_FEAT_MIN_TIMEOUT);
    struct io_uring_buf_reg reg = {.ring_entries = NBUF, .bgid = 0};
    struct io_uring_buf_ring *br = NULL;
    char *bufs = malloc((size_t)NBUF * BUF_SIZE);
    if (posix_memalign((void **)&br, 4096, NBUF * sizeof(struct io_uring_buf)) == 0) {
        reg.ring_addr = (uint64_t)(uintptr_t)br;
        if (io_uring_register_buf_ring(&r, &reg, 0)) br = NULL;
    }
    if (!br || !bufs) {
        fprintf(stderr, "uring_floor_reader: no provided buffer ring (Linux 5.19 and later "
                        "have them)\n");
        return 1;
    }
    io_uring_buf_ring_init(br);
    for (unsigned i = 0; i < NBUF; i++)
        io_uring_buf_ring_add(br, bufs + (size_t)i * BUF_SIZE, BUF_SIZE, (unsigned short)i,
                              io_uring_buf_ring_mask(NBUF), (int)i);
    io_uring_buf_ring_advance(br, NBUF);
    int fd = r.ring_fd;
    unsigned flags = 0;
    if (io_uring_register_ring_fd(&r) == 1) {
        fd = r.enter_ring_fd;
        flags = IORING_ENTER_REGISTERED_RING;
    }
    struct msghdr tmpl = {.msg_controllen = CMSG_SPACE(sizeof(struct scm_timestamping))};
    for (int i = 0; i < a.conns; i++) arm(&r, &tmpl, streams[i].fd, (unsigned)i);
    struct floor_window w;
    floor_window_start(&w, &a);
    unsigned batch = a.conns < URING_BATCH_MAX ? (unsigned)a.conns : URING_BATCH_MAX;
    for (;;) {
        int err = enter(&r, fd, flags, batch, min_wait);
        if (err) {
            fprintf(stderr, "uring_floor_reader: io_uring_enter failed: %s\n", strerror(-err));
            return 1;
        }
        if (floor_window_tick(&w)) break;
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0, returned = 0;
        io_uring_for_each_cqe(&r, head, cqe)
        {
            seen++;
            unsigned index = (unsigned)cqe->user_data;
            struct stream *s = &streams[index];
            if (cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
                unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
                char *b = bufs + (size_t)bid * BUF_SIZE;
                int64_t t_user = floor_realtime_ns(), t_k = 0;
                struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(b, cqe->res, &tmpl);
                /* a multishot receive ends a stream with a completion that carries its headers
                 * and no payload */
                if (o && !o->payloadlen && !(cqe->flags & IORING_CQE_F_MORE)) {
                    fprintf(stderr, "uring_floor_reader: the source closed a stream (end of "
                                    "stream); give it a larger max_tokens or a shorter run\n");
                    return 1;
                }
                for (struct cmsghdr *c = o ? io_uring_recvmsg_cmsg_firsthdr(o, &tmpl) : NULL; c;
                     c = io_uring_recvmsg_cmsg_nexthdr(o, &tmpl, c)) {
                    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPING) continue;
                    struct timespec ts[3];
                    memcpy(ts, CMSG_DATA(c), sizeof ts);
                    t_k = (int64_t)ts[0].tv_sec * 1000000000LL + ts[0].tv_nsec;
                }
                if (o)
                    floor_take_read(&w, s, io_uring_recvmsg_payload(o, &tmpl),
                                    io_uring_recvmsg_payload_length(o, cqe->res, &tmpl), t_user,
                                    t_k);
                io_uring_buf_ring_add(br, b, BUF_SIZE, (unsigned short)bid,
                                      io_uring_buf_ring_mask(NBUF), (int)returned++);
            } else if (cqe->res <= 0 && cqe->res != -ENOBUFS) {
                fprintf(stderr,
                        "uring_floor_reader: the source closed a stream (%s); give it a larger "
                        "max_tokens or a shorter run\n",
                        cqe->res ? strerror(-cqe->res) : "end of stream");
                return 1;
            }
            if (!(cqe->flags & IORING_CQE_F_MORE)) arm(&r, &tmpl, s->fd, index); /* ended */
        }
        io_uring_buf_ring_advance(br, (int)returned);
        io_uring_cq_advance(&r, seen);
    }
    floor_print(&w);
    return 0;
}
