/* Constant-time connection lookup in front of lwIP's TCP input. lwIP 2.1 finds the connection
 * of every segment by walking its list of active pcbs (tcp_in.c), moving the one found to the
 * front, and a SYN walks every active and TIME-WAIT pcb before it reaches the listeners:
 * O(connections) per segment (50,000 streams: ~50,000 pcbs touched per segment). Debian's
 * liblwip cannot be rebuilt, so this table takes the common cases off the walk, exactly:
 * - any segment of a registered connection: found by its four-tuple, and lwIP's walk starts at
 *   it (the list head is that pcb during the input call, and the real head is put back after;
 *   a pcb the input took off the list is unlinked from the real list by comparing pointers,
 *   a burst's all in one walk: lwip_demux_flush);
 * - a segment whose four-tuple has no pcb (a SYN, or a late segment of a connection lwIP
 *   freed; a superset of the four-tuples of lwIP's active and TIME-WAIT pcbs is kept, rebuilt
 *   from the lists when it has doubled): lwIP runs with both lists empty, so only the
 *   listeners are walked, and a pcb a SYN creates is put in front of the real list;
 * - a segment of a passive open not yet accepted (a SYN_RCVD pcb that SYN created, the
 *   handshake's ACK): the same start as a registered connection's, from a table of those
 *   pcbs; each carries an error callback of this file until the application's accept sets its
 *   own, so a pcb lwIP frees unaccepted marks the table stale and it is rebuilt from the list
 *   before its next use.
 * - a segment of a connection the application has closed (lwip_demux_close) that lwIP still
 *   holds: the same start, from a table of those pcbs kept as the passive opens' one is.
 * Every other frame (segments of known four-tuples in none of these tables: TIME-WAIT pcbs,
 * connections lwIP freed outside a looked-up input; frames this file cannot read) goes to lwIP
 * untouched. The callbacks lwIP runs during an input must not close
 * other connections (they only record what happened, in strobe and strobe-emu). One table per
 * lwIP instance, used from its one thread. lwIP-only header. */
#ifndef STROBE_LWIP_DEMUX_H
#define STROBE_LWIP_DEMUX_H
#include <lwip/netif.h>
#include <lwip/pbuf.h>
#include <lwip/tcp.h>
#include <stdint.h>

/* A connection's four-tuple, taken when it is added (its pcb may be gone when it is removed). */
struct lwip_demux_key {
    uint32_t local_ip, remote_ip; /* network order, as lwIP keeps them */
    uint16_t local_port, remote_port;
};

struct lwip_demux;

struct lwip_demux *lwip_demux_new(void);
/* Registers pcb (its addresses and ports set: after tcp_connect, or in the accept callback,
 * where it also sets its own error callback)
 * and fills *key for the removal. Every pcb an active open creates must be registered (its
 * four-tuple becomes known); passive opens are seen by lwip_demux_input itself. */
void lwip_demux_add(struct lwip_demux *d, struct tcp_pcb *pcb, struct lwip_demux_key *key);
/* Forgets the connection; call before tcp_close/tcp_abort, and from the error callback (lwIP
 * has freed the pcb then). Unknown keys are ignored. */
void lwip_demux_remove(struct lwip_demux *d, const struct lwip_demux_key *key);
/* Closes pcb for the application (its callbacks already cleared, lwip_demux_remove done):
 * tcp_close, or tcp_abort where that fails or reset is set. While lwIP keeps the pcb for its
 * FIN exchange, that pcb's segments are looked up as a registered connection's, and it
 * carries this file's error callback (set nothing on it after). */
void lwip_demux_close(struct lwip_demux *d, struct tcp_pcb *pcb, int reset);
/* ni->input(p, ni), with the lookup above. Returns what input returns (not ERR_OK: the caller
 * still owns p). A looked-up input that takes its pcb off the list (freed, or into TIME-WAIT)
 * leaves it linked from its predecessor until lwip_demux_flush: after a burst of inputs, call
 * it before anything else uses lwIP (its timers, an open, a walk of its lists). */
err_t lwip_demux_input(struct lwip_demux *d, struct pbuf *p, struct netif *ni);
/* Unlinks the pcbs the inputs since the last flush took off the active list, in one walk of
 * it (none: nothing to do). d may be NULL. */
void lwip_demux_flush(struct lwip_demux *d);
/* Connections registered now. */
uint32_t lwip_demux_count(const struct lwip_demux *d);

#endif
