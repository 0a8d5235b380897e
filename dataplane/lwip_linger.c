/* lwip_linger.h: lwIP's active list, counted and emptied. */
#include "lwip_linger.h"

#include <lwip/priv/tcp_priv.h>
#include <lwip/tcp.h>

unsigned lwip_linger_unclosed(void)
{
    unsigned n = 0;
    for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next) n++;
    return n;
}

unsigned lwip_linger_abort(void)
{
    unsigned n = 0;
    /* tcp_abort takes the pcb off the list (and frees it) */
    for (; tcp_active_pcbs; n++) tcp_abort(tcp_active_pcbs);
    return n;
}
