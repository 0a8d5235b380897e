/* The end of a user-space TCP stack's connections before its port goes away (strobe's DPDK
 * transport after a run, strobe-emu's lwIP backend when it stops). A close only starts a
 * connection's end: the FIN, the peer's answer and the last ACK still have to cross the link,
 * and they cross it only while the stack is pumped. A process that closes its ports right after
 * its last tcp_close leaves its peers holding its connections (a FIN never sent, or a last ACK
 * never read, and the peer retransmitting to nobody), and over memif a peer that transmits as
 * its client leaves can crash in DPDK 22.11's net_memif (README, "Both ends in user space:
 * memif"). So the owner pumps until every connection has finished closing, or the peer has
 * been silent for TCP_LINGER_QUIET_NS, or TCP_LINGER_MAX_NS have passed, and resets those that
 * have not (an RST each). Then the peer must still read the last frames (a link such as memif
 * drops what is unread when one end leaves): with a barrier (a frame the peer answers, sent
 * behind all the others) the owner pumps until its answer comes, within the same limits;
 * without one, TCP_LINGER_SETTLE_NS.
 * Runs once, at shutdown. Neutral: no lwIP or DPDK type, the stacks are reached through the
 * callbacks (lwip_linger.h has lwIP's side). */
#ifndef STROBE_TCP_LINGER_H
#define STROBE_TCP_LINGER_H

/* 200 ms without progress (no frame received, no close finished): a close that loses nothing
 * takes two crossings and the peer's reaction: 16 ms for 1,000 connections closed at once over
 * memif, 21 ms over net_af_packet, a few milliseconds more when a loaded machine deschedules a
 * process, so this is several times that; a lost segment needs a retransmission, which neither
 * lwIP (its TCP timer ticks every 500 ms) nor Linux (200 ms minimum RTO) sends sooner, so a
 * longer silence mostly means a peer that has stopped answering. A peer that keeps sending is
 * alive but may be far behind (an emulator under AddressSanitizer on a loaded 2-core machine
 * was seconds behind its schedule when its client left): it gets up to TCP_LINGER_MAX_NS. The
 * barrier's answer gets the same. */
#define TCP_LINGER_QUIET_NS 200000000LL
#define TCP_LINGER_MAX_NS   2000000000LL
/* 20 ms without a barrier: a polling peer reads within a back-off sleep (at most 160 us for
 * strobe-emu), a descheduled one within a few scheduler slices. */
#define TCP_LINGER_SETTLE_NS 20000000LL

struct tcp_linger_stacks {
    void *arg;
    /* One round of every stack: received frames into TCP (their count added to *frames), its
     * timers, transmit flushed. Returns the connections whose close has not finished. */
    unsigned (*round)(void *arg, int *frames);
    /* Resets those connections (an RST each); returns how many. */
    unsigned (*abort)(void *arg);
    /* NULL, or: sends every stack's peer a frame it answers, behind all sent so far (1), or
     * sends nothing when a peer may not answer (0: settle instead); and whether every answer
     * has come (rounds run meanwhile). */
    int (*barrier)(void *arg);
    int (*barrier_done)(void *arg);
};

struct tcp_linger_outcome {
    unsigned reset;   /* connections reset (0: every one closed in time) */
    int barrier_late; /* the barrier's answer had not come: the peer may not have read the
                         last frames */
};

/* Pumps the stacks until every close has finished or the limits, resets the rest, then waits
 * for the barrier (or settles). */
struct tcp_linger_outcome tcp_linger(const struct tcp_linger_stacks *s);

#endif
