/* One worker's lwIP stack (lwip_stack.h): the module strobe-lwip.so, loaded once per worker in
 * its own link namespace, so the globals here and in liblwip (X, lwIP's pcbs and timers) are
 * this worker's alone. No DPDK header and no DPDK symbol: the port is a table of pointers into
 * the main program. Frames come from the port's rx; each one's timestamp is published before
 * netif->input, which runs TCP synchronously, so the receive callback knows the stamp of the
 * segment it is given. A connection keeps its received segments in order with their stamps, and
 * recv returns at most one segment at a time, so every byte is stamped with the frame that carried
 * it. */
#include "lwip_stack.h"

#include "lwip_demux.h"
#include "lwip_linger.h"

#include "rng.h"
#include "tls_layer.h"

#include <lwip/etharp.h>
#include <lwip/init.h>
#include <lwip/ip4_addr.h>
#include <lwip/netif.h>
#include <lwip/pbuf.h>
#include <lwip/priv/tcp_priv.h>
#include <lwip/tcp.h>
#include <lwip/timeouts.h>
#include <netif/ethernet.h>

#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_NETIFS 16
#define SEG_RING   64
#define HELD_MAX   4096
/* the IANA dynamic range lwIP uses too: 16,384 connections per source address */
#define PORT_FIRST 0xC000
#define PORT_COUNT 0x4000

struct lw_conn {
    struct tcp_pcb *pcb;
    struct lwip_demux_key key; /* its entry in X->demux, while in_demux */
    int in_demux;
    struct tconn *tc;
    struct pbuf *rxq;           /* received, not yet read */
    uint32_t seg_len[SEG_RING]; /* bytes left of each queued segment, oldest first */
    int64_t seg_t[SEG_RING];
    enum ts_source seg_src[SEG_RING];
    int seg_head, seg_n;
    int connected, eof, failed;
    uint32_t ready; /* EPOLLIN/OUT/ERR pending for the next poll */
    struct lw_conn *next_ready;
};

struct transport_ctx {
    struct netif netif[MAX_NETIFS];
    int nnetif, next_netif;
    uint16_t next_port[MAX_NETIFS];                  /* each address's port cursor (bind_local) */
    uint64_t port_used[MAX_NETIFS][PORT_COUNT / 64]; /* ports each address may still hold */
    ip4_addr_t peer, next_hop;
    uint16_t peer_port;
    enum dpdk_idle idle;
    int64_t spin_ns;    /* --idle-spin-us: polls go on this long after a frame */
    double backoff_us;  /* --idle-backoff-us: the first sleep of an idle spell */
    double sleep_us;    /* the next sleep: doubles while polls stay empty */
    int64_t last_frame; /* when a frame last came in */
    struct lw_conn *ready_head, *ready_tail;
    struct lwip_demux *demux;
    int64_t frame_t;
    enum ts_source frame_src;
    int64_t last_calibration;
    struct tls_ctx *tls; /* https:// targets */
    int use_tls;
    uint8_t static_mac[6];
    int static_mac_set;
    int64_t last_taught;
    /* the shutdown's barrier (stack_linger_barrier): an ARP request sent, its reply seen */
    int barrier_sent, barrier_answered, barrier_unsent;
    /* --dpdk-impair: frames held back (jitter, reordering) until their time */
    double loss, dup, reorder, jitter_ns;
    int impair;
    uint64_t rng;
    struct held {
        int64_t due, t;
        enum ts_source src;
        uint16_t len;
        uint8_t *bytes;
    } held[HELD_MAX];
    int nheld;
    uint64_t impaired_drops, impaired_dups;
    uint8_t txbuf[2048];
    int tx_refused; /* the port refused a frame since the last kick (lwip_linger.h) */
    int64_t last_kick;
    struct lwip_port_table port;
};

static struct transport_ctx *X; /* lwIP is global: one stack per copy of this module */

static int teach_next_hop(const uint8_t mac[6]);

static void mark(struct lw_conn *c, uint32_t ev)
{
    if (!c->ready) {
        c->next_ready = NULL;
        if (X->ready_tail)
            X->ready_tail->next_ready = c;
        else
            X->ready_head = c;
        X->ready_tail = c;
    }
    c->ready |= ev;
}

static err_t link_output(struct netif *n, struct pbuf *p)
{
    (void)n;
    if (p->tot_len > sizeof X->txbuf) return ERR_BUF;
    pbuf_copy_partial(p, X->txbuf, p->tot_len, 0);
    if (X->port.tx(X->port.port, X->txbuf, p->tot_len) == 0) return ERR_OK;
    X->tx_refused = 1; /* lwIP keeps the segment: lwip_kick_unsent */
    return ERR_MEM;
}

static err_t netif_setup(struct netif *n)
{
    n->hwaddr_len = 6;
    X->port.mac(X->port.port, n->hwaddr);
    n->mtu = 1500;
    n->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_LINK_UP;
    n->output = etharp_output;
    n->linkoutput = link_output;
    n->name[0] = 's';
    n->name[1] = (char)('0' + (n - X->netif) % 10);
    return ERR_OK;
}

/* Which of strobe's addresses a frame is for: ARP by its target, IPv4 by its destination;
 * everything else goes to the first netif (lwIP drops what is not its own). */
static struct netif *netif_for(const uint8_t *f, uint32_t len)
{
    if (len >= 42 && f[12] == 0x08 && f[13] == 0x06) {
        for (int i = 0; i < X->nnetif; i++)
            if (!memcmp(f + 38, &X->netif[i].ip_addr, 4)) return &X->netif[i];
    } else if (len >= 34 && f[12] == 0x08 && f[13] == 0x00) {
        for (int i = 0; i < X->nnetif; i++)
            if (!memcmp(f + 30, &X->netif[i].ip_addr, 4)) return &X->netif[i];
    }
    return &X->netif[0];
}

/* An ARP reply from the next hop (to anyone: its answer to the barrier's request). */
static int arp_reply_from_next_hop(const uint8_t *f, uint32_t len)
{
    return len >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[20] == 0 && f[21] == 2 &&
           !memcmp(f + 28, &X->next_hop, 4);
}

/* One frame into lwIP, its stamp published first (input runs TCP synchronously); the
 * shutdown's barrier looks for its answer here, only while it waits for one. */
static void deliver(const uint8_t *data, uint32_t len, int64_t t, enum ts_source src)
{
    if (X->barrier_sent && !X->barrier_answered && arp_reply_from_next_hop(data, len))
        X->barrier_answered = 1;
    struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
    if (!p) return;
    pbuf_take(p, data, (u16_t)len);
    X->frame_t = t;
    X->frame_src = src;
    struct netif *ni = netif_for(data, len);
    if (lwip_demux_input(X->demux, p, ni) != ERR_OK) pbuf_free(p);
}

static double uniform(void) { return (double)(splitmix64(&X->rng) >> 11) / 9007199254740992.0; }

/* The impairment: a held frame arrives later, as if the wire had delayed it, so its stamp
 * moves by the same delay. */
static void hold(const struct dpdk_frame *f, int64_t delay)
{
    if (X->nheld == HELD_MAX) {
        deliver(f->data, f->len, f->t_ns, f->src);
        return;
    }
    struct held *h = &X->held[X->nheld++];
    h->due = clock_now_ns() + delay;
    h->t = f->t_ns + delay;
    h->src = f->src;
    h->len = (uint16_t)f->len;
    h->bytes = malloc(f->len);
    memcpy(h->bytes, f->data, f->len);
}

static void impair(const struct dpdk_frame *f)
{
    if (uniform() < X->loss) {
        X->impaired_drops++;
        return;
    }
    int copies = uniform() < X->dup ? 2 : 1;
    X->impaired_dups += (uint64_t)(copies - 1);
    for (int c = 0; c < copies; c++) {
        int64_t delay = (int64_t)(uniform() * X->jitter_ns);
        /* reordered: held past the frames behind it */
        if (uniform() < X->reorder) delay += (int64_t)X->jitter_ns + 1000000;
        hold(f, delay);
    }
}

static void release_held(void)
{
    int64_t now = clock_now_ns();
    for (;;) {
        int best = -1;
        for (int i = 0; i < X->nheld; i++)
            if (X->held[i].due <= now && (best < 0 || X->held[i].due < X->held[best].due)) best = i;
        if (best < 0) return;
        struct held h = X->held[best];
        X->held[best] = X->held[--X->nheld];
        deliver(h.bytes, h.len, h.t, h.src);
        free(h.bytes);
    }
}

/* rx burst → lwIP, timers, tx flush, and the kick of what the port refused
 * (lwip_kick_unsent), at `now` (the caller's clock read). Returns frames received. */
static int pump(int64_t now)
{
    struct dpdk_frame fr[32];
    int n = X->port.rx(X->port.port, fr, 32);
    for (int i = 0; i < n; i++) {
        if (X->impair)
            impair(&fr[i]);
        else
            deliver(fr[i].data, fr[i].len, fr[i].t_ns, fr[i].src);
    }
    if (n) X->port.rx_done(X->port.port);
    if (X->nheld) release_held();
    lwip_demux_flush(X->demux);
    sys_check_timeouts();
    X->port.tx_flush(X->port.port);
    if (X->tx_refused) {
        lwip_kick_unsent(&X->tx_refused, now, &X->last_kick);
        X->port.tx_flush(X->port.port);
    }
    if (now - X->last_calibration > 1000000000LL) {
        X->port.calibrate(X->port.port);
        X->last_calibration = now;
        if (X->static_mac_set && now - X->last_taught > 60000000000LL) {
            teach_next_hop(X->static_mac);
            X->last_taught = now;
        }
    }
    return n;
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct lw_conn *c = arg;
    (void)pcb;
    (void)err;
    if (!c) {
        if (p) pbuf_free(p);
        return ERR_OK;
    }
    if (!p) {
        c->eof = 1;
        mark(c, EPOLLIN);
        return ERR_OK;
    }
    if (c->seg_n == SEG_RING) {
        /* the reader is far behind: merge into the newest segment (its stamp is later) */
        int last = (c->seg_head + c->seg_n - 1) % SEG_RING;
        c->seg_len[last] += p->tot_len;
        c->seg_t[last] = X->frame_t;
        c->seg_src[last] = X->frame_src;
    } else {
        int at = (c->seg_head + c->seg_n) % SEG_RING;
        c->seg_len[at] = p->tot_len;
        c->seg_t[at] = X->frame_t;
        c->seg_src[at] = X->frame_src;
        c->seg_n++;
    }
    if (c->rxq)
        pbuf_cat(c->rxq, p);
    else
        c->rxq = p;
    mark(c, EPOLLIN);
    return ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    (void)pcb;
    (void)len;
    if (arg) mark(arg, EPOLLOUT);
    return ERR_OK;
}

static void forget(struct lw_conn *c)
{
    if (c->in_demux) lwip_demux_remove(X->demux, &c->key);
    c->in_demux = 0;
}

static void on_err(void *arg, err_t err)
{
    struct lw_conn *c = arg;
    if (!c) return;
    forget(c);
    c->pcb = NULL; /* lwIP has freed it */
    c->failed = 1;
    snprintf(c->tc->err, sizeof c->tc->err, "%s",
             err == ERR_RST    ? "connection reset by the server"
             : err == ERR_ABRT ? "connection aborted"
                               : lwip_strerr(err));
    mark(c, EPOLLIN | EPOLLERR);
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    struct lw_conn *c = arg;
    (void)pcb;
    if (err == ERR_OK) c->connected = 1;
    mark(c, EPOLLOUT);
    return ERR_OK;
}

/* The used-port bits of address `netif` from lwIP's bound, active and TIME-WAIT lists:
 * O(connections), run once the cursor has found every bit set. */
static void ports_rebuild(struct transport_ctx *x, int netif)
{
    memset(x->port_used[netif], 0, sizeof x->port_used[netif]);
    uint32_t ip = netif_ip4_addr(&x->netif[netif])->addr;
    struct tcp_pcb *lists[3] = {tcp_bound_pcbs, tcp_active_pcbs, tcp_tw_pcbs};
    for (int l = 0; l < 3; l++)
        for (struct tcp_pcb *pcb = lists[l]; pcb; pcb = pcb->next) {
            unsigned i = (unsigned)pcb->local_port - PORT_FIRST;
            if (ip_2_ip4(&pcb->local_ip)->addr == ip && i < PORT_COUNT)
                x->port_used[netif][i / 64] |= 1ULL << (i % 64);
        }
}

/* Binds pcb to the address of ni and a free port of that address. lwIP's own choice (port 0)
 * is one counter for the whole stack, so it would stop at 16,384 connections however many
 * addresses there are; a cursor per address gives each of them the full range. tcp_bind
 * checks the port against every pcb of every list (O(connections) per connect); here the
 * used-port bits do it instead: a bit is set at bind and only cleared by a rebuild from lwIP's
 * lists, so a clear bit is a port no pcb of this address holds, and tcp_bind runs with the
 * active and TIME-WAIT lists hidden (it walks them only for that check). */
static err_t bind_local(struct transport_ctx *x, struct tcp_pcb *pcb, int netif)
{
    uint64_t *used = x->port_used[netif];
    for (int pass = 0; pass < 2; pass++) {
        for (int tries = 0; tries < PORT_COUNT; tries++) {
            unsigned i = x->next_port[netif];
            x->next_port[netif] = (uint16_t)((i + 1) % PORT_COUNT);
            if (used[i / 64] & 1ULL << (i % 64)) continue;
            used[i / 64] |= 1ULL << (i % 64);
            struct tcp_pcb *active = tcp_active_pcbs, *tw = tcp_tw_pcbs;
            tcp_active_pcbs = tcp_tw_pcbs = NULL;
            err_t e = tcp_bind(pcb, netif_ip_addr4(&x->netif[netif]), (u16_t)(PORT_FIRST + i));
            tcp_active_pcbs = active;
            tcp_tw_pcbs = tw;
            return e;
        }
        ports_rebuild(x, netif);
    }
    return ERR_USE;
}

static int d_open(struct transport_ctx *x, struct tconn *tc, const struct endpoint *ep)
{
    (void)ep;
    struct lw_conn *c = calloc(1, sizeof *c);
    c->tc = tc;
    tc->impl = c;
    tc->fd = -1;
    c->pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
    int which = x->next_netif;
    struct netif *ni = &x->netif[which];
    x->next_netif = (x->next_netif + 1) % x->nnetif;
    err_t e = c->pcb ? bind_local(x, c->pcb, which) : ERR_MEM;
    if (e == ERR_OK) {
        tcp_arg(c->pcb, c);
        tcp_recv(c->pcb, on_recv);
        tcp_sent(c->pcb, on_sent);
        tcp_err(c->pcb, on_err);
        tcp_nagle_disable(c->pcb);
        ip_addr_t peer;
        ip_addr_copy_from_ip4(peer, x->peer);
        e = tcp_connect(c->pcb, &peer, x->peer_port, on_connected);
    }
    if (e == ERR_OK) {
        lwip_demux_add(x->demux, c->pcb, &c->key);
        c->in_demux = 1;
    }
    if (e != ERR_OK) {
        snprintf(tc->err, sizeof tc->err, "lwIP could not open a connection from %s: %s%s",
                 ip4addr_ntoa(netif_ip4_addr(ni)), lwip_strerr(e),
                 e == ERR_USE ? " (16,384 per source address: give more --local-ip addresses)"
                              : "");
        if (c->pcb) tcp_abort(c->pcb);
        free(c);
        tc->impl = NULL;
        return T_ERROR;
    }
    return 0;
}

static int d_progress(struct tconn *tc)
{
    struct lw_conn *c = tc->impl;
    if (c->failed) return T_ERROR;
    tc->want_write = 0;
    if (c->connected && c->pcb && !tc->local_port) {
        tc->local_port = c->pcb->local_port;
        tc->local_ip = lwip_ntohl(ip_2_ip4(&c->pcb->local_ip)->addr);
    }
    return c->connected ? 1 : T_AGAIN;
}

static ssize_t d_send(struct tconn *tc, const void *buf, size_t len)
{
    struct lw_conn *c = tc->impl;
    if (c->failed || !c->pcb) return T_ERROR;
    size_t room = tcp_sndbuf(c->pcb);
    if (len > room) len = room;
    if (len > 0xFFFF) len = 0xFFFF;
    if (!len) return T_AGAIN;
    err_t e = tcp_write(c->pcb, buf, (u16_t)len, TCP_WRITE_FLAG_COPY);
    if (e == ERR_MEM) return T_AGAIN;
    if (e != ERR_OK) {
        snprintf(tc->err, sizeof tc->err, "lwIP tcp_write: %s", lwip_strerr(e));
        return T_ERROR;
    }
    return (ssize_t)len;
}

static int d_flush(struct tconn *tc)
{
    struct lw_conn *c = tc->impl;
    if (c->failed || !c->pcb) return T_ERROR;
    tcp_output(c->pcb);
    return 1;
}

static ssize_t d_recv(struct tconn *tc, void *buf, size_t cap, struct rx_stamp *st)
{
    struct lw_conn *c = tc->impl;
    if (!c->rxq) {
        if (c->failed) return T_ERROR;
        return c->eof ? 0 : T_AGAIN;
    }
    /* at most the oldest segment: its bytes carry its own frame's stamp */
    size_t n = c->seg_len[c->seg_head];
    if (n > cap) n = cap;
    if (n > c->rxq->tot_len) n = c->rxq->tot_len;
    pbuf_copy_partial(c->rxq, buf, (u16_t)n, 0);
    st->t = c->seg_t[c->seg_head];
    st->src = c->seg_src[c->seg_head];
    st->t_user = clock_now_ns();
    c->seg_len[c->seg_head] -= (uint32_t)n;
    if (!c->seg_len[c->seg_head]) {
        c->seg_head = (c->seg_head + 1) % SEG_RING;
        c->seg_n--;
    }
    c->rxq = pbuf_free_header(c->rxq, (u16_t)n);
    if (c->pcb) tcp_recved(c->pcb, (u16_t)n);
    return (ssize_t)n;
}

/* lwIP's own state, as last pumped: a FIN (eof), a reset (failed) or unread bytes. */
static int d_alive(struct tconn *tc)
{
    struct lw_conn *c = tc->impl;
    return c && c->pcb && !c->failed && !c->eof && !c->rxq;
}

static void d_close(struct tconn *tc)
{
    struct lw_conn *c = tc->impl;
    if (!c) return;
    forget(c);
    if (c->pcb) {
        tcp_arg(c->pcb, NULL);
        tcp_recv(c->pcb, NULL);
        tcp_sent(c->pcb, NULL);
        tcp_err(c->pcb, NULL);
        lwip_demux_close(X->demux, c->pcb, 0);
    }
    if (c->rxq) pbuf_free(c->rxq);
    /* a closed connection may still sit in this poll's ready list: unlink it */
    for (struct lw_conn **pp = &X->ready_head, *prev = NULL; *pp;
         prev = *pp, pp = &(*pp)->next_ready)
        if (*pp == c) {
            *pp = c->next_ready;
            if (X->ready_tail == c) X->ready_tail = prev;
            break;
        }
    free(c);
    tc->impl = NULL;
}

/* The idle policy. A decode step's chunks reach strobe over some tens of microseconds (the
 * server writes them one stream after another), and a sleep costs far more CPU than its length
 * suggests (a context switch each way, ~30 us of CPU on a VM): so after a frame, keep polling
 * for --idle-spin-us. Then, with Rx interrupts, arm the queue's, poll once more (a frame that
 * came before arming raises none) and sleep until a frame comes or the next thing is due (the
 * caller's deadline, lwIP's next timer, a held frame): one wake-up per burst of frames, however
 * long the gap. Without them, sleep --idle-backoff-us, doubling while nothing comes, up to
 * BACKOFF_GROWTH times it, never past the caller's deadline. */
#define BACKOFF_GROWTH 8

/* How long the stack may sleep from `now`: the caller's deadline, lwIP's next timer, the
 * next held (impaired) frame. */
static int64_t sleep_budget(int64_t now, int64_t deadline)
{
    int64_t ns = deadline - now;
    u32_t timer_ms = sys_timeouts_sleeptime();
    if (timer_ms != SYS_TIMEOUTS_SLEEPTIME_INFINITE && (int64_t)timer_ms * 1000000 < ns)
        ns = (int64_t)timer_ms * 1000000;
    for (int i = 0; i < X->nheld; i++)
        if (X->held[i].due - now < ns) ns = X->held[i].due - now;
    return ns > 0 ? ns : 0;
}

/* One idle sleep; frames the re-poll after arming found, else 0. */
static int idle_sleep(struct transport_ctx *x, int64_t now, int64_t deadline)
{
    if (x->idle == DPDK_IDLE_INTERRUPT && x->port.rx_intr_arm(x->port.port) == 0) {
        int frames = pump(now);
        /* news from the re-poll (frames, a connection lwIP's timers made ready, frames its
         * timers queued that the tx ring had no room for): no sleep */
        int64_t ns = frames || x->ready_head || x->port.tx_pending(x->port.port)
                         ? 0
                         : sleep_budget(now, deadline);
        x->port.rx_intr_wait(x->port.port, ns);
        return frames;
    }
    int64_t ns = (int64_t)(x->sleep_us * 1000);
    if (ns > deadline - now) ns = deadline - now;
    struct timespec ts = {0, (long)ns};
    nanosleep(&ts, NULL);
    if (x->sleep_us < x->backoff_us * BACKOFF_GROWTH) x->sleep_us *= 2;
    return 0;
}

static int d_poll(struct transport_ctx *x, struct epoll_event *ev, int max, int64_t wait_ns)
{
    int64_t now = clock_now_ns(), deadline = now + wait_ns;
    for (;;) {
        int frames = pump(now);
        /* frames the tx ring had no room for are sent by the next pump, not after a sleep */
        if (!frames && !x->ready_head && now < deadline && x->idle != DPDK_IDLE_POLL &&
            now - x->last_frame > x->spin_ns && !x->port.tx_pending(x->port.port))
            frames = idle_sleep(x, now, deadline);
        if (frames) {
            x->last_frame = now;
            x->sleep_us = x->backoff_us;
        }
        if (x->ready_head || now >= deadline) break;
        now = clock_now_ns();
    }
    int n = 0;
    while (x->ready_head && n < max) {
        struct lw_conn *c = x->ready_head;
        x->ready_head = c->next_ready;
        if (!x->ready_head) x->ready_tail = NULL;
        ev[n].events = c->ready;
        ev[n].data.ptr = c->tc->owner;
        c->ready = 0;
        n++;
    }
    return n;
}

static const struct transport_ops dpdk_ops = {"dpdk+lwip", d_open,  d_progress, d_send,  d_flush,
                                              d_recv,      d_close, d_poll,     d_alive, 0};

static int d_tls_open(struct transport_ctx *x, struct tconn *c, const struct endpoint *ep)
{
    return tls_layer_open(x->tls, &dpdk_ops, x, c, ep);
}

static const struct transport_ops dpdk_tls_ops = {"dpdk+lwip+tls",    d_tls_open,
                                                  tls_layer_progress, tls_layer_send,
                                                  tls_layer_flush,    tls_layer_recv,
                                                  tls_layer_close,    d_poll,
                                                  tls_layer_alive,    0};

static const struct transport_ops *stack_ops(void)
{
    return X && X->use_tls ? &dpdk_tls_ops : &dpdk_ops;
}

/* A static neighbour without lwIP's static-entry option (Debian's build lacks it): an ARP
 * reply from the next hop, written as if it had arrived on each address's netif (lwIP keeps
 * ARP entries per netif), teaches lwIP the MAC; it is taught again every minute, before
 * lwIP's entries would age out. */
static int teach_next_hop(const uint8_t mac[6])
{
    for (int i = 0; i < X->nnetif; i++) {
        uint8_t f[42];
        struct netif *ni = &X->netif[i];
        memcpy(f, ni->hwaddr, 6);
        memcpy(f + 6, mac, 6);
        f[12] = 0x08, f[13] = 0x06;                       /* ARP */
        f[14] = 0, f[15] = 1, f[16] = 0x08, f[17] = 0x00; /* Ethernet, IPv4 */
        f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 2;       /* reply */
        memcpy(f + 22, mac, 6);
        memcpy(f + 28, &X->next_hop, 4);
        memcpy(f + 32, ni->hwaddr, 6);
        memcpy(f + 38, netif_ip4_addr(ni), 4);
        struct pbuf *p = pbuf_alloc(PBUF_RAW, sizeof f, PBUF_RAM);
        if (!p) return -1;
        pbuf_take(p, f, sizeof f);
        if (ni->input(p, ni) != ERR_OK) pbuf_free(p);
    }
    return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return -1;
    for (int i = 0; i < 6; i++) {
        if (v[i] > 255) return -1;
        mac[i] = (uint8_t)v[i];
    }
    return 0;
}

/* Whether every address's netif knows the next hop's MAC (lwIP keeps ARP entries per netif:
 * one learnt on the first address does not serve the others' SYNs). */
static int next_hop_known(void)
{
    for (int i = 0; i < X->nnetif; i++) {
        struct eth_addr *mac;
        const ip4_addr_t *ip;
        if (etharp_find_addr(&X->netif[i], &X->next_hop, &mac, &ip) < 0) return 0;
    }
    return 1;
}

/* ARP for the next hop from every address before any connection, waiting up to 3 s. */
static int resolve_next_hop(char *err, size_t errlen)
{
    if (X->static_mac_set) {
        teach_next_hop(X->static_mac);
        if (next_hop_known()) return 0;
        snprintf(err, errlen, "lwIP did not take --gateway-mac for %s", ip4addr_ntoa(&X->next_hop));
        return -1;
    }
    int64_t until = clock_now_ns() + 3000000000LL;
    int64_t last_req = 0;
    while (clock_now_ns() < until) {
        if (clock_now_ns() - last_req > 200000000LL) {
            for (int i = 0; i < X->nnetif; i++) etharp_request(&X->netif[i], &X->next_hop);
            last_req = clock_now_ns();
        }
        pump(clock_now_ns());
        if (next_hop_known()) return 0;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    snprintf(err, errlen,
             "no ARP reply from %s on DPDK port %s within 3 s: check the link, "
             "--local-ip and --gateway",
             ip4addr_ntoa(&X->next_hop), X->port.driver(X->port.port));
    return -1;
}

static struct transport_ctx *stack_start(const struct lwip_stack_config *c, char *err,
                                         size_t errlen)
{
    const struct dpdk_options *o = c->o;
    const struct endpoint *ep = c->ep;
    if (X) {
        snprintf(err, errlen,
                 "this copy of the lwIP module runs a stack already (load one per worker)");
        return NULL;
    }
    if (ep->addr.ss_family != AF_INET) {
        snprintf(err, errlen, "the DPDK transport speaks IPv4 only; %s resolved to %s", ep->host,
                 ep->addr_text);
        return NULL;
    }
    if (!o->local_ips || !*o->local_ips) {
        snprintf(err, errlen,
                 "--transport dpdk needs --local-ip ADDRESS[,ADDRESS...] for strobe's own stack");
        return NULL;
    }
    struct tls_ctx *tls = NULL;
    /* this namespace's OpenSSL must not clean up at exit: its cleanup runs from the program's
     * exit after the worker threads that used it are gone, and crashes there */
    if (ep->tls) OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT, NULL);
    if (ep->tls && !(tls = tls_ctx_new(&o->tls, err, errlen))) return NULL;
    X = calloc(1, sizeof *X);
    X->port = c->port;
    X->tls = tls;
    X->use_tls = ep->tls;
    X->idle = c->idle;
    X->spin_ns = (int64_t)(o->idle_spin_us * 1000);
    X->backoff_us = c->backoff_us;
    X->sleep_us = c->backoff_us;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ep->addr;
    memcpy(&X->peer, &sin->sin_addr, 4);
    X->peer_port = (uint16_t)ep->port;
    ip4_addr_t mask, gw;
    if (!ip4addr_aton(o->netmask ? o->netmask : "255.255.255.0", &mask) ||
        (o->gateway && !ip4addr_aton(o->gateway, &gw))) {
        snprintf(err, errlen, "--netmask or --gateway is not an IPv4 address");
        goto fail;
    }
    if (!o->gateway) ip4_addr_set_zero(&gw);
    lwip_init();
    X->demux = lwip_demux_new();
    char *list = strdup(o->local_ips);
    for (char *a = strtok(list, ","); a; a = strtok(NULL, ",")) {
        ip4_addr_t ip;
        if (X->nnetif == MAX_NETIFS || !ip4addr_aton(a, &ip)) {
            snprintf(err, errlen, "--local-ip '%s' is not an IPv4 address (at most %d addresses)",
                     a, MAX_NETIFS);
            free(list);
            goto fail;
        }
        struct netif *ni = &X->netif[X->nnetif++];
        netif_add(ni, &ip, &mask, &gw, NULL, netif_setup, ethernet_input);
        netif_set_up(ni);
        netif_set_link_up(ni);
    }
    free(list);
    netif_set_default(&X->netif[0]);
    X->next_hop = ip4_addr_netcmp(&X->peer, netif_ip4_addr(&X->netif[0]), &mask) ? X->peer : gw;
    if (ip4_addr_isany_val(X->next_hop)) {
        snprintf(err, errlen, "the target %s is not on --local-ip's subnet: give --gateway",
                 ep->addr_text);
        goto fail;
    }
    if (o->impair && *o->impair) {
        char *spec = strdup(o->impair);
        for (char *kv = strtok(spec, ","); kv; kv = strtok(NULL, ",")) {
            double v;
            char key[32];
            if (sscanf(kv, "%31[^=]=%lf", key, &v) != 2 || v < 0 ||
                (strcmp(key, "jitter-ms") && v > 1) ||
                (strcmp(key, "loss") && strcmp(key, "dup") && strcmp(key, "reorder") &&
                 strcmp(key, "jitter-ms"))) {
                snprintf(err, errlen,
                         "--dpdk-impair '%s': give loss=P,dup=P,reorder=P,jitter-ms=MS "
                         "(P between 0 and 1)",
                         o->impair);
                free(spec);
                goto fail;
            }
            if (!strcmp(key, "loss"))
                X->loss = v;
            else if (!strcmp(key, "dup"))
                X->dup = v;
            else if (!strcmp(key, "reorder"))
                X->reorder = v;
            else
                X->jitter_ns = v * 1e6;
        }
        free(spec);
        X->impair = 1;
        X->rng = 0x5eed;
    }
    if (o->gateway_mac) {
        if (parse_mac(o->gateway_mac, X->static_mac)) {
            snprintf(err, errlen, "--gateway-mac '%s' is not a MAC address like 02:00:00:00:00:01",
                     o->gateway_mac);
            goto fail;
        }
        X->static_mac_set = 1;
        X->last_taught = clock_now_ns();
    }
    if (resolve_next_hop(err, errlen)) goto fail;
    return X;
fail:
    return NULL;
}

static void stack_addresses(char *buf, size_t n)
{
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; X && i < X->nnetif && at < n; i++)
        at += (size_t)snprintf(buf + at, n - at, "%s%s", i ? " " : "",
                               ip4addr_ntoa(netif_ip4_addr(&X->netif[i])));
}

/* The barrier's ARP request; a full port refuses it: sent again by the rounds
 * (stack_linger_round). */
static void send_barrier(void)
{
    X->barrier_unsent = etharp_request(&X->netif[0], &X->next_hop) != ERR_OK;
    X->port.tx_flush(X->port.port);
}

static unsigned stack_linger_round(int *frames)
{
    *frames += pump(clock_now_ns());
    if (X->barrier_unsent) send_barrier();
    return lwip_linger_unclosed();
}

/* An ARP request to the next hop, queued behind every frame sent so far: the peer reads its
 * link in order, so its reply says it has read them all (the last ACKs and resets). Not sent
 * to a next hop whose MAC was given: it may not answer ARP at all. */
static int stack_linger_barrier(void)
{
    if (X->static_mac_set) return 0;
    X->barrier_sent = 1;
    X->barrier_answered = 0;
    send_barrier();
    return 1;
}

static int stack_linger_barrier_done(void) { return X->barrier_answered; }

__attribute__((visibility("default"))) const struct lwip_stack_api *strobe_lwip_stack_v3(void)
{
    static const struct lwip_stack_api api = {stack_start,
                                              stack_ops,
                                              stack_addresses,
                                              stack_linger_round,
                                              lwip_linger_abort,
                                              stack_linger_barrier,
                                              stack_linger_barrier_done};
    return &api;
}
