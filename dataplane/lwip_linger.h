/* lwIP's side of tcp_linger.h, for the one lwIP instance of this link namespace or process.
 * A connection whose close has not finished is a pcb on lwIP's active list: every state from
 * SYN-SENT to LAST-ACK (TIME-WAIT pcbs and listeners are on lists of their own), whether the
 * application has closed it or not. lwIP-only header. */
#ifndef STROBE_LWIP_LINGER_H
#define STROBE_LWIP_LINGER_H

/* The pcbs on lwIP's active list now. */
unsigned lwip_linger_unclosed(void);
/* Aborts each of them (tcp_abort: an RST to the peer, the pcb's error callback with
 * ERR_ABRT); returns how many. Registered pcbs must have left lwip_demux.h's table first. */
unsigned lwip_linger_abort(void);

#endif
