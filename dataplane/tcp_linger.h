/* The end of a user-space TCP stack's connections before its port goes away (strobe's DPDK
 * transport after a run, strobe-emu's lwIP backend when it stops). A close only starts a
 * connection's end: the FIN, the peer's answer and the last ACK still have to cross the wire,
 * and they cross it only while the stack is pumped. A process that closes its ports right after
 * its last tcp_close leaves its peers half-open (a FIN unanswered, or never sent, and the peer
 * retransmitting to nobody), and over memif a peer that transmits as its client leaves can crash
 * in DPDK 22.11's net_memif (README, "Both ends in user space: memif"). So the owner pumps until
 * every connection has finished closing, within TCP_LINGER_DEADLINE_NS, resets those that have
 * not (an RST each), and pumps TCP_LINGER_SETTLE_NS more so that the peer reads the last frames.
 * Runs once, at shutdown. Neutral: no lwIP or DPDK type, the stacks are reached through the
 * callbacks (lwip_linger.h has lwIP's side). */
#ifndef STROBE_TCP_LINGER_H
#define STROBE_TCP_LINGER_H

/* 200 ms: a close that loses nothing takes two crossings and the peer's reaction (tens of
 * microseconds over memif, a few milliseconds when a loaded machine deschedules a process), so
 * this is many times that; a lost segment needs a retransmission, which neither lwIP (its TCP
 * timer ticks every 500 ms) nor Linux (200 ms minimum RTO) sends sooner, so waiting longer
 * would mostly wait for a peer that has stopped answering, and it delays every exit. */
#define TCP_LINGER_DEADLINE_NS 200000000LL
/* 20 ms: the peer reads our last ACK (or RST) from the link before it goes away (memif drops
 * what is still in the ring when the client leaves); a polling peer reads within a back-off
 * sleep (at most 160 us for strobe-emu), a descheduled one within a few scheduler slices. */
#define TCP_LINGER_SETTLE_NS 20000000LL

struct tcp_linger_stacks {
    void *arg;
    /* One round of every stack: received frames into TCP (their count added to *frames), its
     * timers, transmit flushed. Returns the connections whose close has not finished. */
    unsigned (*round)(void *arg, int *frames);
    /* Resets those connections (an RST each); returns how many. */
    unsigned (*abort)(void *arg);
};

/* Pumps the stacks until every close has finished or the deadline, resets the rest, settles.
 * Returns the connections reset (0: every one closed in time). */
unsigned tcp_linger(const struct tcp_linger_stacks *s);

#endif
