/* What the two floor readers (floor_reader.c: epoll; uring_floor_reader.c: io_uring) share:
 * their command line, the streams they open, how they count events and weigh reads, and the
 * one JSON line they print. Both are the least a client of their kind can do: no HTTP or SSE
 * parsing (events are counted as the "\n\n" that end them), no log, no allocation after the
 * start, one thread.
 *   PROGRAM --connect IPV4:PORT [--connections N] [--warmup-s S] [--duration-s S]
 * The line: events/s over the measured window (after the warm-up), the process's CPU
 * (getrusage) in µs per event, and the added delay (the userspace clock after the read minus
 * the kernel's receive stamp) p50/p99 in µs, each read weighed by the events it completed (as
 * strobe's kernel_stamp_to_userspace_read_us counts them). */
#ifndef STROBE_FLOOR_COMMON_H
#define STROBE_FLOOR_COMMON_H
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_READS (4u << 20) /* reads kept: 64 MiB, touched before the window opens */

struct floor_args {
    const char *target;
    struct sockaddr_in addr;
    int conns;
    double warmup_s, duration_s;
};

struct stream {
    int fd;
    int last_nl; /* the previous read ended in '\n' (an event end may straddle two reads) */
};

/* one read in the window: its added delay, and the events it completed */
struct read_delay {
    int64_t ns;
    uint64_t events;
};

struct floor_window {
    struct read_delay *delays; /* MAX_READS */
    size_t nd, events, reads, stamped;
    uint64_t weighed; /* events of the reads kept in delays */
    int64_t t_open, t_close, t_end, cpu_open, cpu_close;
    int in_window;
};

/* 0, or 2 after printing the usage line for `program`. */
int floor_parse_args(int argc, char **argv, const char *program, struct floor_args *a);
/* Connects the N streams (blocking), with receive stamps, and sends each its request; 0, or 1
 * after saying which one failed. */
int floor_open_streams(const struct floor_args *a, const char *program, struct stream *s);
int64_t floor_realtime_ns(void);
/* Allocates and touches the window's delays; the window opens warmup_s from now. */
void floor_window_start(struct floor_window *w, const struct floor_args *a);
/* At each wake-up: opens the window once its time has come; 1 once it has closed. */
int floor_window_tick(struct floor_window *w);
/* A read of n bytes at p on stream s, read at t_user with kernel stamp t_k (0: none). */
void floor_take_read(struct floor_window *w, struct stream *s, const char *p, size_t n,
                     int64_t t_user, int64_t t_k);
/* Prints the JSON line. */
void floor_print(struct floor_window *w);

#endif
