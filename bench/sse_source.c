/* sse_source: the fast SSE server of scripts/bench_capacity.sh, so that the client, not the
 * server, is what the benchmark measures. One thread, epoll, keep-alive HTTP/1.1; every POST
 * is answered with a chunked text/event-stream of real OpenAI chat.completion.chunk events
 * (one HTTP chunk per event, as vLLM and SGLang send them): max_tokens content events from
 * the request body, a finish event, a usage event (prompt_tokens = body bytes / 4, enough for
 * strobe's prompt calibration) and [DONE].
 *   sse_source [--listen HOST:PORT] [--rate EVENTS_PER_S]
 * --rate R paces every stream at R events/s: on each tick (1/R s, one clock for all streams)
 * each stream is owed one event and gets it in its own send(), as a token server does.
 * --rate 0 (unpaced) writes each stream as fast as its socket takes it, many events per
 * send(). The listening port is printed on the first line of stderr. Not a product: no
 * TLS, no other endpoints; SIGINT or SIGTERM stops it. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQ_MAX        (64 * 1024)
#define BURST_EVENTS   256 /* events in the prebuilt run: the most one send() carries */
#define MAX_CONNS      65536
#define SPIN_NS        20000 /* the last stretch before a tick is spun, not slept */
#define MAX_OWED_TICKS 1000  /* a stream this far behind is not owed more (a stalled reader) */

static const char event_json[] =
    "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"strobe-emu\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" token\"},"
    "\"logprobs\":null,\"finish_reason\":null}]}";

struct conn {
    int fd;
    char req[REQ_MAX];
    size_t req_len;
    int streaming;
    int64_t left;     /* content events still to send */
    int64_t owed;     /* paced: events due and not yet sent */
    size_t part;      /* bytes of the next event already sent (a full socket cut it) */
    const char *tail; /* the response's end (finish, usage, [DONE], last chunk) */
    size_t tail_len, tail_off;
    char tail_buf[1024];
    int want_out;
};

static char *burst;       /* BURST_EVENTS framed content events back to back */
static size_t framed_len; /* one framed event: "LEN\r\ndata: {...}\n\n\r\n" */
static volatile sig_atomic_t stop;
static int epfd;
static struct conn *streams[MAX_CONNS];
static int nstreams;
static uint64_t events_sent, ticks, ticks_late; /* printed at the end */

static void on_signal(int sig) { (void)sig, stop = 1; }

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One SSE event framed as one HTTP chunk. */
static size_t frame(char *out, size_t cap, const char *data)
{
    size_t n = strlen(data) + 8; /* "data: " and "\n\n" */
    return (size_t)snprintf(out, cap, "%zx\r\ndata: %s\n\n\r\n", n, data);
}

static void build_burst(void)
{
    char one[512];
    framed_len = frame(one, sizeof one, event_json);
    burst = malloc(framed_len * BURST_EVENTS);
    for (int i = 0; i < BURST_EVENTS; i++) memcpy(burst + i * framed_len, one, framed_len);
}

static void set_out(struct conn *c, int want)
{
    if (c->want_out == want) return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
}

static void unlist(struct conn *c)
{
    for (int i = 0; i < nstreams; i++)
        if (streams[i] == c) {
            streams[i] = streams[--nstreams];
            break;
        }
}

static void drop(struct conn *c)
{
    unlist(c);
    close(c->fd);
    free(c);
}

/* Bytes the socket took; 0 when it is full (then the stream waits for EPOLLOUT); -1 when the
 * connection died (then c is freed). */
static ssize_t send_some(struct conn *c, const char *p, size_t n)
{
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno == EAGAIN) {
        set_out(c, 1);
        return 0;
    }
    if (w < 0) drop(c);
    return w;
}

static void build_tail(struct conn *c, size_t prompt_bytes)
{
    char data[512];
    size_t n = 0;
    n += frame(c->tail_buf + n, sizeof c->tail_buf - n,
               "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":"
               "1700000000,\"model\":\"strobe-emu\",\"choices\":[{\"index\":0,\"delta\":{},"
               "\"finish_reason\":\"length\"}]}");
    snprintf(data, sizeof data,
             "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":"
             "1700000000,\"model\":\"strobe-emu\",\"choices\":[],\"usage\":{\"prompt_tokens\":%zu,"
             "\"completion_tokens\":%lld,\"total_tokens\":%lld}}",
             prompt_bytes / 4, (long long)c->left, (long long)(prompt_bytes / 4 + c->left));
    n += frame(c->tail_buf + n, sizeof c->tail_buf - n, data);
    n += frame(c->tail_buf + n, sizeof c->tail_buf - n, "[DONE]");
    n += (size_t)snprintf(c->tail_buf + n, sizeof c->tail_buf - n, "0\r\n\r\n");
    c->tail = c->tail_buf;
    c->tail_len = n;
    c->tail_off = 0;
}

/* A whole request (head and Content-Length body) is in c->req: start its stream. */
static int start_stream(struct conn *c, size_t head_len, size_t body_len)
{
    const char *body = c->req + head_len;
    const char *mt = memmem(body, body_len, "\"max_tokens\":", 13);
    c->left = mt ? strtoll(mt + 13, NULL, 10) : 16;
    if (c->left < 0) c->left = 0;
    build_tail(c, body_len);
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
    if (send(c->fd, head, sizeof head - 1, MSG_NOSIGNAL) != (ssize_t)sizeof head - 1) return -1;
    size_t used = head_len + body_len;
    memmove(c->req, c->req + used, c->req_len - used);
    c->req_len -= used;
    c->streaming = 1;
    c->owed = 0;
    c->part = 0;
    streams[nstreams++] = c;
    return 0;
}

/* Parses what has arrived: 1 a stream started, 0 more bytes needed, -1 a bad request. */
static int try_request(struct conn *c)
{
    const char *end = memmem(c->req, c->req_len, "\r\n\r\n", 4);
    if (!end) return c->req_len == REQ_MAX ? -1 : 0;
    size_t head_len = (size_t)(end - c->req) + 4;
    size_t body_len = 0;
    for (const char *p = c->req; p < end; p = memchr(p, '\n', (size_t)(end - p)) + 1) {
        if (!strncasecmp(p, "content-length:", 15)) body_len = strtoull(p + 15, NULL, 10);
        if (!memchr(p, '\n', (size_t)(end - p))) break;
    }
    if (head_len + body_len > REQ_MAX) return -1;
    if (c->req_len < head_len + body_len) return 0;
    return start_stream(c, head_len, body_len) ? -1 : 1;
}

static void on_readable(struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->req + c->req_len, REQ_MAX - c->req_len, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            drop(c);
            return;
        }
        if (n < 0) break;
        c->req_len += (size_t)n;
        if (c->req_len == REQ_MAX) break;
    }
    if (!c->streaming && try_request(c) < 0) drop(c);
}

/* Sends what the stream may send now: its owed events (paced) or all it can (unpaced), then
 * the response's end. 0, or -1 when the connection died (then c is freed). */
static int pump(struct conn *c, int paced)
{
    while (c->left > 0 && (!paced || c->owed > 0)) {
        int64_t k = paced ? c->owed : c->left;
        if (k > c->left) k = c->left;
        if (k > BURST_EVENTS) k = BURST_EVENTS;
        ssize_t n = send_some(c, burst + c->part, (size_t)k * framed_len - c->part);
        if (n <= 0) return (int)n;
        /* an event cut by a full socket is finished from the same offset of the next burst */
        size_t total = c->part + (size_t)n;
        int64_t whole = (int64_t)(total / framed_len);
        c->part = total % framed_len;
        c->left -= whole;
        events_sent += (uint64_t)whole;
        if (paced) c->owed -= whole;
    }
    if (c->left > 0) {
        set_out(c, 0);
        return 0;
    }
    ssize_t n = send_some(c, c->tail + c->tail_off, c->tail_len - c->tail_off);
    if (n <= 0) return (int)n;
    c->tail_off += (size_t)n;
    if (c->tail_off < c->tail_len) {
        set_out(c, 1);
        return 0;
    }
    /* the response is whole: back to reading requests on the kept-alive connection */
    set_out(c, 0);
    c->streaming = 0;
    unlist(c);
    if (try_request(c) < 0) {
        drop(c);
        return -1;
    }
    return 0;
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    }
}

static int listen_on(const char *spec)
{
    char host[256] = "127.0.0.1";
    int port = 0;
    const char *colon = strrchr(spec, ':');
    if (colon) {
        snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
        port = atoi(colon + 1);
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        fprintf(stderr, "sse_source: --listen %s is not IPv4 HOST:PORT; give e.g. 127.0.0.1:0\n",
                spec);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t l = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 4096) ||
        getsockname(fd, (struct sockaddr *)&a, &l)) {
        fprintf(stderr, "sse_source: cannot listen on %s: %s; pick another port\n", spec,
                strerror(errno));
        return -1;
    }
    fprintf(stderr, "sse_source: listening on %s:%d\n", host, ntohs(a.sin_port));
    return fd;
}

int main(int argc, char **argv)
{
    const char *listen_spec = "127.0.0.1:0";
    double rate = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--listen") && i + 1 < argc)
            listen_spec = argv[++i];
        else if (!strcmp(argv[i], "--rate") && i + 1 < argc)
            rate = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: sse_source [--listen HOST:PORT] [--rate EVENTS_PER_S "
                            "per stream, 0 = unpaced]\n");
            return 2;
        }
    }
    if (rate < 0 || rate > 1e6) {
        fprintf(stderr, "sse_source: --rate %g is out of range; give 0 (unpaced) to 1000000\n",
                rate);
        return 2;
    }
    int lfd = listen_on(listen_spec);
    if (lfd < 0) return 1;
    build_burst();
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);
    int paced = rate > 0;
    int64_t tick = paced ? (int64_t)(1e9 / rate) : 0, next_tick = now_ns() + tick;
    struct epoll_event evs[256];
    while (!stop) {
        int timeout_ms = 0;
        int64_t gap = next_tick - now_ns();
        if (paced && gap > SPIN_NS) timeout_ms = (int)((gap - SPIN_NS) / 1000000);
        if (!paced) timeout_ms = nstreams ? 0 : 100;
        int n = epoll_wait(epfd, evs, 256, timeout_ms);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                accept_all(lfd);
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                on_readable(c);
                continue; /* dropped, or its writes come below */
            }
            if (c->streaming && (evs[i].events & EPOLLOUT)) pump(c, paced);
        }
        if (!paced) {
            for (int i = nstreams - 1; i >= 0; i--) pump(streams[i], 0);
            continue;
        }
        gap = next_tick - now_ns();
        if (gap > SPIN_NS) {
            if (gap < 1000000) { /* under a millisecond: sleep to the spin window */
                struct timespec ts = {0, gap - SPIN_NS};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        while (now_ns() < next_tick) {
        }
        ticks++;
        /* a whole tick behind: the source is short of CPU. The missed ticks are dropped, not
         * caught up in a burst, so the streams stay evenly paced at a lower rate */
        int64_t behind = now_ns() - next_tick;
        ticks_late += behind > tick;
        next_tick += behind > tick ? behind - behind % tick + tick : tick;
        for (int i = nstreams - 1; i >= 0; i--) {
            struct conn *c = streams[i];
            if (c->owed < MAX_OWED_TICKS) c->owed++;
            pump(c, 1);
        }
    }
    fprintf(stderr, "sse_source: %llu events sent, %llu ticks, %llu of them over a tick late\n",
            (unsigned long long)events_sent, (unsigned long long)ticks,
            (unsigned long long)ticks_late);
    return 0;
}
