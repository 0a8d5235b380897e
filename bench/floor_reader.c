/* floor_reader: the least a streaming client can do, the floor that scripts/bench_capacity.sh
 * holds strobe against. N connections, one streaming request each, then one thread of
 * epoll_wait + one recvmsg per ready connection with its SO_TIMESTAMPING receive stamp: no
 * HTTP or SSE parsing (events are counted as the "\n\n" that end them), no log, no
 * allocation after the start.
 *   floor_reader --connect HOST:PORT [--connections N] [--warmup-s S] [--duration-s S]
 * Prints one JSON line on stdout for the measured window (after the warm-up): events/s, its
 * own CPU (getrusage: it is one thread) in µs per event, and the added delay (the userspace
 * clock after recvmsg minus the kernel's receive stamp) p50/p99 in µs over every read. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_BUF  (64 * 1024)
#define MAX_READS (4u << 20) /* reads kept: 64 MiB, touched before the window opens */

static const char body[] = "{\"model\":\"strobe-emu\",\"messages\":[{\"role\":\"user\",\"content\":"
                           "\"floor\"}],\"max_tokens\":1000000000,\"stream\":true}";

/* one read in the window: its added delay, counted once per event it completed (as strobe's
 * kernel_stamp_to_userspace_read_us counts it) */
struct read_delay {
    int64_t ns;
    uint64_t events;
};

struct stream {
    int fd;
    int last_nl; /* the previous read ended in '\n' (an event end may straddle two reads) */
};

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

static int by_delay(const void *a, const void *b)
{
    int64_t x = ((const struct read_delay *)a)->ns, y = ((const struct read_delay *)b)->ns;
    return (x > y) - (x < y);
}

/* The delay below which a share q of the events lie (nearest rank over events), in µs. */
static double pct_us(const struct read_delay *v, size_t n, uint64_t total, double q)
{
    uint64_t rank = (uint64_t)(q * (double)total), seen = 0;
    for (size_t i = 0; i < n; i++)
        if ((seen += v[i].events) > rank) return (double)v[i].ns / 1000.0;
    return -1;
}

/* Blocking connect and send, then non-blocking reads with receive stamps. */
static int open_stream(const struct sockaddr_in *a, const char *host_port, struct stream *s)
{
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(s->fd, (const struct sockaddr *)a, sizeof *a)) return -1;
    int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
    if (setsockopt(s->fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags)) return -1;
    char req[1024];
    int n =
        snprintf(req, sizeof req,
                 "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                 "application/json\r\nAccept: text/event-stream\r\nContent-Length: %zu\r\n\r\n%s",
                 host_port, sizeof body - 1, body);
    if (send(s->fd, req, (size_t)n, MSG_NOSIGNAL) != n) return -1;
    struct timeval none = {0};
    setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    return 0;
}

static size_t count_event_ends(struct stream *s, const char *p, size_t n)
{
    size_t events = 0;
    if (s->last_nl && n && p[0] == '\n') events++;
    for (const char *q = p, *end = p + n; (q = memchr(q, '\n', (size_t)(end - q)));) {
        if (++q < end && *q == '\n') events++, q++;
    }
    s->last_nl = n && p[n - 1] == '\n';
    return events;
}

int main(int argc, char **argv)
{
    const char *target = NULL;
    int conns = 64;
    double warmup_s = 1, duration_s = 4;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--connect") && i + 1 < argc)
            target = argv[++i];
        else if (!strcmp(argv[i], "--connections") && i + 1 < argc)
            conns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup-s") && i + 1 < argc)
            warmup_s = atof(argv[++i]);
        else if (!strcmp(argv[i], "--duration-s") && i + 1 < argc)
            duration_s = atof(argv[++i]);
        else
            target = NULL, i = argc;
    }
    struct sockaddr_in a = {.sin_family = AF_INET};
    const char *colon = target ? strrchr(target, ':') : NULL;
    char host[64] = "";
    if (colon) snprintf(host, sizeof host, "%.*s", (int)(colon - target), target);
    if (!colon || inet_pton(AF_INET, host, &a.sin_addr) != 1 || conns < 1 || duration_s <= 0 ||
        warmup_s < 0) {
        fprintf(stderr, "usage: floor_reader --connect IPV4:PORT [--connections N>0] "
                        "[--warmup-s S] [--duration-s S>0]\n");
        return 2;
    }
    a.sin_port = htons((uint16_t)atoi(colon + 1));
    struct stream *streams = calloc((size_t)conns, sizeof *streams);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < conns; i++) {
        if (open_stream(&a, target, &streams[i])) {
            fprintf(stderr, "floor_reader: connection %d to %s failed: %s; is the source up?\n", i,
                    target, strerror(errno));
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &streams[i]};
        epoll_ctl(epfd, EPOLL_CTL_ADD, streams[i].fd, &ev);
    }
    struct read_delay *delays = malloc(MAX_READS * sizeof *delays);
    memset(delays, 0, MAX_READS * sizeof *delays); /* no page faults inside the window */
    static char buf[READ_BUF];
    char ctrl[256];
    size_t nd = 0, events = 0, reads = 0, stamped = 0;
    uint64_t weighed = 0; /* events of the reads kept in delays */
    int64_t t_open = realtime_ns() + (int64_t)(warmup_s * 1e9), t_close = 0, t_end;
    int64_t cpu_open = 0, cpu_close = 0;
    int in_window = 0;
    struct epoll_event evs[256];
    t_end = t_open + (int64_t)(duration_s * 1e9);
    for (;;) {
        int n = epoll_wait(epfd, evs, 256, 100);
        int64_t now = realtime_ns();
        if (!in_window && now >= t_open) {
            in_window = 1;
            cpu_open = cpu_ns();
            t_open = now;
        }
        if (in_window && now >= t_end) {
            cpu_close = cpu_ns();
            t_close = now;
            break;
        }
        for (int i = 0; i < n; i++) {
            struct stream *s = evs[i].data.ptr;
            struct iovec iov = {buf, sizeof buf};
            struct msghdr m = {.msg_iov = &iov,
                               .msg_iovlen = 1,
                               .msg_control = ctrl,
                               .msg_controllen = sizeof ctrl};
            ssize_t r = recvmsg(s->fd, &m, MSG_DONTWAIT);
            int64_t t_user = realtime_ns();
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                fprintf(stderr,
                        "floor_reader: the source closed a stream (%s); give it a "
                        "larger max_tokens or a shorter run\n",
                        r ? strerror(errno) : "end of stream");
                return 1;
            }
            if (!in_window) {
                s->last_nl = r && buf[r - 1] == '\n';
                continue;
            }
            size_t k = count_event_ends(s, buf, (size_t)r);
            events += k;
            reads++;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPING) continue;
                struct timespec ts[3];
                memcpy(ts, CMSG_DATA(c), sizeof ts);
                int64_t t_k = (int64_t)ts[0].tv_sec * 1000000000LL + ts[0].tv_nsec;
                if (t_k && k && nd < MAX_READS) {
                    delays[nd] = (struct read_delay){t_user - t_k, k};
                    weighed += delays[nd++].events;
                }
                stamped += t_k != 0;
            }
        }
    }
    qsort(delays, nd, sizeof *delays, by_delay);
    double secs = (double)(t_close - t_open) / 1e9;
    printf("{\"events_per_s\": %.1f, \"cpu_us_per_event\": %.4f, \"delay_p50_us\": %.2f, "
           "\"delay_p99_us\": %.2f, \"events\": %zu, \"reads\": %zu, \"stamped_reads\": %zu, "
           "\"window_s\": %.3f}\n",
           (double)events / secs,
           events ? (double)(cpu_close - cpu_open) / 1e3 / (double)events : -1,
           pct_us(delays, nd, weighed, 0.50), pct_us(delays, nd, weighed, 0.99), events, reads,
           stamped, secs);
    return 0;
}
