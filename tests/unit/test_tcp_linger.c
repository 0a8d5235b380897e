/* tcp_linger against scripted stacks: closes that finish, then the barrier's answer (no reset,
 * the barrier sent only once every close has finished); closes that never finish from a silent
 * peer (reset once the silence has lasted the quiet time, the barrier still sent) and from a
 * peer that keeps sending (reset at the cap); a barrier never answered (given up, and said);
 * no barrier, or one that cannot be sent (the settle time). Upper bounds only where the
 * margin is 1.8 s, which holds on a loaded machine. */
#include "check.h"
#include "clock.h"
#include "tcp_linger.h"

struct script {
    unsigned unclosed; /* left now */
    int close_each;    /* each round closes one (a frame) */
    int chatty;        /* each round brings a frame, closing nothing */
    int rounds, aborts, barriers;
    unsigned unclosed_at_barrier;
    int answer_after; /* rounds after the barrier until its answer; < 0: never */
    int rounds_since_barrier;
    int cannot_barrier; /* a next hop that may not answer (its MAC given): settle instead */
};

static unsigned round_(void *arg, int *frames)
{
    struct script *s = arg;
    s->rounds++;
    if (s->close_each && s->unclosed) {
        s->unclosed--;
        *frames += 1;
    }
    if (s->chatty) *frames += 1;
    if (s->barriers) s->rounds_since_barrier++;
    return s->unclosed;
}

static unsigned abort_(void *arg)
{
    struct script *s = arg;
    unsigned n = s->unclosed;
    s->aborts++;
    s->unclosed = 0;
    return n;
}

static int barrier(void *arg)
{
    struct script *s = arg;
    if (s->cannot_barrier) return 0;
    s->barriers++;
    s->unclosed_at_barrier = s->unclosed;
    return 1;
}

static int barrier_done(void *arg)
{
    struct script *s = arg;
    return s->answer_after >= 0 && s->rounds_since_barrier >= s->answer_after;
}

static int64_t run(struct script *s, int with_barrier, struct tcp_linger_outcome *o)
{
    struct tcp_linger_stacks st = {s, round_, abort_, with_barrier ? barrier : NULL,
                                   with_barrier ? barrier_done : NULL};
    int64_t t0 = clock_now_ns();
    *o = tcp_linger(&st);
    return clock_now_ns() - t0;
}

int main(void)
{
    struct tcp_linger_outcome o;
    struct script a = {.unclosed = 5, .close_each = 1, .answer_after = 3};
    run(&a, 1, &o);
    CHECK(o.reset == 0 && a.aborts == 0 && !o.barrier_late,
          "closes that finish: no reset, the barrier answered (got %u, %d aborts, late %d)",
          o.reset, a.aborts, o.barrier_late);
    CHECK(a.barriers == 1 && a.unclosed_at_barrier == 0,
          "the barrier sent once, after every close (%d sent, %u open then)", a.barriers,
          a.unclosed_at_barrier);
    CHECK(a.rounds_since_barrier >= 3, "rounds until the barrier's answer (%d)",
          a.rounds_since_barrier);

    struct script b = {.unclosed = 7, .answer_after = 0};
    int64_t ns = run(&b, 1, &o);
    CHECK(o.reset == 7 && b.aborts == 1, "a silent peer: reset once, all 7 (got %u, %d)", o.reset,
          b.aborts);
    CHECK(ns >= TCP_LINGER_QUIET_NS && ns < TCP_LINGER_MAX_NS,
          "reset after the quiet time, not at the cap (%lld ns)", (long long)ns);
    CHECK(b.barriers == 1 && !o.barrier_late, "the barrier sent after the reset too (%d)",
          b.barriers);

    struct script c = {.unclosed = 3, .chatty = 1, .answer_after = 0};
    ns = run(&c, 1, &o);
    CHECK(o.reset == 3 && ns >= TCP_LINGER_MAX_NS,
          "a peer that keeps sending but never closes: reset at the cap (%u, %lld ns)", o.reset,
          (long long)ns);

    struct script d = {.unclosed = 0, .answer_after = -1};
    ns = run(&d, 1, &o);
    CHECK(o.reset == 0 && d.barriers == 1 && o.barrier_late && ns >= TCP_LINGER_QUIET_NS &&
              ns < TCP_LINGER_MAX_NS,
          "a barrier never answered: given up after the quiet time, not at the cap, and said "
          "(late %d, %lld ns)",
          o.barrier_late, (long long)ns);

    struct script e = {.unclosed = 0};
    ns = run(&e, 0, &o);
    CHECK(o.reset == 0 && !o.barrier_late && e.rounds > 1 && ns >= TCP_LINGER_SETTLE_NS,
          "no barrier: rounds go on for the settle time (%d rounds, %lld ns)", e.rounds,
          (long long)ns);
    struct script f = {.unclosed = 0, .cannot_barrier = 1, .answer_after = -1};
    ns = run(&f, 1, &o);
    CHECK(o.reset == 0 && !o.barrier_late && f.barriers == 0 && f.rounds > 1 &&
              ns >= TCP_LINGER_SETTLE_NS && ns < TCP_LINGER_QUIET_NS,
          "a barrier that cannot be sent: the settle time instead, nothing said (%d rounds, "
          "%lld ns)",
          f.rounds, (long long)ns);
    return check_done("tcp_linger");
}
