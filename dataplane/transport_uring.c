/* io_uring transport (transport_uring.h). Each connection is a pooled slot; every operation's
 * user_data names the slot, the slot's generation and the operation, so a completion that
 * arrives after its connection was closed (a cancelled receive, a connect past its timeout)
 * is recognised and only gives its buffer back. A slot is reused only once none of its
 * operations is still in the kernel. Received buffers queue on their connection, each with
 * its stamp, until the worker reads them; then they go back to the buffer ring (a memory
 * store, no syscall). */
#include "transport_uring.h"

#include "ksock.h"
#include "tls_layer.h"
#include "uring_wait.h"
#include "must_alloc.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <liburing.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SQ_ENTRIES 4096
#define CQ_ENTRIES 32768
#define NBUF       4096 /* provided buffers per worker (a power of two): 16 MiB */
#define BUF_SIZE   4096 /* one SSE chunk is a few hundred bytes */
#define BGID       0
#define CTRL_LEN   CMSG_SPACE(sizeof(struct scm_timestamping))
#define CANCEL_TAG UINT64_MAX /* the cancels' own completions: nothing to do */

/* Batched waits (Linux 6.12's minimum wait, which liburing 2.3 predates): asleep until every
 * receiving connection has something pending (at most BATCH_MAX), or, once BATCH_MIN_US have
 * passed since the wait began, until anything is. A paced load (every stream's chunk of a
 * token step arriving within a few hundred microseconds) wakes the worker about twice per
 * step instead of once per few chunks: each wake-up is a context switch and an
 * io_uring_enter, which a paravirtualised guest makes dear. Stamps are the kernel's, so
 * waiting moves none, and the wait makes no read take two of a stream's segments (the first
 * one's events would get the second's stamp) while its chunks are more than BATCH_MIN_US
 * apart (up to 5,000 per second). */
#define FEAT_MIN_TIMEOUT URING_FEAT_MIN_TIMEOUT
#define BATCH_MAX        URING_BATCH_MAX
#define BATCH_MIN_US     URING_BATCH_MIN_US

enum op { OP_CONNECT = 1, OP_RECV = 2, OP_POLLOUT = 4 };

/* The path transport_uring_probe chose, for every context of the process. */
static struct {
    int multishot; /* else one single-shot recvmsg per completion, re-armed */
    int defer;     /* IORING_SETUP_DEFER_TASKRUN: receives run inside our io_uring_enter */
    int batch;     /* batched waits: the kernel has them and stamps every completion */
} mode;

struct rx_buf {
    int32_t next; /* the connection's next queued buffer, or -1 */
    uint32_t off, end;
    int64_t t, t_user;
    enum ts_source src;
};

struct ur_conn {
    struct transport_ctx *x;
    struct tconn *tc; /* NULL once closed */
    uint32_t index, gen;
    int fd;
    unsigned armed;    /* operations of this connection in the kernel */
    unsigned inflight; /* operations of any generation in the kernel */
    int connected, connect_err, eof, rx_err;
    int32_t rx_head, rx_tail; /* received buffers not yet read, oldest first */
    uint32_t ready;           /* EPOLLIN/OUT/ERR for the next poll */
    struct ur_conn *ready_prev, *ready_next;
    int in_ready, in_rearm;
    struct ur_conn *next_rearm, *next_free;
    /* single-shot path only: the kernel writes the control message here */
    struct msghdr msg;
    struct iovec iov;
    union {
        char bytes[CTRL_LEN];
        struct cmsghdr align;
    } ctrl;
};

struct transport_ctx {
    struct io_uring ring;
    int enabled;
    int enter_fd;         /* the ring's registered index, else its descriptor */
    unsigned enter_flags; /* IORING_ENTER_REGISTERED_RING with a registered index */
    uint32_t receivers;   /* connected and not yet closed: what a batched wait waits for */
    struct io_uring_buf_ring *br;
    unsigned char *bufs;
    struct rx_buf meta[NBUF];
    long buffers_out;     /* handed to us by the kernel, not yet given back */
    struct msghdr ms_msg; /* multishot: no name, CTRL_LEN of control, read by the kernel */
    struct ur_conn **conns;
    uint32_t nconns, cap;
    struct ur_conn *free_list, *ready_head, *ready_tail, *rearm;
    struct tls_ctx *tls;
    /* counters for STROBE_URING_STATS=1 (printed at the end; plain increments, one thread) */
    uint64_t enters, cqes, stale, enobufs, rearms;
};

/* ---------- probe ---------- */

static int disabled(const char *what)
{
    const char *e = getenv("STROBE_URING_DISABLE");
    if (!e) return 0;
    size_t n = strlen(what);
    for (const char *p = e; (p = strstr(p, what)); p += n)
        if ((p == e || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
    return 0;
}

static int ring_init(struct io_uring *r, unsigned extra_flags)
{
    struct io_uring_params p = {.flags = IORING_SETUP_CQSIZE | extra_flags,
                                .cq_entries = CQ_ENTRIES};
    return io_uring_queue_init_params(SQ_ENTRIES, r, &p);
}

/* The ring's setup flags: deferred task work runs receives only inside our own
 * io_uring_enter (no interrupting the worker, receives batched); cooperative task work
 * otherwise. R_DISABLED: the worker thread enables it, becoming its single issuer. */
static unsigned ring_flags(void)
{
    return mode.defer
               ? IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED
               : IORING_SETUP_COOP_TASKRUN;
}

static struct io_uring_buf_ring *buf_ring_register(struct io_uring *r, unsigned entries)
{
    size_t size = entries * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) return NULL;
    struct io_uring_buf_reg reg = {
        .ring_addr = (unsigned long)mem, .ring_entries = entries, .bgid = BGID};
    if (io_uring_register_buf_ring(r, &reg, 0)) {
        munmap(mem, size);
        return NULL;
    }
    io_uring_buf_ring_init(mem);
    return mem;
}

/* A loopback TCP pair: what the transport will do, on a small scale. */
static int tcp_pair(int fds[2])
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    fds[0] = fds[1] = -1;
    if (l < 0) return -1;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) ||
        getsockname(l, (struct sockaddr *)&a, &al))
        goto fail;
    fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, sizeof a)) goto fail;
    fds[1] = accept(l, NULL, NULL);
    close(l);
    return fds[1] < 0 ? -1 : 0;
fail:
    close(l);
    if (fds[0] >= 0) close(fds[0]);
    return -1;
}

/* Arms one receive (multishot or not) on a pair, sends a byte, and reads what completes:
 * whether the receive stays armed (multishot works) and whether it carried a kernel stamp.
 * The kernel turns receive stamping on a moment after the first socket asks for it (a
 * deferred static key), so a first byte without a stamp is followed by a few more. */
static int try_receive(struct io_uring *r, int multishot, int *more, int *stamped)
{
    int fds[2];
    ksock_hold_stamping();
    if (tcp_pair(fds)) return -1;
    int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
    setsockopt(fds[0], SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags);
    static unsigned char buf[8][BUF_SIZE];
    struct io_uring_buf_ring *br = buf_ring_register(r, 8);
    int rc = -1;
    if (!br) goto out;
    for (int i = 0; i < 8; i++)
        io_uring_buf_ring_add(br, buf[i], BUF_SIZE, (unsigned short)i, 7, i);
    io_uring_buf_ring_advance(br, 8);
    union {
        char b[CTRL_LEN];
        struct cmsghdr align;
    } ctrl;
    struct iovec iov = {NULL, BUF_SIZE};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.b, .msg_controllen = CTRL_LEN};
    struct msghdr ms = {.msg_controllen = CTRL_LEN};
    *more = *stamped = 0;
    for (int attempt = 0; attempt < 5 && !*stamped; attempt++) {
        if (attempt && !*more) usleep(2000);
        if (!*more) { /* the first try, or a single-shot receive to re-arm */
            memset(&ctrl, 0, sizeof ctrl);
            struct io_uring_sqe *sqe = io_uring_get_sqe(r);
            if (multishot)
                io_uring_prep_recvmsg_multishot(sqe, fds[0], &ms, 0);
            else
                io_uring_prep_recvmsg(sqe, fds[0], &msg, 0);
            sqe->flags |= IOSQE_BUFFER_SELECT;
            sqe->buf_group = BGID;
            io_uring_submit(r);
        } else {
            usleep(2000);
        }
        if (write(fds[1], "x", 1) != 1) break;
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {1, 0};
        if (io_uring_wait_cqe_timeout(r, &cqe, &ts)) break;
        *more = !!(cqe->flags & IORING_CQE_F_MORE);
        if (cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
            unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
            struct rx_stamp st = {0};
            if (multishot) {
                struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(buf[bid], cqe->res, &ms);
                for (struct cmsghdr *cm = o ? io_uring_recvmsg_cmsg_firsthdr(o, &ms) : NULL; cm;
                     cm = io_uring_recvmsg_cmsg_nexthdr(o, &ms, cm))
                    ksock_stamp_cmsg(cm, &st);
            } else {
                for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
                    if (cm->cmsg_len >= sizeof *cm) ksock_stamp_cmsg(cm, &st);
            }
            *stamped = st.src == TS_KERNEL;
            io_uring_buf_ring_add(br, buf[bid], BUF_SIZE, (unsigned short)bid, 7, 0);
            io_uring_buf_ring_advance(br, 1);
            rc = 0;
        }
        io_uring_cqe_seen(r, cqe);
        if (rc) break;
        if (multishot && !*more) break; /* multishot did not stay armed: not supported */
    }
out:
    close(fds[0]);
    close(fds[1]);
    return rc;
}

/* The names STROBE_URING_DISABLE takes: a misspelt one would silently test the wrong path. */
static const char *unknown_disable_name(void)
{
    static const char *const known[] = {"io_uring", "multishot", "defer-taskrun", "batch"};
    static char bad[64];
    const char *e = getenv("STROBE_URING_DISABLE");
    for (const char *p = e; p && *p;) {
        size_t len = strcspn(p, ",");
        int ok = 0;
        for (size_t k = 0; k < sizeof known / sizeof *known; k++)
            ok |= len == strlen(known[k]) && !strncmp(p, known[k], len);
        if (!ok) {
            snprintf(bad, sizeof bad, "%.*s", (int)(len < 60 ? len : 60), p);
            return bad;
        }
        p += len + (p[len] == ',');
    }
    return NULL;
}

int transport_uring_probe(char *line, size_t n, char *err, size_t errlen)
{
    const char *unknown = unknown_disable_name();
    if (unknown) {
        snprintf(err, errlen,
                 "STROBE_URING_DISABLE names '%s', which is not one of io_uring, multishot, "
                 "defer-taskrun, batch (comma-separated): correct it or unset it",
                 unknown);
        return -1;
    }
    struct io_uring r;
    if (disabled("io_uring")) {
        snprintf(err, errlen,
                 "io_uring is turned off by STROBE_URING_DISABLE=io_uring (a test setting): unset "
                 "it, or use --transport kernel");
        return -1;
    }
    int rc = ring_init(&r, 0);
    if (rc) {
        snprintf(err, errlen,
                 "io_uring is not available here (io_uring_setup: %s; "
                 "/proc/sys/kernel/io_uring_disabled or a container's seccomp policy can forbid "
                 "it): use --transport kernel",
                 strerror(-rc));
        return -1;
    }
    struct io_uring_probe *p = io_uring_get_probe_ring(&r);
    static const struct {
        int op;
        const char *name;
    } needed[] = {{IORING_OP_RECVMSG, "RECVMSG"},
                  {IORING_OP_CONNECT, "CONNECT"},
                  {IORING_OP_POLL_ADD, "POLL_ADD"},
                  {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"}};
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
        if (!p || !io_uring_opcode_supported(p, needed[i].op)) {
            snprintf(err, errlen,
                     "this kernel's io_uring lacks IORING_OP_%s: use --transport kernel",
                     needed[i].name);
            io_uring_free_probe(p);
            io_uring_queue_exit(&r);
            return -1;
        }
    io_uring_free_probe(p);
    int min_wait = !!(r.features & FEAT_MIN_TIMEOUT);
    int more = 0, stamped = 0;
    mode.multishot = !disabled("multishot") && try_receive(&r, 1, &more, &stamped) == 0 && more;
    io_uring_queue_exit(&r);
    if (!mode.multishot) {
        ring_init(&r, 0);
        rc = try_receive(&r, 0, &more, &stamped);
        io_uring_queue_exit(&r);
        if (rc) {
            snprintf(err, errlen,
                     "this kernel's io_uring cannot receive into a provided buffer ring "
                     "(Linux 5.19 and later can): use --transport kernel");
            return -1;
        }
    }
    mode.defer = !disabled("defer-taskrun") &&
                 ring_init(&r, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN) == 0;
    if (mode.defer) io_uring_queue_exit(&r);
    mode.batch = min_wait && stamped && !disabled("batch");
    char batch[120] = "one wake-up per completion (no minimum wait here)";
    if (mode.batch)
        snprintf(batch, sizeof batch,
                 "a wake-up when every stream has data (at most %d) or %d us into the wait",
                 BATCH_MAX, BATCH_MIN_US);
    snprintf(line, n,
             "io_uring transport: %s into a provided buffer ring (%d x %d KiB per worker), %s, "
             "%s, %s receive stamps",
             mode.multishot ? "multishot recvmsg" : "single-shot recvmsg (no multishot here)", NBUF,
             BUF_SIZE / 1024,
             mode.defer ? "deferred task work" : "cooperative task work (no deferred here)", batch,
             stamped ? "kernel (SO_TIMESTAMPING)"
                     : "userspace (no SO_TIMESTAMPING through io_uring)");
    return 0;
}

/* ---------- context ---------- */

struct transport_ctx *transport_uring_ctx_new(const struct transport_options *o, char *err,
                                              size_t errlen)
{
    struct transport_ctx *x = must_calloc(1, sizeof *x, "an io_uring worker");
    int rc = ring_init(&x->ring, ring_flags());
    if (rc) {
        snprintf(err, errlen, "io_uring_setup for a worker failed: %s: use --transport kernel",
                 strerror(-rc));
        free(x);
        return NULL;
    }
    x->br = buf_ring_register(&x->ring, NBUF);
    x->bufs = malloc((size_t)NBUF * BUF_SIZE);
    x->tls = x->br ? tls_ctx_new(o, err, errlen) : NULL;
    if (!x->br)
        snprintf(err, errlen, "io_uring buffer ring registration failed: use --transport kernel");
    if (!x->tls) {
        io_uring_queue_exit(&x->ring);
        free(x->bufs);
        free(x);
        return NULL;
    }
    for (int i = 0; i < NBUF; i++)
        io_uring_buf_ring_add(x->br, x->bufs + (size_t)i * BUF_SIZE, BUF_SIZE, (unsigned short)i,
                              io_uring_buf_ring_mask(NBUF), i);
    io_uring_buf_ring_advance(x->br, NBUF);
    x->ms_msg.msg_controllen = CTRL_LEN;
    return x;
}

/* The worker thread's first call: it becomes the ring's single issuer, and registers the
 * ring's descriptor with itself (a registration is per thread) so that io_uring_enter skips
 * the descriptor lookup. */
static inline void enable(struct transport_ctx *x)
{
    if (x->enabled) return;
    /* liburing 2.3 declares io_uring_enable_rings but does not export it */
    if (mode.defer)
        syscall(__NR_io_uring_register, x->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
    x->enter_fd = x->ring.ring_fd;
    if (io_uring_register_ring_fd(&x->ring) == 1) {
        x->enter_fd = x->ring.enter_ring_fd;
        x->enter_flags = IORING_ENTER_REGISTERED_RING;
    }
    x->enabled = 1;
}

static void give_back(struct transport_ctx *x, unsigned bid)
{
    io_uring_buf_ring_add(x->br, x->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(NBUF), 0);
    io_uring_buf_ring_advance(x->br, 1);
    x->buffers_out--;
}

static struct io_uring_sqe *sqe_get(struct transport_ctx *x)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&x->ring);
    if (!sqe) { /* a full queue (thousands of connects at once): submit what is there */
        io_uring_submit(&x->ring);
        sqe = io_uring_get_sqe(&x->ring);
    }
    return sqe;
}

static uint64_t tag(const struct ur_conn *u, enum op op)
{
    return (uint64_t)u->index << 40 | (uint64_t)u->gen << 8 | (uint64_t)op;
}

static void submit_op(struct ur_conn *u, struct io_uring_sqe *sqe, enum op op)
{
    io_uring_sqe_set_data64(sqe, tag(u, op));
    u->armed |= op;
    u->inflight++;
}

static void mark(struct ur_conn *u, uint32_t ev)
{
    struct transport_ctx *x = u->x;
    if (!u->tc) return;
    u->ready |= ev;
    if (u->in_ready) return;
    u->in_ready = 1;
    u->ready_next = NULL;
    u->ready_prev = x->ready_tail;
    if (x->ready_tail)
        x->ready_tail->ready_next = u;
    else
        x->ready_head = u;
    x->ready_tail = u;
}

static void unmark(struct ur_conn *u)
{
    struct transport_ctx *x = u->x;
    if (!u->in_ready) return;
    if (u->ready_prev)
        u->ready_prev->ready_next = u->ready_next;
    else
        x->ready_head = u->ready_next;
    if (u->ready_next)
        u->ready_next->ready_prev = u->ready_prev;
    else
        x->ready_tail = u->ready_prev;
    u->in_ready = 0;
    u->ready = 0;
}

/* Re-armed at the next poll: the ring ran out of buffers (they return as the worker reads),
 * or a single-shot receive completed. */
static void rearm_later(struct ur_conn *u)
{
    if (u->in_rearm) return;
    u->in_rearm = 1;
    u->next_rearm = u->x->rearm;
    u->x->rearm = u;
}

static void arm_recv(struct ur_conn *u)
{
    struct io_uring_sqe *sqe = sqe_get(u->x);
    if (!sqe) {
        rearm_later(u);
        return;
    }
    if (mode.multishot) {
        io_uring_prep_recvmsg_multishot(sqe, u->fd, &u->x->ms_msg, 0);
    } else {
        memset(&u->ctrl, 0, sizeof u->ctrl);
        u->iov = (struct iovec){NULL, BUF_SIZE};
        u->msg = (struct msghdr){.msg_iov = &u->iov,
                                 .msg_iovlen = 1,
                                 .msg_control = u->ctrl.bytes,
                                 .msg_controllen = CTRL_LEN};
        io_uring_prep_recvmsg(sqe, u->fd, &u->msg, 0);
    }
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    submit_op(u, sqe, OP_RECV);
}

static void rearm_pending(struct transport_ctx *x)
{
    while (x->rearm) {
        struct ur_conn *u = x->rearm;
        x->rearm = u->next_rearm;
        u->in_rearm = 0;
        if (u->tc && u->connected && !(u->armed & OP_RECV) && !u->eof && !u->rx_err) {
            x->rearms++;
            arm_recv(u);
        }
    }
}

static void release_slot(struct ur_conn *u)
{
    u->next_free = u->x->free_list;
    u->x->free_list = u;
}

/* One received buffer: its payload and stamp, queued on the connection. */
static void on_buffer(struct transport_ctx *x, struct ur_conn *u, unsigned bid, int res,
                      int64_t now)
{
    unsigned char *b = x->bufs + (size_t)bid * BUF_SIZE;
    struct rx_buf *m = &x->meta[bid];
    m->t = m->t_user = now;
    m->src = TS_USERSPACE;
    if (mode.multishot) {
        struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(b, res, &x->ms_msg);
        if (!o) {
            give_back(x, bid);
            return;
        }
        struct rx_stamp st = {now, now, TS_USERSPACE};
        for (struct cmsghdr *cm = io_uring_recvmsg_cmsg_firsthdr(o, &x->ms_msg); cm;
             cm = io_uring_recvmsg_cmsg_nexthdr(o, &x->ms_msg, cm))
            ksock_stamp_cmsg(cm, &st);
        m->t = st.t;
        m->src = st.src;
        m->off = (uint32_t)((unsigned char *)io_uring_recvmsg_payload(o, &x->ms_msg) - b);
        m->end = m->off + io_uring_recvmsg_payload_length(o, res, &x->ms_msg);
    } else {
        struct rx_stamp st = {now, now, TS_USERSPACE};
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&u->msg); cm; cm = CMSG_NXTHDR(&u->msg, cm)) {
            if (cm->cmsg_len < sizeof *cm) break;
            ksock_stamp_cmsg(cm, &st);
        }
        m->t = st.t;
        m->src = st.src;
        m->off = 0;
        m->end = (uint32_t)res;
    }
    if (m->off == m->end) { /* no payload: the peer's FIN */
        give_back(x, bid);
        u->eof = 1;
        mark(u, EPOLLIN | EPOLLRDHUP);
        return;
    }
    m->next = -1;
    if (u->rx_head < 0)
        u->rx_head = (int32_t)bid;
    else
        x->meta[u->rx_tail].next = (int32_t)bid;
    u->rx_tail = (int32_t)bid;
    mark(u, EPOLLIN);
}

static void on_cqe(struct transport_ctx *x, const struct io_uring_cqe *cqe, int64_t now)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    if (ud == CANCEL_TAG) return;
    int has_buf = !!(cqe->flags & IORING_CQE_F_BUFFER);
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    int more = !!(cqe->flags & IORING_CQE_F_MORE);
    enum op op = (enum op)(ud & 0xff);
    uint32_t index = (uint32_t)(ud >> 40), gen = (uint32_t)(ud >> 8);
    struct ur_conn *u = x->conns[index];
    if (has_buf) x->buffers_out++;
    if (!more) u->inflight--;
    if (u->gen != gen || !u->tc) { /* its connection is closed */
        x->stale++;
        if (has_buf) give_back(x, bid);
        if (!u->inflight && !u->tc) release_slot(u);
        return;
    }
    if (!more) u->armed &= ~(unsigned)op;
    int res = cqe->res;
    if (op == OP_CONNECT) {
        if (res < 0)
            u->connect_err = -res;
        else
            u->connected = 1;
        x->receivers += res >= 0;
        if (res >= 0) arm_recv(u);
        mark(u, EPOLLOUT | (res < 0 ? EPOLLERR : 0));
    } else if (op == OP_POLLOUT) {
        mark(u, EPOLLOUT);
    } else if (res < 0) {
        if (has_buf) give_back(x, bid);
        if (res == -ENOBUFS) {
            x->enobufs++;
            rearm_later(u);
        } else if (res != -ECANCELED) {
            u->rx_err = -res;
            mark(u, EPOLLIN | EPOLLERR);
        }
    } else if (!has_buf) {
        u->eof = 1;
        mark(u, EPOLLIN | EPOLLRDHUP);
    } else {
        on_buffer(x, u, bid, res, now);
        if (!more && !u->eof) rearm_later(u);
    }
}

/* Every completion waiting in the CQ, in one pass; one clock read for the batch. */
static void reap(struct transport_ctx *x)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    int64_t now = clock_now_ns();
    io_uring_for_each_cqe(&x->ring, head, cqe)
    {
        on_cqe(x, cqe, now);
        n++;
    }
    io_uring_cq_advance(&x->ring, n);
    x->cqes += n;
}

void transport_uring_ctx_free(struct transport_ctx *x)
{
    if (!x) return;
    /* on the control thread, after the worker: only the CQ is read here (entering the ring
     * is its worker's alone); ring teardown cancels what is still in the kernel */
    reap(x);
    if (getenv("STROBE_URING_STATS"))
        fprintf(stderr,
                "strobe: io_uring transport: %llu polls, %llu completions, %llu of closed "
                "connections, %llu out of buffers, %llu receives re-armed, %ld buffers out\n",
                (unsigned long long)x->enters, (unsigned long long)x->cqes,
                (unsigned long long)x->stale, (unsigned long long)x->enobufs,
                (unsigned long long)x->rearms, x->buffers_out);
    if (x->buffers_out)
        fprintf(stderr,
                "strobe: warning: io_uring transport: %ld receive buffers were not given back "
                "to the ring (a leak in strobe: please report it)\n",
                x->buffers_out);
    io_uring_queue_exit(&x->ring);
    for (uint32_t i = 0; i < x->nconns; i++) free(x->conns[i]);
    free(x->conns);
    munmap(x->br, NBUF * sizeof(struct io_uring_buf));
    free(x->bufs);
    tls_ctx_free(x->tls);
    free(x);
}

/* ---------- the transport table ---------- */

static struct ur_conn *slot_take(struct transport_ctx *x)
{
    struct ur_conn *u = x->free_list;
    if (u) {
        x->free_list = u->next_free;
        return u;
    }
    if (x->nconns == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 1024;
        x->conns = realloc(x->conns, x->cap * sizeof *x->conns);
    }
    u = calloc(1, sizeof *u);
    u->x = x;
    u->index = x->nconns;
    x->conns[x->nconns++] = u;
    return u;
}

static int u_open(struct transport_ctx *x, struct tconn *c, const struct endpoint *ep)
{
    enable(x);
    if (ksock_socket(c, ep)) return T_ERROR;
    struct io_uring_sqe *sqe = sqe_get(x);
    if (!sqe) {
        snprintf(c->err, sizeof c->err, "io_uring submission queue full");
        close(c->fd);
        c->fd = -1;
        return T_ERROR;
    }
    struct ur_conn *u = slot_take(x);
    u->gen++;
    u->tc = c;
    u->fd = c->fd;
    u->armed = 0;
    u->connected = u->connect_err = u->eof = u->rx_err = 0;
    u->rx_head = u->rx_tail = -1;
    c->impl = u;
    io_uring_prep_connect(sqe, c->fd, (const struct sockaddr *)&ep->addr, ep->addrlen);
    submit_op(u, sqe, OP_CONNECT);
    c->want_write = 1;
    return 0;
}

static int u_progress(struct tconn *c)
{
    struct ur_conn *u = c->impl;
    if (u->connect_err) {
        ksock_connect_error(c, u->connect_err);
        return T_ERROR;
    }
    if (!u->connected) return T_AGAIN;
    if (!c->connected) {
        c->connected = 1;
        c->want_write = 0;
        ksock_note_local(c);
    }
    return 1;
}

/* A plain send: one per request, not per chunk; when the socket is full, a POLLOUT through
 * the ring says when to try again. */
static ssize_t u_send(struct tconn *c, const void *buf, size_t len)
{
    ssize_t n = ksock_send(c, buf, len);
    struct ur_conn *u = c->impl;
    if (n == T_AGAIN && !(u->armed & OP_POLLOUT)) {
        struct io_uring_sqe *sqe = sqe_get(u->x);
        if (!sqe) return T_AGAIN; /* the worker's next poll submits, then it tries again */
        io_uring_prep_poll_add(sqe, u->fd, POLLOUT);
        submit_op(u, sqe, OP_POLLOUT);
    }
    return n;
}

static int u_flush(struct tconn *c)
{
    (void)c;
    return 1;
}

/* The oldest received buffer, or what is left of it: its bytes carry its own stamp. */
static ssize_t u_recv(struct tconn *c, void *buf, size_t cap, struct rx_stamp *st)
{
    struct ur_conn *u = c->impl;
    struct transport_ctx *x = u->x;
    if (u->rx_head < 0) {
        if (u->rx_err) {
            snprintf(c->err, sizeof c->err, "recv: %s", strerror(u->rx_err));
            return T_ERROR;
        }
        return u->eof ? 0 : T_AGAIN;
    }
    unsigned bid = (unsigned)u->rx_head;
    struct rx_buf *m = &x->meta[bid];
    size_t n = m->end - m->off;
    if (n > cap) n = cap;
    memcpy(buf, x->bufs + (size_t)bid * BUF_SIZE + m->off, n);
    st->t = m->t;
    st->src = m->src;
    st->t_user = m->t_user;
    m->off += (uint32_t)n;
    if (m->off == m->end) {
        u->rx_head = m->next;
        give_back(x, bid);
    }
    return (ssize_t)n;
}

/* Nothing queued, no FIN or error seen, and nothing unread in the socket. */
static int u_alive(struct tconn *c)
{
    struct ur_conn *u = c->impl;
    reap(u->x); /* completions already posted but not yet seen */
    return u->rx_head < 0 && !u->eof && !u->rx_err && ksock_quiet(c->fd);
}

static void u_close(struct tconn *c)
{
    struct ur_conn *u = c->impl;
    if (!u) return;
    struct transport_ctx *x = u->x;
    /* operations still in the kernel are cancelled; their completions, tagged with this
     * generation, come later and find the connection closed */
    for (unsigned op = OP_CONNECT; op <= OP_POLLOUT; op <<= 1) {
        if (!(u->armed & op)) continue;
        struct io_uring_sqe *sqe = sqe_get(x);
        if (!sqe) continue; /* cannot happen after sqe_get's submit; the fd close still ends it */
        io_uring_prep_cancel64(sqe, tag(u, (enum op)op), 0);
        io_uring_sqe_set_data64(sqe, CANCEL_TAG);
    }
    while (u->rx_head >= 0) {
        unsigned bid = (unsigned)u->rx_head;
        u->rx_head = x->meta[bid].next;
        give_back(x, bid);
    }
    unmark(u);
    x->receivers -= u->connected;
    u->connected = 0;
    close(c->fd);
    c->fd = -1;
    c->impl = NULL;
    u->tc = NULL;
    u->armed = 0;
    if (!u->inflight) release_slot(u);
}

/* Submits the queued SQEs and waits for a batch (see BATCH_MAX), in one io_uring_enter. */
static void enter_batched(struct transport_ctx *x, int64_t wait_ns)
{
    unsigned batch = x->receivers < 1 ? 1 : x->receivers < BATCH_MAX ? x->receivers : BATCH_MAX;
    uring_enter_batched(&x->ring, x->enter_fd, x->enter_flags, batch, BATCH_MIN_US, wait_ns);
}

/* One io_uring_enter submits what open, send, close and re-arming queued, runs the receives
 * (deferred task work), and waits for the first completion; then every completion is reaped
 * in one pass. */
static int u_poll(struct transport_ctx *x, struct epoll_event *ev, int max, int64_t wait_ns)
{
    enable(x);
    rearm_pending(x);
    if (x->ready_head) wait_ns = 0;
    if (wait_ns > 0 && mode.batch) {
        enter_batched(x, wait_ns);
    } else if (wait_ns > 0) {
        struct __kernel_timespec ts = {wait_ns / 1000000000LL, wait_ns % 1000000000LL};
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&x->ring, &cqe, 1, &ts, NULL);
    } else {
        io_uring_submit_and_get_events(&x->ring);
    }
    x->enters++;
    reap(x);
    int n = 0;
    while (x->ready_head && n < max) {
        struct ur_conn *u = x->ready_head;
        ev[n].events = u->ready;
        ev[n].data.ptr = u->tc->owner;
        unmark(u);
        n++;
    }
    return n;
}

static const struct transport_ops uring_ops = {"uring", u_open,  u_progress, u_send,  u_flush,
                                               u_recv,  u_close, u_poll,     u_alive, 0};

static int u_tls_open(struct transport_ctx *x, struct tconn *c, const struct endpoint *ep)
{
    return tls_layer_open(x->tls, &uring_ops, x, c, ep);
}

static const struct transport_ops uring_tls_ops = {"uring+tls",        u_tls_open,
                                                   tls_layer_progress, tls_layer_send,
                                                   tls_layer_flush,    tls_layer_recv,
                                                   tls_layer_close,    u_poll,
                                                   tls_layer_alive,    0};

const struct transport_ops *transport_uring_ops(int tls)
{
    return tls ? &uring_tls_ops : &uring_ops;
}
