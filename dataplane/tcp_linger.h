/* The end of a user-space TCP stack's connections before its port goes away (strobe's DPDK
 * transport after a run, strobe-emu's lwIP backend when it stops). A close only starts a
 * connection's end: the FIN, the peer's answer and the last ACK still have to cross the link,
 * and they cross it only while the stack is pumped. A process that closes its ports right after
 * its last tcp_close leaves its peers holding its connections (a FIN never sent, or a last ACK
 * never read, and the peer retransmitting to nobody), and over memif a peer that transmits as
 * its client leaves can crash in DPDK 22.11's net_memif (README, "Both ends in user space:
 * memif"). So the owner pumps until every connection has finished closing, within
 * TCP_LINGER_DEADLINE_NS, and resets those that have not (an RST each). Then the peer must
 * still read the last frames (a link such as memif drops what is unread when one end leaves):
 * with a barrier (a frame the peer answers, sent behind all the others) the owner pumps until
 * its answer comes, within TCP_LINGER_DEADLINE_NS again; without one, TCP_LINGER_SETTLE_NS.
 * Runs once, at shutdown. Neutral: no lwIP or DPDK type, the stacks are reached through the
 * callbacks (lwip_linger.h has lwIP's side). */
#ifndef STROBE_TCP_LINGER_H
#define STROBE_TCP_LINGER_H

/* 200 ms: a close that loses nothing takes two crossings and the peer's reaction: 21 ms for
 * 1,000 connections closed at once over net_af_packet, a few milliseconds more when a loaded
 * machine deschedules a process, so this is several times that; a lost segment needs a
 * retransmission, which neither lwIP (its TCP timer ticks every 500 ms) nor Linux (200 ms
 * minimum RTO) sends sooner, so waiting longer would mostly wait for a peer that has stopped
 * answering, and it delays every exit. The barrier's answer gets as long. */
#define TCP_LINGER_DEADLINE_NS 200000000LL
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
    /* NULL, or: sends every stack's peer a frame it answers, behind all sent so far; and
     * whether every answer has come (rounds run meanwhile). */
    void (*barrier)(void *arg);
    int (*barrier_done)(void *arg);
};

/* Pumps the stacks until every close has finished or the deadline, resets the rest, then
 * waits for the barrier (or settles). Returns the connections reset (0: every one closed in
 * time). */
unsigned tcp_linger(const struct tcp_linger_stacks *s);

#endif
