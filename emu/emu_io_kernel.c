/* strobe-emu's kernel backend (emu_io.h): a listening socket, non-blocking connections and
 * epoll; waits for the scheduler's next deadline with epoll, clock_nanosleep, then a spin.
 * Its listener and poll also serve the lwIP backend's control address. */
#include "emu_io.h"
#include "emu_state.h"

#include "clock.h"
#include "fdlimit.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static int epfd = -1, listen_fd = -1;
static const struct emu_io kernel_io;

static void k_want_write(struct conn *c, int on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static ssize_t k_send(struct conn *c, const void *buf, size_t len)
{
    for (;;) {
        ssize_t w = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (w >= 0) return w;
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
}

static ssize_t k_recv(struct conn *c, void *buf, size_t cap)
{
    for (;;) {
        ssize_t n = recv(c->fd, buf, cap, 0);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? EMU_IO_AGAIN : -1;
    }
}

static void k_close(struct conn *c, int reset)
{
    if (reset) {
        struct linger lg = {1, 0}; /* close sends an RST */
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
}

static void accept_all(void)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = emu_server_conn_new(&kernel_io);
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    }
}

/* The port the listener got: the one asked for, or with --listen HOST:0 the one the kernel
 * chose, which the start line then names (a test reads it instead of guessing a free port
 * that another process could take before the emulator binds it). */
static int bound_port(int fd, int asked)
{
    struct sockaddr_storage a;
    socklen_t l = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &l)) return asked;
    if (a.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&a)->sin_port);
    if (a.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
    return asked;
}

int emu_io_kernel_listen(const char *host, int port)
{
    fdlimit_raise(); /* thousands of concurrent streams need thousands of sockets */
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc) {
        fprintf(stderr, "strobe-emu: cannot resolve the listen host '%s': %s.\n", host,
                gai_strerror(rc));
        return -1;
    }
    listen_fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listen_fd, res->ai_addr, res->ai_addrlen) || listen(listen_fd, 4096)) {
        fprintf(stderr, "strobe-emu: cannot listen on %s:%d: %s; pick another port.\n", host, port,
                strerror(errno));
        freeaddrinfo(res);
        close(listen_fd);
        listen_fd = -1;
        return -1;
    }
    freeaddrinfo(res);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &lev);
    return bound_port(listen_fd, port);
}

static int k_start(const struct emu_params *p)
{
    int port = emu_io_kernel_listen(p->listen_host, p->listen_port);
    if (port < 0) return -1;
    fprintf(stderr, "strobe-emu: listening on %s:%d, model %s\n", p->listen_host, port, p->model);
    return 0;
}

/* epoll events into the seam's, accepting on the way (the listener's event names no conn). */
static int collect(const struct epoll_event *raw, int n, struct emu_io_event *evs)
{
    int out = 0;
    for (int i = 0; i < n; i++) {
        struct conn *c = raw[i].data.ptr;
        if (!c) {
            accept_all();
            continue;
        }
        evs[out].c = c;
        evs[out].ev = (raw[i].events & EPOLLOUT ? EMU_IO_OUT : 0) |
                      (raw[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR) ? EMU_IO_IN : 0);
        out++;
    }
    return out;
}

/* Sleeps until the deadline or I/O: epoll with a nanosecond timeout while the deadline is
 * far, clock_nanosleep(TIMER_ABSTIME) then a spin for the last stretch. */
static int k_wait(struct emu_io_event *evs, int max, int64_t due)
{
    enum { MAXEV = 256 };
    struct epoll_event raw[MAXEV];
    if (max > MAXEV) max = MAXEV;
    int n;
    if (!due) {
        n = epoll_wait(epfd, raw, max, 200);
        return n > 0 ? collect(raw, n, evs) : 0;
    }
    /* I/O first: a request must not wait behind a run of near deadlines */
    n = epoll_wait(epfd, raw, max, 0);
    if (n != 0) return n > 0 ? collect(raw, n, evs) : 0;
    int64_t gap = due - clock_now_ns();
    if (gap <= 0) return 0;
    if (gap > NANOSLEEP_WINDOW) {
        struct timespec ts = clock_ns_to_timespec(gap - NANOSLEEP_WINDOW / 2);
        n = epoll_pwait2(epfd, raw, max, &ts, NULL);
        return n > 0 ? collect(raw, n, evs) : 0;
    }
    if (gap > SPIN_NS) {
        struct timespec ts = clock_ns_to_timespec(due - SPIN_NS);
        clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL);
    }
    while (clock_now_ns() < due) {
    }
    return 0;
}

int emu_io_kernel_poll(struct emu_io_event *evs, int max, int64_t timeout_ns)
{
    enum { MAXEV = 256 };
    struct epoll_event raw[MAXEV];
    if (max > MAXEV) max = MAXEV;
    struct timespec ts = clock_ns_to_timespec(timeout_ns);
    int n = epoll_pwait2(epfd, raw, max, &ts, NULL);
    return n > 0 ? collect(raw, n, evs) : 0;
}

static void k_stop(void)
{
    close(listen_fd);
    close(epfd);
}

static const struct emu_io kernel_io = {"kernel",     k_start, k_wait, k_send, k_recv,
                                        k_want_write, k_close, k_stop, NULL};

const struct emu_io *emu_io_kernel(void) { return &kernel_io; }
