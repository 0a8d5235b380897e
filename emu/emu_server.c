/* strobe-emu's event loop and connections: accept, read and parse requests with
 * http-parser (one request at a time per connection), queue output the socket would not take,
 * and sleep until the next deadline of the scheduler (emu_sched.c) or the next I/O. */
#include "emu_server.h"
#include "emu_state.h"

#include "clock.h"
#include "fdlimit.h"
#include "prefix_cache.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

struct emu_state emu_state;

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* ---------- connection output ---------- */

static void want_out(struct conn *c, int on)
{
    if (c->epollout == on) return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(emu_state.epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->epollout = on;
}

/* Writes now if nothing is queued, queues the rest. Returns -1 if the connection died. */
int emu_server_conn_write(struct conn *c, const char *data, size_t len)
{
    if (c->out_len == c->out_off) {
        c->out_len = c->out_off = 0;
        while (len) {
            ssize_t w = send(c->fd, data, len, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                return -1;
            }
            data += w;
            len -= (size_t)w;
        }
    }
    if (len) {
        if (c->out_len + len > c->out_cap) {
            while (c->out_len + len > c->out_cap) c->out_cap = c->out_cap ? c->out_cap * 2 : 65536;
            c->out = realloc(c->out, c->out_cap);
        }
        memcpy(c->out + c->out_len, data, len);
        c->out_len += len;
        want_out(c, 1);
    }
    return 0;
}

static int conn_flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        c->out_off += (size_t)w;
    }
    c->out_len = c->out_off = 0;
    want_out(c, 0);
    if (c->close_after_write) return -1;
    return 0;
}

/* One SSE event as one HTTP chunk, in one write. */
int emu_server_send_event(struct conn *c, const char *event, size_t len)
{
    char head[20];
    int hn = snprintf(head, sizeof head, "%zx\r\n", len);
    static char frame[EVENT_BUF + 32];
    memcpy(frame, head, (size_t)hn);
    memcpy(frame + hn, event, len);
    memcpy(frame + hn + len, "\r\n", 2);
    return emu_server_conn_write(c, frame, (size_t)hn + len + 2);
}

void emu_server_send_response(struct conn *c, int status, const char *ctype, const char *body,
                              size_t len)
{
    const char *reason = status == 200   ? "OK"
                         : status == 404 ? "Not Found"
                         : status == 400 ? "Bad Request"
                         : status == 405 ? "Method Not Allowed"
                         : status == 429 ? "Too Many Requests"
                         : status == 503 ? "Service Unavailable"
                                         : "Internal Server Error";
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n", status,
                      reason, ctype, len, c->keep_alive ? "" : "Connection: close\r\n");
    if (!c->keep_alive) c->close_after_write = 1;
    if (emu_server_conn_write(c, head, (size_t)hn) == 0) emu_server_conn_write(c, body, len);
    if (c->close_after_write && c->out_len == c->out_off) emu_server_conn_close(c);
}

/* ---------- connections ---------- */

static int on_url(http_parser *hp, const char *at, size_t n)
{
    struct conn *c = hp->data;
    if (c->url_len + n >= sizeof c->url) return 1;
    memcpy(c->url + c->url_len, at, n);
    c->url_len += n;
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
    struct conn *c = hp->data;
    if (c->body_len + n > MAX_BODY) return 1;
    if (c->body_len + n > c->body_cap) {
        c->body_cap = (c->body_len + n) * 2;
        c->body = realloc(c->body, c->body_cap);
    }
    memcpy(c->body + c->body_len, at, n);
    c->body_len += n;
    return 0;
}

static int on_message_begin(http_parser *hp)
{
    struct conn *c = hp->data;
    c->url_len = 0;
    c->body_len = 0;
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    struct conn *c = hp->data;
    c->message_ready = 1;
    c->keep_alive = http_should_keep_alive(hp);
    http_parser_pause(hp, 1); /* one request at a time per connection */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Parses buffered input; dispatches at most one complete request. */
static void conn_process_input(struct conn *c)
{
    while (!c->req && c->fd >= 0 && c->in_parsed < c->in_len) {
        size_t n = http_parser_execute(&c->parser, &parser_settings, c->in + c->in_parsed,
                                       c->in_len - c->in_parsed);
        c->in_parsed += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e != HPE_OK && e != HPE_PAUSED) {
            c->keep_alive = 0;
            emu_request_reply_error(c, 400, http_errno_description(e));
            return;
        }
        if (c->message_ready) {
            c->message_ready = 0;
            http_parser_pause(&c->parser, 0);
            emu_request_dispatch(c);
        } else {
            break;
        }
    }
    if (c->fd >= 0 && c->in_parsed == c->in_len) c->in_len = c->in_parsed = 0;
}

void emu_server_conn_after_response(struct conn *c)
{
    if (c->fd < 0) return;
    if (!c->keep_alive) {
        c->close_after_write = 1;
        if (c->out_len == c->out_off) emu_server_conn_close(c);
        return;
    }
    conn_process_input(c);
}

void emu_server_conn_close(struct conn *c)
{
    if (c->fd < 0) return;
    epoll_ctl(emu_state.epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    if (c->req) {
        struct req *r = c->req;
        r->conn = NULL;
        c->req = NULL;
        emu_sched_req_maybe_free(r);
    }
    c->grave_next = emu_state.graveyard;
    emu_state.graveyard = c;
}

static void conn_free(struct conn *c)
{
    free(c->in);
    free(c->out);
    free(c->body);
    free(c);
}

static void conn_read(struct conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 16384) {
            c->in_cap = c->in_cap ? c->in_cap * 2 : 65536;
            c->in = realloc(c->in, c->in_cap);
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            if (c->in_len > MAX_BODY + 65536) {
                c->keep_alive = 0;
                emu_request_reply_error(c, 400, "request too large");
                return;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        emu_server_conn_close(c);
        return;
    }
    conn_process_input(c);
}

static void accept_all(void)
{
    for (;;) {
        int fd = accept4(emu_state.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        c->fd = fd;
        c->keep_alive = 1;
        http_parser_init(&c->parser, HTTP_REQUEST);
        c->parser.data = c;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(emu_state.epfd, EPOLL_CTL_ADD, fd, &ev);
    }
}

static int open_listener(const struct emu_params *p)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    char port[16];
    snprintf(port, sizeof port, "%d", p->listen_port);
    int rc = getaddrinfo(p->listen_host, port, &hints, &res);
    if (rc) {
        fprintf(stderr, "strobe-emu: cannot resolve --listen host '%s': %s.\n", p->listen_host,
                gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 4096)) {
        fprintf(stderr, "strobe-emu: cannot listen on %s:%d: %s; pick another --listen port.\n",
                p->listen_host, p->listen_port, strerror(errno));
        freeaddrinfo(res);
        close(fd);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Sleeps until the next deadline or I/O: epoll with a nanosecond timeout while the deadline
 * is far, clock_nanosleep(TIMER_ABSTIME) then a spin for the last stretch. */
static int wait_io(struct epoll_event *evs, int max)
{
    if (!emu_state.heap_len) return epoll_wait(emu_state.epfd, evs, max, 200);
    /* I/O first: a request must not wait behind a run of near deadlines */
    int n = epoll_wait(emu_state.epfd, evs, max, 0);
    if (n != 0) return n;
    int64_t due = emu_state.heap[0].due, now = clock_now_ns();
    int64_t gap = due - now;
    if (gap <= 0) return 0;
    if (gap > NANOSLEEP_WINDOW) {
        int64_t wait = gap - NANOSLEEP_WINDOW / 2;
        struct timespec ts = clock_ns_to_timespec(wait);
        return epoll_pwait2(emu_state.epfd, evs, max, &ts, NULL);
    }
    if (gap > SPIN_NS) {
        struct timespec ts = clock_ns_to_timespec(due - SPIN_NS);
        clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL);
    }
    while (clock_now_ns() < due) {
    }
    return 0;
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

int emu_serve(const struct emu_params *p)
{
    memset(&emu_state, 0, sizeof emu_state);
    emu_state.p = p;
    fdlimit_raise(); /* thousands of concurrent streams need thousands of sockets */
    emu_state.listen_fd = open_listener(p);
    if (emu_state.listen_fd < 0) return 1;
    emu_state.epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(emu_state.epfd, EPOLL_CTL_ADD, emu_state.listen_fd, &lev);
    emu_state.cache = prefix_cache_new(p->kv_cache_tokens);
    emu_state.fault_rng = p->seed * 0x9e3779b97f4a7c15ULL + 7;
    emu_state.started_ns = emu_state.energy_at_ns = clock_now_ns();
    /* the default 50 µs timer slack would be the largest pacing error */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    fprintf(stderr, "strobe-emu: listening on %s:%d, model %s\n", p->listen_host,
            bound_port(emu_state.listen_fd, p->listen_port), p->model);

    enum { MAXEV = 256 };
    struct epoll_event evs[MAXEV];
    while (!stop_flag) {
        int n = wait_io(evs, MAXEV);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                accept_all();
                continue;
            }
            if (c->fd < 0) continue;
            if (evs[i].events & EPOLLOUT)
                if (conn_flush(c)) emu_server_conn_close(c);
            if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) conn_read(c);
        }
        while (emu_state.heap_len && emu_state.heap[0].due <= clock_now_ns()) {
            struct timer t = emu_sched_heap_pop();
            emu_sched_on_timer(t.req, t.due);
        }
        while (emu_state.graveyard) {
            struct conn *c = emu_state.graveyard;
            emu_state.graveyard = c->grave_next;
            conn_free(c);
        }
    }
    fprintf(stderr, "strobe-emu: stopping after %llu requests\n",
            (unsigned long long)emu_state.requests_total);
    prefix_cache_free(emu_state.cache);
    close(emu_state.listen_fd);
    close(emu_state.epfd);
    return 0;
}
