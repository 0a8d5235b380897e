/* lwip_demux.h: an open-addressing hash table (linear probing, deletion by backward shift) from
 * four-tuples to pcbs, and the list-head handover around lwIP's input. */
#include "lwip_demux.h"

#include <lwip/priv/tcp_priv.h>
#include <lwip/tcpbase.h>

#include <stdlib.h>
#include <string.h>

#define DEPARTED_MAX 64 /* more in one burst (several ports, held frames): flushed on the way */

struct slot {
    struct lwip_demux_key key;
    struct tcp_pcb *pcb; /* NULL: empty */
};

/* An open-addressing table of four-tuples (pcb NULL: an empty slot). */
struct table {
    struct slot *slots;
    uint32_t mask, count;
};

struct lwip_demux {
    struct table est; /* registered connections, by their four-tuples */
    /* A superset of the four-tuples of lwIP's active and TIME-WAIT pcbs: every pcb created is
     * added (a connect's at registration, a passive open's when its SYN came through here);
     * one is removed only when a looked-up input saw lwIP free its pcb, else when the table
     * is rebuilt from lwIP's lists; so a four-tuple missing from it has no pcb. Its pcb
     * fields only mark slots as used. */
    struct table known;
    uint32_t known_after_rebuild; /* entries the last rebuild found */
    int in_lookup; /* a looked-up input or close runs: tcp_active_pcbs is not the real head */
    /* the known table may be incomplete (no memory, or a TCP frame this file could not read):
     * unknown four-tuples take lwIP's own path until a SYN rebuilds it */
    int syn_off;
    /* Passive opens not yet accepted (SYN_RCVD pcbs unknown_input created), so that the
     * handshake's ACK finds its pcb without a walk. Such a pcb carries embryo_freed as its
     * error callback until the application's accept sets its own: lwIP calls it whenever it
     * frees the pcb (a reset, the SYN_RCVD timeout, an abort), and the table is then rebuilt
     * from the list before its next use, so it never holds a freed pcb. */
    struct table embryo;
    /* Connections the application has closed that lwIP still holds on its active list (their
     * FIN exchange), so that those segments find their pcb without a walk: closing 50,000
     * connections otherwise walked the list for each of their ACKs and FINs, and strobe-emu
     * fell seconds behind. Same lifetime rule as the embryo table: such a pcb carries
     * closing_freed as its error callback, and the table is rebuilt before its next use after
     * lwIP freed one outside a looked-up input (its timers, an abort). */
    struct table closing;
    /* pcbs a looked-up input took off the active list, each with its successor then: still
     * linked from their predecessors until lwip_demux_flush unlinks them all in one walk (one
     * walk each was O(connections) per close: 50,000 closes took seconds) */
    struct departed {
        struct tcp_pcb *pcb, *after;
    } departed[DEPARTED_MAX];
    unsigned ndeparted;
    uintptr_t departed_lo, departed_hi; /* their addresses' range, during a flush */
};

/* Set by embryo_freed and closing_freed: lwIP's instance is this file's (one per link
 * namespace or process). */
static int embryo_stale, closing_stale;

static void embryo_freed(void *arg, err_t err)
{
    (void)arg;
    (void)err;
    embryo_stale = 1;
}

static void closing_freed(void *arg, err_t err)
{
    (void)arg;
    (void)err;
    closing_stale = 1;
}

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

static int table_init(struct table *t)
{
    t->mask = 1023;
    t->count = 0;
    t->slots = calloc(t->mask + 1, sizeof *t->slots);
    return t->slots ? 0 : -1;
}

struct lwip_demux *lwip_demux_new(void)
{
    struct lwip_demux *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    if (table_init(&d->est) || table_init(&d->known) || table_init(&d->embryo) ||
        table_init(&d->closing)) {
        free(d->est.slots);
        free(d->known.slots);
        free(d->embryo.slots);
        free(d->closing.slots);
        free(d);
        return NULL;
    }
    return d;
}

uint32_t lwip_demux_count(const struct lwip_demux *d) { return d ? d->est.count : 0; }

static struct slot *slot_of(const struct table *t, const struct lwip_demux_key *k)
{
    uint32_t i = hash(k) & t->mask;
    while (t->slots[i].pcb && !same(&t->slots[i].key, k)) i = (i + 1) & t->mask;
    return &t->slots[i];
}

static void put(struct table *t, const struct lwip_demux_key *k, struct tcp_pcb *pcb)
{
    struct slot *s = slot_of(t, k);
    if (!s->pcb) t->count++;
    s->key = *k;
    s->pcb = pcb;
}

/* Kept at most half full, so probes stay short. 0, or -1 when it is full and could not grow. */
static int make_room(struct table *t)
{
    if (2 * (t->count + 1) <= t->mask + 1) return 0;
    struct slot *old = t->slots;
    uint32_t n = t->mask + 1;
    struct slot *bigger = calloc(2 * (size_t)n, sizeof *bigger);
    if (!bigger) return -1;
    t->slots = bigger;
    t->mask = 2 * n - 1;
    t->count = 0;
    for (uint32_t i = 0; i < n; i++)
        if (old[i].pcb) put(t, &old[i].key, old[i].pcb);
    free(old);
    return 0;
}

static void key_of(const struct tcp_pcb *pcb, struct lwip_demux_key *key)
{
    key->local_ip = ip_2_ip4(&pcb->local_ip)->addr;
    key->remote_ip = ip_2_ip4(&pcb->remote_ip)->addr;
    key->local_port = pcb->local_port;
    key->remote_port = pcb->remote_port;
}

/* The known table from lwIP's lists: O(pcbs), run when the table has grown to twice what the
 * last rebuild found (so O(1) per passive open, amortised). Without room, everything is
 * "known" (every frame takes lwIP's own path) until a rebuild fits. */
static int known_rebuild(struct lwip_demux *d)
{
    memset(d->known.slots, 0, (d->known.mask + 1) * sizeof *d->known.slots);
    d->known.count = 0;
    struct tcp_pcb *lists[2] = {tcp_active_pcbs, tcp_tw_pcbs};
    for (int l = 0; l < 2; l++)
        for (struct tcp_pcb *pcb = lists[l]; pcb; pcb = pcb->next) {
            struct lwip_demux_key k;
            key_of(pcb, &k);
            if (make_room(&d->known)) return -1;
            put(&d->known, &k, pcb);
        }
    d->known_after_rebuild = d->known.count;
    return 0;
}

/* 0, or -1 when the table could not hold it (the caller then sets syn_off). */
static int known_add(struct lwip_demux *d, const struct lwip_demux_key *k, struct tcp_pcb *pcb)
{
    /* never during a looked-up input (an accept callback): the list then starts at the looked-up
     * pcb, and a rebuild would forget the pcbs ahead of it; the next add outside one does it */
    if (!d->in_lookup && d->known.count >= 2 * d->known_after_rebuild + 1024 && known_rebuild(d))
        return -1;
    if (make_room(&d->known)) return -1;
    put(&d->known, k, pcb);
    return 0;
}

void lwip_demux_add(struct lwip_demux *d, struct tcp_pcb *pcb, struct lwip_demux_key *key)
{
    key_of(pcb, key);
    if (!d) return;
    if (known_add(d, key, pcb)) d->syn_off = 1;
    if (make_room(&d->est)) return; /* lwIP's own walk serves it */
    put(&d->est, key, pcb);
}

static void table_remove(struct table *t, const struct lwip_demux_key *key)
{
    uint32_t i = (uint32_t)(slot_of(t, key) - t->slots);
    if (!t->slots[i].pcb) return;
    t->slots[i].pcb = NULL;
    t->count--;
    /* backward shift: later entries of the probe run move up, so no lookup stops early */
    for (uint32_t j = (i + 1) & t->mask; t->slots[j].pcb; j = (j + 1) & t->mask) {
        uint32_t home = hash(&t->slots[j].key) & t->mask;
        /* j's entry may fill the hole at i when its home is not in (i, j] (cyclically) */
        if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
            t->slots[i] = t->slots[j];
            t->slots[j].pcb = NULL;
            i = j;
        }
    }
}

void lwip_demux_remove(struct lwip_demux *d, const struct lwip_demux_key *key)
{
    if (d) table_remove(&d->est, key);
}

/* Where *stale is set: table t rebuilt from the (whole) active list, the pcbs that carry error
 * callback mark (and, for the embryo table, are still in SYN_RCVD). */
static void refresh_marked(struct lwip_demux *d, struct table *t, tcp_err_fn mark, int *stale)
{
    if (!*stale) return;
    *stale = 0;
    lwip_demux_flush(d);
    memset(t->slots, 0, (t->mask + 1) * sizeof *t->slots);
    t->count = 0;
    for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next)
        if (pcb->errf == mark && (mark != embryo_freed || pcb->state == SYN_RCVD) &&
            !make_room(t)) {
            struct lwip_demux_key k;
            key_of(pcb, &k);
            put(t, &k, pcb);
        }
}

/* An IPv4 frame carrying TCP, or a pbuf chain (not read here). */
static int maybe_tcp(const struct pbuf *p)
{
    const uint8_t *f = p->payload;
    return p->len != p->tot_len ||
           (p->len >= 14 + 20 && f[12] == 0x08 && f[13] == 0x00 && f[23] == 6);
}

/* The four-tuple and flags of an unfragmented IPv4 TCP frame (Ethernet header first); -1 for
 * anything else. */
static int parse(const uint8_t *f, uint16_t len, struct lwip_demux_key *k, uint8_t *flags)
{
    if (len < 14 + 20 || f[12] != 0x08 || f[13] != 0x00) return -1;
    const uint8_t *ip = f + 14;
    unsigned ihl = (ip[0] & 15u) * 4;
    if ((ip[0] >> 4) != 4 || ihl < 20 || ip[9] != 6 || len < 14 + ihl + 20) return -1;
    if ((ip[6] & 0x3f) || ip[7]) return -1; /* a fragment (MF or an offset) */
    const uint8_t *tcp = ip + ihl;
    memcpy(&k->remote_ip, ip + 12, 4);
    memcpy(&k->local_ip, ip + 16, 4);
    k->remote_port = (uint16_t)(tcp[0] << 8 | tcp[1]);
    k->local_port = (uint16_t)(tcp[2] << 8 | tcp[3]);
    *flags = tcp[13];
    return 0;
}

/* The registered pcb of k, when lwIP's walk would stop at it: it is on the active list (a
 * registered connection always is: it leaves the table before its close, or from the error
 * callback when lwIP frees it) and passes the walk's netif test. NULL otherwise. */
static struct tcp_pcb *registered(const struct table *t, const struct lwip_demux_key *k,
                                  const struct netif *ni)
{
    struct tcp_pcb *pcb = slot_of(t, k)->pcb;
    if (!pcb) return NULL;
    if (pcb->netif_idx != NETIF_NO_INDEX && pcb->netif_idx != netif_get_index(ni)) return NULL;
    return pcb;
}

/* What p stands for in the list: itself, or, where it departed, the first successor that has
 * not (never reading a departed pcb, which may be freed). */
static struct tcp_pcb *resolve(const struct lwip_demux *d, struct tcp_pcb *p, unsigned *hits)
{
    if ((uintptr_t)p < d->departed_lo || (uintptr_t)p > d->departed_hi) return p;
    for (unsigned i = 0; p && i < d->ndeparted;)
        if (d->departed[i].pcb == p) {
            p = d->departed[i].after;
            ++*hits;
            i = 0;
        } else {
            i++;
        }
    return p;
}

void lwip_demux_flush(struct lwip_demux *d)
{
    if (!d || !d->ndeparted) return;
    unsigned hits = 0;
    d->departed_lo = UINTPTR_MAX;
    d->departed_hi = 0;
    for (unsigned i = 0; i < d->ndeparted; i++) {
        uintptr_t a = (uintptr_t)d->departed[i].pcb;
        if (a < d->departed_lo) d->departed_lo = a;
        if (a > d->departed_hi) d->departed_hi = a;
    }
    tcp_active_pcbs = resolve(d, tcp_active_pcbs, &hits);
    /* each departed pcb has one link to it: the walk ends when all are found; only the links
     * that change are written */
    for (struct tcp_pcb *q = tcp_active_pcbs; q && hits < d->ndeparted; q = q->next) {
        struct tcp_pcb *next = resolve(d, q->next, &hits);
        if (next != q->next) q->next = next;
    }
    d->ndeparted = 0;
}

/* After a call run with pcb put at the active list's head (head: the real head; after: pcb's
 * successor then): the real head back. When the call took pcb off (TCP_RMV made `after` the
 * head), pcb is left linked, to be unlinked by the next flush. 1 when it did. */
static int restore_head(struct lwip_demux *d, struct tcp_pcb *pcb, const struct lwip_demux_key *k,
                        struct tcp_pcb *head, struct tcp_pcb *after)
{
    int left = tcp_active_pcbs != pcb;
    tcp_active_pcbs = head;
    if (!left) return 0;
    /* freed, not moved to TIME-WAIT (which puts it at that list's head): no pcb holds its
     * four-tuple now, so its later segments skip lwIP's walks (unknown_input) */
    if (tcp_tw_pcbs != pcb) table_remove(&d->known, k);
    /* recorded before a flush: the walk must not pass through it */
    d->departed[d->ndeparted++] = (struct departed){pcb, after};
    if (d->ndeparted == DEPARTED_MAX) lwip_demux_flush(d);
    return 1;
}

/* The segment of a registered pcb: lwIP's walk starts at it, so it finds it first and moves
 * nothing. The input may take pcb off the active list (a reset, the last ACK, TIME-WAIT, an
 * abort): its head is then what followed pcb, and pcb is unlinked from the real list by
 * comparing pointers (never reading pcb, which may be freed) at the next flush, with the
 * burst's others in one walk. The callbacks run during the input must not close other
 * connections. */
static err_t registered_input(struct lwip_demux *d, struct tcp_pcb *pcb,
                              const struct lwip_demux_key *k, struct pbuf *p, struct netif *ni,
                              int *left)
{
    struct tcp_pcb *head = tcp_active_pcbs, *after = pcb->next;
    tcp_active_pcbs = pcb;
    d->in_lookup = 1;
    err_t e = ni->input(p, ni);
    d->in_lookup = 0;
    *left = restore_head(d, pcb, k, head, after);
    return e;
}

/* A segment for a four-tuple lwIP has no pcb of (a SYN, or a late segment of a connection
 * lwIP has freed): lwIP's walks of the active and TIME-WAIT lists would find nothing and it
 * goes to the listeners (or answers with a reset), so the input runs with both lists empty and
 * only the listeners are walked. A passive open then creates one pcb, at the head of the
 * (empty) active list: the real list is put back behind it, and its four-tuple made known. */
static err_t unknown_input(struct lwip_demux *d, struct pbuf *p, struct netif *ni)
{
    struct tcp_pcb *active = tcp_active_pcbs, *tw = tcp_tw_pcbs;
    tcp_active_pcbs = tcp_tw_pcbs = NULL;
    err_t e = ni->input(p, ni);
    struct tcp_pcb *created = tcp_active_pcbs, *last = NULL;
    for (struct tcp_pcb *pcb = created; pcb; pcb = pcb->next) last = pcb;
    if (last) {
        last->next = active;
    } else {
        created = active;
    }
    tcp_active_pcbs = created;
    /* a passive open puts nothing in TIME-WAIT; kept whole whatever came */
    struct tcp_pcb **tw_end = &tcp_tw_pcbs;
    while (*tw_end) tw_end = &(*tw_end)->next;
    *tw_end = tw;
    /* the lists are whole again before a rebuild can read them */
    for (struct tcp_pcb *pcb = created; pcb != active; pcb = pcb->next) {
        struct lwip_demux_key k;
        key_of(pcb, &k);
        if (known_add(d, &k, pcb)) d->syn_off = 1;
        if (pcb->state == SYN_RCVD && !make_room(&d->embryo)) {
            tcp_err(pcb, embryo_freed);
            put(&d->embryo, &k, pcb);
        }
    }
    return e;
}

err_t lwip_demux_input(struct lwip_demux *d, struct pbuf *p, struct netif *ni)
{
    struct lwip_demux_key k;
    uint8_t flags;
    if (!d || p->len != p->tot_len || parse(p->payload, p->len, &k, &flags)) {
        lwip_demux_flush(d);
        /* a TCP segment this lookup cannot read (a fragment lwIP reassembles, a chained pbuf)
         * may free or move a closing or embryo pcb without its error callback, or create a
         * pcb unknown here: both tables are rebuilt before their next use, and the known
         * four-tuples are not trusted until the next SYN rebuilds them */
        if (d && maybe_tcp(p)) {
            if (d->closing.count) closing_stale = 1;
            if (d->embryo.count) embryo_stale = 1;
            d->syn_off = 1;
        }
        return ni->input(p, ni);
    }
    int left;
    struct tcp_pcb *pcb = registered(&d->est, &k, ni);
    if (pcb) return registered_input(d, pcb, &k, p, ni, &left);
    refresh_marked(d, &d->closing, closing_freed, &closing_stale);
    if ((pcb = registered(&d->closing, &k, ni))) {
        err_t e = registered_input(d, pcb, &k, p, ni, &left);
        /* gone: a reset during the input called closing_freed for this pcb alone (the table
         * was whole before it), which leaves the table here */
        if (left) {
            table_remove(&d->closing, &k);
            closing_stale = 0;
        }
        return e;
    }
    /* every path below may walk the list (an accept callback may rebuild the known table; a
     * SYN's pcb may take a departed one's address) */
    lwip_demux_flush(d);
    refresh_marked(d, &d->embryo, embryo_freed, &embryo_stale);
    if ((pcb = registered(&d->embryo, &k, ni))) {
        err_t e = registered_input(d, pcb, &k, p, ni, &left);
        /* accepted (the application registers it), still waiting, or gone */
        if (left || pcb->state != SYN_RCVD) table_remove(&d->embryo, &k);
        return e;
    }
    if ((flags & (TCP_SYN | TCP_ACK | TCP_FIN | TCP_RST)) == TCP_SYN && d->syn_off &&
        known_rebuild(d) == 0)
        d->syn_off = 0;
    if (!d->syn_off && !slot_of(&d->known, &k)->pcb) return unknown_input(d, p, ni);
    return ni->input(p, ni);
}

void lwip_demux_close(struct lwip_demux *d, struct tcp_pcb *pcb, int reset)
{
    /* the states in which lwIP keeps a closed pcb on the active list, for its FIN exchange
     * (it frees a SYN_SENT one at once; an application never holds a SYN_RCVD one) */
    int keeps = pcb->state == ESTABLISHED || pcb->state == CLOSE_WAIT;
    if (reset || !d || !keeps) {
        if (reset || tcp_close(pcb) != ERR_OK) tcp_abort(pcb);
        return;
    }
    struct lwip_demux_key k;
    key_of(pcb, &k);
    /* the close runs with pcb at the list's head, as an input does: if lwIP frees it (a reset
     * for unread data), the head moves and pcb is unlinked by pointer */
    struct tcp_pcb *head = tcp_active_pcbs, *after = pcb->next;
    tcp_active_pcbs = pcb;
    d->in_lookup = 1;
    err_t e = tcp_close(pcb);
    d->in_lookup = 0;
    if (restore_head(d, pcb, &k, head, after)) {
        lwip_demux_flush(d);
        return;
    }
    if (e != ERR_OK) {
        tcp_abort(pcb);
        return;
    }
    tcp_err(pcb, closing_freed);
    if (!make_room(&d->closing)) put(&d->closing, &k, pcb);
}
