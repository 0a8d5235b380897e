/* tcp_linger.h: the deadline loop, with a short sleep between rounds so that on a shared
 * machine the peer gets the CPU it needs to answer. */
#include "tcp_linger.h"

#include "clock.h"

#include <time.h>

static void breathe(void)
{
    struct timespec ts = {0, 20000};
    nanosleep(&ts, NULL);
}

unsigned tcp_linger(const struct tcp_linger_stacks *s)
{
    int64_t start = clock_now_ns();
    unsigned reset = 0;
    while (s->round(s->arg)) {
        if (clock_now_ns() - start > TCP_LINGER_DEADLINE_NS) {
            reset = s->abort(s->arg);
            break;
        }
        breathe();
    }
    int64_t settle = clock_now_ns();
    while (clock_now_ns() - settle < TCP_LINGER_SETTLE_NS) {
        s->round(s->arg);
        breathe();
    }
    return reset;
}
