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

void lwip_kick_unsent(int *refused, int64_t now, int64_t *last)
{
    if (!*refused || now - *last < LWIP_KICK_EVERY_NS) return;
    *refused = 0;
    *last = now;
    for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb && !*refused; pcb = pcb->next)
        if (pcb->unsent) tcp_output(pcb);
}

unsigned lwip_linger_abort(void)
{
    unsigned n = 0;
    /* tcp_abort takes the pcb off the list (and frees it) */
    for (; tcp_active_pcbs; n++) tcp_abort(tcp_active_pcbs);
    return n;
}
