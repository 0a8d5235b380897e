/* lwip_linger.h: lwIP's active list, counted, emptied, and kicked. */
#include "lwip_linger.h"

#include <lwip/priv/tcp_priv.h>
#include <lwip/tcp.h>

unsigned lwip_linger_unclosed(void)
{
    unsigned n = 0;
    for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next) n++;
    return n;
}

/* lwIP's marks of a refused send: a segment (TF_NAGLEMEMERR, set by tcp_output), an ACK
 * (TF_ACK_NOW, set by tcp_send_empty_ack for its timer to retry) */
static int refused_here(const struct tcp_pcb *pcb)
{
    return (pcb->flags & (TF_NAGLEMEMERR | TF_ACK_NOW)) != 0;
}

void lwip_kick_unsent(int *refused, int64_t now, int64_t *last)
{
    /* now < *last: the clock stepped back */
    if (!*refused || (now >= *last && now - *last < LWIP_KICK_EVERY_NS)) return;
    *refused = 0;
    *last = now;
    /* TIME-WAIT pcbs too: a refused last ACK is retried by no timer of lwIP's */
    struct tcp_pcb *lists[2] = {tcp_active_pcbs, tcp_tw_pcbs};
    for (int l = 0; l < 2; l++)
        for (struct tcp_pcb *pcb = lists[l]; pcb && !*refused; pcb = pcb->next)
            if (refused_here(pcb)) tcp_output(pcb);
}

unsigned lwip_linger_abort(void)
{
    unsigned n = 0;
    /* tcp_abort takes the pcb off the list (and frees it) */
    for (; tcp_active_pcbs; n++) tcp_abort(tcp_active_pcbs);
    return n;
}
