/* tcp_linger.h: the deadline loop. Rounds follow each other while frames come (a thousand
 * closes answered at once are thousands of frames, which a receive buffer left undrained
 * drops); after a round that received nothing, a short sleep leaves the CPU to the peer, which
 * on a shared machine needs it to answer. */
#include "tcp_linger.h"

#include "clock.h"

#include <time.h>

/* One round; sleeps 20 us when it received nothing. Returns the connections left. */
static unsigned round_or_rest(const struct tcp_linger_stacks *s)
{
    int frames = 0;
    unsigned unclosed = s->round(s->arg, &frames);
    if (!frames) {
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
    return unclosed;
}

unsigned tcp_linger(const struct tcp_linger_stacks *s)
{
    int64_t start = clock_now_ns();
    unsigned reset = 0;
    while (round_or_rest(s))
        if (clock_now_ns() - start > TCP_LINGER_DEADLINE_NS) {
            reset = s->abort(s->arg);
            break;
        }
    int64_t from = clock_now_ns();
    if (s->barrier) {
        s->barrier(s->arg);
        while (!s->barrier_done(s->arg) && clock_now_ns() - from < TCP_LINGER_DEADLINE_NS)
            round_or_rest(s);
    } else {
        while (clock_now_ns() - from < TCP_LINGER_SETTLE_NS) round_or_rest(s);
    }
    return reset;
}
