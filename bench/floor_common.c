#include "floor_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/net_tstamp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char body[] = "{\"model\":\"strobe-emu\",\"messages\":[{\"role\":\"user\",\"content\":"
                           "\"floor\"}],\"max_tokens\":1000000000,\"stream\":true}";

int floor_parse_args(int argc, char **argv, const char *program, struct floor_args *a)
{
    *a = (struct floor_args){.conns = 64, .warmup_s = 1, .duration_s = 4};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--connect") && i + 1 < argc)
            a->target = argv[++i];
        else if (!strcmp(argv[i], "--connections") && i + 1 < argc)
            a->conns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup-s") && i + 1 < argc)
            a->warmup_s = atof(argv[++i]);
        else if (!strcmp(argv[i], "--duration-s") && i + 1 < argc)
            a->duration_s = atof(argv[++i]);
        else
            a->target = NULL, i = argc;
    }
    a->addr.sin_family = AF_INET;
    const char *colon = a->target ? strrchr(a->target, ':') : NULL;
    char host[64] = "";
    if (colon) snprintf(host, sizeof host, "%.*s", (int)(colon - a->target), a->target);
    if (!colon || inet_pton(AF_INET, host, &a->addr.sin_addr) != 1 || a->conns < 1 ||
        a->duration_s <= 0 || a->warmup_s < 0) {
        fprintf(stderr,
                "usage: %s --connect IPV4:PORT [--connections N>0] [--warmup-s S] "
                "[--duration-s S>0]\n",
                program);
        return 2;
    }
    a->addr.sin_port = htons((uint16_t)atoi(colon + 1));
    return 0;
}

static int open_stream(const struct floor_args *a, struct stream *s)
{
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->fd < 0 || connect(s->fd, (const struct sockaddr *)&a->addr, sizeof a->addr)) return -1;
    int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
    if (setsockopt(s->fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags)) return -1;
    char req[1024];
    int n =
        snprintf(req, sizeof req,
                 "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                 "application/json\r\nAccept: text/event-stream\r\nContent-Length: %zu\r\n\r\n%s",
                 a->target, sizeof body - 1, body);
    if (send(s->fd, req, (size_t)n, MSG_NOSIGNAL) != n) return -1;
    return 0;
}

int floor_open_streams(const struct floor_args *a, const char *program, struct stream *s)
{
    for (int i = 0; i < a->conns; i++) {
        if (open_stream(a, &s[i])) {
            fprintf(stderr, "%s: connection %d to %s failed: %s; is the source up?\n", program, i,
                    a->target, strerror(errno));
            return 1;
        }
    }
    return 0;
}

int64_t floor_realtime_ns(void)
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

void floor_window_start(struct floor_window *w, const struct floor_args *a)
{
    *w = (struct floor_window){0};
    w->delays = malloc(MAX_READS * sizeof *w->delays);
    memset(w->delays, 0, MAX_READS * sizeof *w->delays); /* no page faults inside the window */
    w->t_open = floor_realtime_ns() + (int64_t)(a->warmup_s * 1e9);
    w->t_end = w->t_open + (int64_t)(a->duration_s * 1e9);
}

int floor_window_tick(struct floor_window *w)
{
    int64_t now = floor_realtime_ns();
    if (!w->in_window && now >= w->t_open) {
        w->in_window = 1;
        w->cpu_open = cpu_ns();
        w->t_open = now;
    }
    if (w->in_window && now >= w->t_end) {
        w->cpu_close = cpu_ns();
        w->t_close = now;
        return 1;
    }
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

void floor_take_read(struct floor_window *w, struct stream *s, const char *p, size_t n,
                     int64_t t_user, int64_t t_k)
{
    if (!w->in_window) {
        s->last_nl = n && p[n - 1] == '\n';
        return;
    }
    size_t k = count_event_ends(s, p, n);
    w->events += k;
    w->reads++;
    w->stamped += t_k != 0;
    if (t_k && k && w->nd < MAX_READS) {
        w->delays[w->nd] = (struct read_delay){t_user - t_k, k};
        w->weighed += w->delays[w->nd++].events;
    }
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

void floor_print(struct floor_window *w)
{
    qsort(w->delays, w->nd, sizeof *w->delays, by_delay);
    double secs = (double)(w->t_close - w->t_open) / 1e9;
    printf("{\"events_per_s\": %.1f, \"cpu_us_per_event\": %.4f, \"delay_p50_us\": %.2f, "
           "\"delay_p99_us\": %.2f, \"events\": %zu, \"reads\": %zu, \"stamped_reads\": %zu, "
           "\"window_s\": %.3f}\n",
           (double)w->events / secs,
           w->events ? (double)(w->cpu_close - w->cpu_open) / 1e3 / (double)w->events : -1,
           pct_us(w->delays, w->nd, w->weighed, 0.50), pct_us(w->delays, w->nd, w->weighed, 0.99),
           w->events, w->reads, w->stamped, secs);
    free(w->delays);
}
