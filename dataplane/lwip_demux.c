/* lwip_demux.h: an open-addressing hash table (linear probing, deletion by backward shift) from
 * four-tuples to pcbs, and the list-head handover around lwIP's input. */
#include "lwip_demux.h"

#include <lwip/priv/tcp_priv.h>
#include <lwip/tcpbase.h>

#include <stdlib.h>
#include <string.h>

struct slot {
    struct lwip_demux_key key;
    struct tcp_pcb *pcb; /* NULL: empty */
};

struct lwip_demux {
    struct slot *slots;
    uint32_t mask, count;
};

static uint32_t hash(const struct lwip_demux_key *k)
{
    uint64_t h = ((uint64_t)k->local_ip << 32 | k->remote_ip) * 0x9E3779B97F4A7C15ULL;
    h ^= ((uint64_t)k->local_port << 16 | k->remote_port) * 0xC2B2AE3D27D4EB4FULL;
    return (uint32_t)(h >> 32 ^ h);
}

static int same(const struct lwip_demux_key *a, const struct lwip_demux_key *b)
{
    return a->local_ip == b->local_ip && a->remote_ip == b->remote_ip &&
           a->local_port == b->local_port && a->remote_port == b->remote_port;
}

struct lwip_demux *lwip_demux_new(void)
{
    struct lwip_demux *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->mask = 1023;
    d->slots = calloc(d->mask + 1, sizeof *d->slots);
    if (!d->slots) {
        free(d);
        return NULL;
    }
    return d;
}

uint32_t lwip_demux_count(const struct lwip_demux *d) { return d ? d->count : 0; }

static void put(struct lwip_demux *d, const struct lwip_demux_key *k, struct tcp_pcb *pcb)
{
    uint32_t i = hash(k) & d->mask;
    while (d->slots[i].pcb && !same(&d->slots[i].key, k)) i = (i + 1) & d->mask;
    if (!d->slots[i].pcb) d->count++;
    d->slots[i].key = *k;
    d->slots[i].pcb = pcb;
}

/* Kept at most half full, so probes stay short. */
static void grow(struct lwip_demux *d)
{
    struct slot *old = d->slots;
    uint32_t n = d->mask + 1;
    struct slot *bigger = calloc(2 * (size_t)n, sizeof *bigger);
    if (!bigger) return; /* still correct, only slower */
    d->slots = bigger;
    d->mask = 2 * n - 1;
    d->count = 0;
    for (uint32_t i = 0; i < n; i++)
        if (old[i].pcb) put(d, &old[i].key, old[i].pcb);
    free(old);
}

void lwip_demux_add(struct lwip_demux *d, struct tcp_pcb *pcb, struct lwip_demux_key *key)
{
    key->local_ip = ip_2_ip4(&pcb->local_ip)->addr;
    key->remote_ip = ip_2_ip4(&pcb->remote_ip)->addr;
    key->local_port = pcb->local_port;
    key->remote_port = pcb->remote_port;
    if (!d) return;
    if (2 * (d->count + 1) > d->mask + 1) grow(d);
    if (2 * (d->count + 1) > d->mask + 1) return; /* could not grow: lwIP's own walk serves it */
    put(d, key, pcb);
}

void lwip_demux_remove(struct lwip_demux *d, const struct lwip_demux_key *key)
{
    if (!d) return;
    uint32_t i = hash(key) & d->mask;
    while (d->slots[i].pcb && !same(&d->slots[i].key, key)) i = (i + 1) & d->mask;
    if (!d->slots[i].pcb) return;
    d->slots[i].pcb = NULL;
    d->count--;
    /* backward shift: later entries of the probe run move up, so no lookup stops early */
    for (uint32_t j = (i + 1) & d->mask; d->slots[j].pcb; j = (j + 1) & d->mask) {
        uint32_t home = hash(&d->slots[j].key) & d->mask;
        /* j's entry may fill the hole at i when its home is not in (i, j] (cyclically) */
        if (((j - home) & d->mask) >= ((j - i) & d->mask)) {
            d->slots[i] = d->slots[j];
            d->slots[j].pcb = NULL;
            i = j;
        }
    }
}

/* The pcb an IPv4 TCP frame (Ethernet header first) belongs to, when lwIP would handle it in
 * place: registered, ESTABLISHED, no SYN/FIN/RST, unfragmented, and matching every test of
 * lwIP's own walk (addresses, ports, bound netif). NULL otherwise. */
static struct tcp_pcb *find(const struct lwip_demux *d, const uint8_t *f, uint16_t len,
                            const struct netif *ni)
{
    if (len < 14 + 20 || f[12] != 0x08 || f[13] != 0x00) return NULL;
    const uint8_t *ip = f + 14;
    unsigned ihl = (ip[0] & 15u) * 4;
    if ((ip[0] >> 4) != 4 || ihl < 20 || ip[9] != 6 || len < 14 + ihl + 20) return NULL;
    if ((ip[6] & 0x3f) || ip[7]) return NULL; /* a fragment (MF or an offset) */
    const uint8_t *tcp = ip + ihl;
    if (tcp[13] & (TCP_SYN | TCP_FIN | TCP_RST)) return NULL;
    struct lwip_demux_key k;
    memcpy(&k.remote_ip, ip + 12, 4);
    memcpy(&k.local_ip, ip + 16, 4);
    k.remote_port = (uint16_t)(tcp[0] << 8 | tcp[1]);
    k.local_port = (uint16_t)(tcp[2] << 8 | tcp[3]);
    uint32_t i = hash(&k) & d->mask;
    while (d->slots[i].pcb && !same(&d->slots[i].key, &k)) i = (i + 1) & d->mask;
    struct tcp_pcb *pcb = d->slots[i].pcb;
    if (!pcb || pcb->state != ESTABLISHED) return NULL;
    if (pcb->netif_idx != NETIF_NO_INDEX && pcb->netif_idx != netif_get_index(ni)) return NULL;
    return pcb;
}

err_t lwip_demux_input(struct lwip_demux *d, struct pbuf *p, struct netif *ni)
{
    struct tcp_pcb *pcb = d && p->len == p->tot_len ? find(d, p->payload, p->len, ni) : NULL;
    if (!pcb) return ni->input(p, ni);
    /* lwIP's walk finds pcb first and leaves the list as it was (a pcb found first is not
     * moved); the segment cannot take pcb off the list (see the header), so the real head is
     * still right afterwards */
    struct tcp_pcb *head = tcp_active_pcbs;
    tcp_active_pcbs = pcb;
    err_t e = ni->input(p, ni);
    tcp_active_pcbs = head;
    return e;
}
