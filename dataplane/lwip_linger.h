/* lwIP's side of tcp_linger.h, and the kick that sends what a refusing port left with lwIP,
 * for the one lwIP instance of this link namespace or process.
 * A connection whose close has not finished is a pcb on lwIP's active list: every state from
 * SYN-SENT to LAST-ACK (TIME-WAIT pcbs and listeners are on lists of their own), whether the
 * application has closed it or not. lwIP-only header. */
#ifndef STROBE_LWIP_LINGER_H
#define STROBE_LWIP_LINGER_H
#include <stdint.h>

/* The pcbs on lwIP's active list now. */
unsigned lwip_linger_unclosed(void);
/* Segments and ACKs lwIP holds because the port refused them (a full transmit backlog: a
 * close of 50,000 connections sends 50,000 FINs at once) wait for lwIP's timers, a second or
 * more (a TIME-WAIT pcb's ACK: for ever), unless something calls tcp_output for their pcb.
 * Every LWIP_KICK_EVERY_NS at most while *refused is set (the link output sets it on a
 * refusal), this clears it and calls tcp_output for each active or TIME-WAIT pcb lwIP marked
 * with a refused send, stopping at a new refusal. now: a clock in ns (one that steps back
 * makes the kick due); *last: the previous kick's time. The list must be whole
 * (lwip_demux_flush). */
#define LWIP_KICK_EVERY_NS 10000000LL
void lwip_kick_unsent(int *refused, int64_t now, int64_t *last);
/* Aborts each of them (tcp_abort: an RST to the peer, the pcb's error callback with
 * ERR_ABRT); returns how many. Registered pcbs must have left lwip_demux.h's table first. */
unsigned lwip_linger_abort(void);

#endif
