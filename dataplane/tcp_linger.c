/* tcp_linger.h: the waiting loops. Rounds follow each other while frames come (a thousand
 * closes answered at once are thousands of frames, which a receive buffer left undrained
 * drops); after a round that brought nothing, a short sleep leaves the CPU to the peer, which
 * on a shared machine needs it to answer. */
#include "tcp_linger.h"

#include "clock.h"

#include <stdint.h>
#include <time.h>

/* Intervals on the monotonic clock (clock_mono_ns): a step of the wall clock (NTP) during the
 * wait must not end it at once, nor make it last until the clock catches up. */

/* One round; sleeps 20 us when it received nothing. Returns the connections left; moves
 * *progress to now when frames came or connections finished closing. */
static unsigned round_or_rest(const struct tcp_linger_stacks *s, unsigned before, int64_t *progress)
{
    int frames = 0;
    unsigned unclosed = s->round(s->arg, &frames);
    if (frames || unclosed < before)
        *progress = clock_mono_ns();
    else {
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
    return unclosed;
}

/* Whether the wait that began at `start` is over: silent too long, or long enough. */
static int given_up(int64_t start, int64_t progress)
{
    int64_t now = clock_mono_ns();
    return now - progress > TCP_LINGER_QUIET_NS || now - start > TCP_LINGER_MAX_NS;
}

struct tcp_linger_outcome tcp_linger(const struct tcp_linger_stacks *s)
{
    struct tcp_linger_outcome o = {0, 0};
    int64_t start = clock_mono_ns(), progress = start;
    for (unsigned left = ~0u; (left = round_or_rest(s, left, &progress));)
        if (given_up(start, progress)) {
            o.reset = s->abort(s->arg);
            break;
        }
    start = progress = clock_mono_ns();
    if (s->barrier && s->barrier(s->arg)) {
        for (;;) {
            round_or_rest(s, 0, &progress);
            /* an answer brought by the last round counts, even at the limit */
            if (s->barrier_done(s->arg)) break;
            if (given_up(start, progress)) {
                o.barrier_late = 1;
                break;
            }
        }
    } else {
        while (clock_mono_ns() - start < TCP_LINGER_SETTLE_NS) round_or_rest(s, 0, &progress);
    }
    return o;
}
