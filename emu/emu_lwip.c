/* strobe-emu's lwIP backend (emu_io.h) over DPDK ports (dataplane/dpdk_port.h; no DPDK header
 * here: they clash with lwIP's). Every port the EAL finds gets one lwIP netif, all with the
 * --listen address; one listening pcb serves them all and is re-bound to the netif of each
 * frame before lwIP sees it, so an accepted pcb inherits that netif and answers through the
 * port the connection came in on (SO_REUSE cannot give two listeners one address). lwIP runs
 * without its tcpip thread (lwip_init, timers driven here), on the emulator's one thread.
 * With --control-listen, kernel connections are served too, polled between port polls.
 * Unpaced (--step-us 0), writes are sent once per poll rather than one segment each: they
 * fill whole segments, and lwIP's tcp_output, which walks the pcb's unacked segments, runs
 * once per poll per connection rather than once per SSE event. */
#include "emu_io.h"
#include "emu_state.h"

#include "clock.h"
#include "dpdk_port.h"
#include "lwip_demux.h"
#include "lwip_linger.h"
#include "tcp_linger.h"

#include <lwip/etharp.h>
#include <lwip/init.h>
#include <lwip/ip4_addr.h>
#include <lwip/netif.h>
#include <lwip/pbuf.h>
#include <lwip/priv/tcp_priv.h>
#include <lwip/tcp.h>
#include <lwip/timeouts.h>
#include <netif/ethernet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PORTS 16
#define BURST     32

struct lw_conn {
    struct tcp_pcb *pcb;       /* NULL once lwIP has freed it (reset, abort) */
    struct lwip_demux_key key; /* its entry in L.demux, while in_demux */
    int in_demux;
    struct conn *c;
    struct pbuf *rxq; /* received, not yet read */
    int eof, failed, want_out;
    unsigned ready; /* EMU_IO_* pending for the next wait */
    struct lw_conn *next_ready;
    int unsent; /* written since the last poll, not yet given to tcp_output */
    struct lw_conn *next_unsent;
};

static struct {
    struct dpdk_port *port[MAX_PORTS];
    struct netif netif[MAX_PORTS];
    int nports;
    struct tcp_pcb *listener;
    struct lwip_demux *demux;
    int control; /* kernel connections on --control-listen too */
    unsigned polls;
    double backoff_ns;
    struct lw_conn *ready_head, *ready_tail;
    int coalesce;                /* unpaced: tcp_output once per poll (output_written) */
    struct lw_conn *unsent_head; /* connections written since the last poll */
    uint8_t txbuf[2048];
    int tx_refused; /* a port refused a frame since the last kick (lwip_linger.h) */
    int64_t last_kick;
} L;

static void mark(struct lw_conn *lc, unsigned ev)
{
    if (!lc->ready) {
        lc->next_ready = NULL;
        if (L.ready_tail)
            L.ready_tail->next_ready = lc;
        else
            L.ready_head = lc;
        L.ready_tail = lc;
    }
    lc->ready |= ev;
}

static void unmark(struct lw_conn *lc)
{
    for (struct lw_conn **pp = &L.ready_head, *prev = NULL; *pp;
         prev = *pp, pp = &(*pp)->next_ready)
        if (*pp == lc) {
            *pp = lc->next_ready;
            if (L.ready_tail == lc) L.ready_tail = prev;
            return;
        }
}

static void output_later(struct lw_conn *lc)
{
    if (lc->unsent) return;
    lc->unsent = 1;
    lc->next_unsent = L.unsent_head;
    L.unsent_head = lc;
}

static void output_forget(struct lw_conn *lc)
{
    if (!lc->unsent) return;
    for (struct lw_conn **pp = &L.unsent_head; *pp; pp = &(*pp)->next_unsent)
        if (*pp == lc) {
            *pp = lc->next_unsent;
            return;
        }
}

static void output_written(void)
{
    while (L.unsent_head) {
        struct lw_conn *lc = L.unsent_head;
        L.unsent_head = lc->next_unsent;
        lc->unsent = 0;
        if (lc->pcb) tcp_output(lc->pcb);
    }
}

/* ---------- netifs over ports ---------- */

static err_t link_output(struct netif *n, struct pbuf *p)
{
    if (p->tot_len > sizeof L.txbuf) return ERR_BUF;
    pbuf_copy_partial(p, L.txbuf, p->tot_len, 0);
    if (dpdk_port_tx(n->state, L.txbuf, p->tot_len) == 0) return ERR_OK;
    L.tx_refused = 1; /* lwIP keeps the segment: lwip_kick_unsent */
    return ERR_MEM;
}

static err_t netif_setup(struct netif *n)
{
    n->hwaddr_len = 6;
    dpdk_port_mac(n->state, n->hwaddr);
    n->mtu = 1500;
    n->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_LINK_UP;
    n->output = etharp_output;
    n->linkoutput = link_output;
    n->name[0] = 'e';
    n->name[1] = (char)('0' + (n - L.netif) % 10);
    return ERR_OK;
}

/* Frames a port's tx ring had no room for: sent by the next pump, so no sleep before it. */
static int tx_pending(void)
{
    for (int i = 0; i < L.nports; i++)
        if (dpdk_port_tx_pending(L.port[i])) return 1;
    return 0;
}

/* rx of every port into lwIP, timers, tx flush. Returns frames received. A port's ring is
 * drained (up to RX_BURSTS_PER_PUMP bursts) before the timers run: one burst per round let a
 * server busy with its sends on a loaded machine fall behind its rx ring, and a request then
 * waited there, unseen, for tens of milliseconds that its schedule (from its arrival) and its
 * lateness (send - schedule) never showed. A kernel server's rx runs ahead of it likewise. */
#define RX_BURSTS_PER_PUMP 64
static int pump(void)
{
    struct dpdk_frame fr[BURST];
    int total = 0;
    for (int i = 0; i < L.nports; i++) {
        for (int b = 0; b < RX_BURSTS_PER_PUMP; b++) {
            int n = dpdk_port_rx(L.port[i], fr, BURST);
            if (!n) break;
            /* a SYN on this port makes a pcb that sends through this port */
            if (L.listener) tcp_bind_netif(L.listener, &L.netif[i]);
            for (int k = 0; k < n; k++) {
                struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)fr[k].len, PBUF_RAM);
                if (!p) continue;
                pbuf_take(p, fr[k].data, (u16_t)fr[k].len);
                if (lwip_demux_input(L.demux, p, &L.netif[i]) != ERR_OK) pbuf_free(p);
            }
            dpdk_port_rx_done(L.port[i]);
            total += n;
            if (n < BURST) break;
        }
    }
    lwip_demux_flush(L.demux);
    sys_check_timeouts();
    output_written();
    for (int i = 0; i < L.nports; i++) dpdk_port_tx_flush(L.port[i]);
    if (L.tx_refused) {
        lwip_kick_unsent(&L.tx_refused, clock_now_ns(), &L.last_kick);
        for (int i = 0; i < L.nports; i++) dpdk_port_tx_flush(L.port[i]);
    }
    return total;
}

/* ---------- lwIP callbacks: they only record what happened, for the next wait ---------- */

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct lw_conn *lc = arg;
    (void)pcb;
    (void)err;
    if (!lc) {
        if (p) pbuf_free(p);
        return ERR_OK;
    }
    if (!p)
        lc->eof = 1;
    else if (lc->rxq)
        pbuf_cat(lc->rxq, p);
    else
        lc->rxq = p;
    mark(lc, EMU_IO_IN);
    return ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    struct lw_conn *lc = arg;
    (void)pcb;
    (void)len;
    if (lc && lc->want_out) mark(lc, EMU_IO_OUT);
    return ERR_OK;
}

static void forget(struct lw_conn *lc)
{
    if (lc->in_demux) lwip_demux_remove(L.demux, &lc->key);
    lc->in_demux = 0;
}

static void on_err(void *arg, err_t err)
{
    struct lw_conn *lc = arg;
    (void)err;
    if (!lc) return;
    forget(lc);
    lc->pcb = NULL; /* lwIP has freed it */
    lc->failed = 1;
    mark(lc, EMU_IO_IN);
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
    (void)arg;
    if (err != ERR_OK || !pcb) return ERR_VAL;
    struct lw_conn *lc = calloc(1, sizeof *lc);
    if (!lc) return ERR_MEM;
    lc->pcb = pcb;
    lc->c = emu_server_conn_new(emu_io_lwip());
    lc->c->lw = lc;
    tcp_arg(pcb, lc);
    tcp_recv(pcb, on_recv);
    tcp_sent(pcb, on_sent);
    tcp_err(pcb, on_err);
    tcp_nagle_disable(pcb); /* each SSE event leaves when written, as with TCP_NODELAY */
    lwip_demux_add(L.demux, pcb, &lc->key);
    lc->in_demux = 1;
    return ERR_OK;
}

/* ---------- the seam ---------- */

static ssize_t l_send(struct conn *c, const void *buf, size_t len)
{
    struct lw_conn *lc = c->lw;
    if (lc->failed || !lc->pcb) return -1;
    size_t room = tcp_sndbuf(lc->pcb);
    if (len > room) len = room;
    if (len > 0xFFFF) len = 0xFFFF;
    if (!len) return 0;
    err_t e = tcp_write(lc->pcb, buf, (u16_t)len, TCP_WRITE_FLAG_COPY);
    if (e == ERR_MEM) return 0; /* too many segments queued: wait for acks */
    if (e != ERR_OK) return -1;
    if (L.coalesce)
        output_later(lc);
    else
        tcp_output(lc->pcb);
    return (ssize_t)len;
}

static ssize_t l_recv(struct conn *c, void *buf, size_t cap)
{
    struct lw_conn *lc = c->lw;
    if (!lc->rxq) {
        if (lc->failed) return -1;
        return lc->eof ? 0 : EMU_IO_AGAIN;
    }
    size_t n = lc->rxq->tot_len < cap ? lc->rxq->tot_len : cap;
    pbuf_copy_partial(lc->rxq, buf, (u16_t)n, 0);
    lc->rxq = pbuf_free_header(lc->rxq, (u16_t)n);
    if (lc->pcb) tcp_recved(lc->pcb, (u16_t)n);
    return (ssize_t)n;
}

static void l_want_write(struct conn *c, int on)
{
    struct lw_conn *lc = c->lw;
    lc->want_out = on;
    /* room may already be there (acks came while the output was being queued) */
    if (on && lc->pcb && tcp_sndbuf(lc->pcb) > 0) mark(lc, EMU_IO_OUT);
}

static void l_close(struct conn *c, int reset)
{
    struct lw_conn *lc = c->lw;
    forget(lc);
    if (lc->pcb) {
        tcp_arg(lc->pcb, NULL);
        tcp_recv(lc->pcb, NULL);
        tcp_sent(lc->pcb, NULL);
        tcp_err(lc->pcb, NULL);
        /* unread input counts as read: lwIP answers a close with unread data by an RST */
        for (struct pbuf *q = lc->rxq; q; q = q->next) tcp_recved(lc->pcb, q->len);
        lwip_demux_close(L.demux, lc->pcb, reset);
    }
    if (lc->rxq) pbuf_free(lc->rxq);
    unmark(lc);
    output_forget(lc);
    free(lc);
    c->lw = NULL;
}

/* Pumps the ports until a connection has news or `due`; sleeps between empty polls only
 * while the deadline is further than the sleep and its wake-up error. Kernel connections
 * (--control-listen) are what the idle sleep waits on, and are polled every 16th round
 * besides (a syscall each), counted across calls so that busy ports cannot starve them. */
static int l_wait(struct emu_io_event *evs, int max, int64_t due)
{
    int64_t until = due ? due : clock_now_ns() + 200000000LL;
    int n = 0;
    for (;;) {
        int frames = pump();
        if (L.control && !(++L.polls & 15) && (n = emu_io_kernel_poll(evs, max, 0)) > 0) break;
        if (L.ready_head) break;
        int64_t gap = until - clock_now_ns();
        if (gap <= 0) break;
        if (!frames && L.backoff_ns > 0 && gap > L.backoff_ns + SPIN_NS && !tx_pending()) {
            if (!L.control) {
                struct timespec ts = {0, (long)L.backoff_ns};
                nanosleep(&ts, NULL);
            } else if ((n = emu_io_kernel_poll(evs, max, (int64_t)L.backoff_ns)) > 0) {
                break;
            }
        }
    }
    while (L.ready_head && n < max) {
        struct lw_conn *lc = L.ready_head;
        L.ready_head = lc->next_ready;
        if (!L.ready_head) L.ready_tail = NULL;
        evs[n].c = lc->c;
        evs[n].ev = lc->ready;
        lc->ready = 0;
        n++;
    }
    return n;
}

static unsigned linger_round(void *arg, int *frames)
{
    (void)arg;
    *frames += pump();
    return lwip_linger_unclosed();
}

static unsigned linger_abort(void *arg)
{
    (void)arg;
    return lwip_linger_abort();
}

static void l_stop(void)
{
    if (L.listener) tcp_close(L.listener);
    L.listener = NULL;
    /* connections still open are closed (a FIN each; their requests dropped) and every close
     * is let finish before the ports go (tcp_linger.h); accepted pcbs carry their lw_conn */
    for (struct tcp_pcb *pcb = tcp_active_pcbs, *next; pcb; pcb = next) {
        next = pcb->next; /* the close may free pcb */
        struct lw_conn *lc = pcb->callback_arg;
        if (lc) emu_server_conn_close(lc->c);
    }
    unsigned reset =
        L.nports
            ? tcp_linger(&(struct tcp_linger_stacks){NULL, linger_round, linger_abort, NULL, NULL})
                  .reset
            : 0;
    if (reset)
        fprintf(stderr,
                "strobe-emu: %u TCP connection(s) had not finished closing when it stopped (the "
                "client's answer did not come, or a frame was lost) and were reset; a client "
                "that missed the reset keeps them half-open until it times them out.\n",
                reset);
    for (int i = 0; i < L.nports; i++) {
        netif_remove(&L.netif[i]);
        dpdk_port_close(L.port[i]);
    }
    L.nports = 0;
    dpdk_eal_cleanup();
    if (L.control) emu_io_kernel()->stop();
    L.control = 0;
}

static int l_start(const struct emu_params *p)
{
    char err[512];
    ip4_addr_t ip, mask;
    if (!ip4addr_aton(p->listen_host, &ip)) {
        fprintf(stderr,
                "strobe-emu: --transport dpdk needs an IPv4 address in --listen, got '%s'.\n",
                p->listen_host);
        return -1;
    }
    if (dpdk_eal_init(p->dpdk_args, err, sizeof err)) {
        fprintf(stderr, "strobe-emu: %s.\n", err);
        return -1;
    }
    int count = dpdk_port_count();
    if (count < 1 || count > MAX_PORTS) {
        fprintf(stderr,
                "strobe-emu: the EAL found %d DPDK ports; name 1 to %d in --dpdk-args, e.g. "
                "--vdev=net_memif0,role=server,socket=/tmp/emu.sock.\n",
                count, MAX_PORTS);
        dpdk_eal_cleanup();
        return -1;
    }
    L.backoff_ns = p->idle_backoff_us * 1000;
    L.coalesce = emu_params_unpaced(p);
    lwip_init();
    if (!L.demux) L.demux = lwip_demux_new();
    IP4_ADDR(&mask, 255, 255, 255, 0);
    for (int i = 0; i < count; i++) {
        L.port[i] = dpdk_port_open(i, 0, err, sizeof err);
        if (!L.port[i]) {
            fprintf(stderr, "strobe-emu: %s.\n", err);
            l_stop();
            return -1;
        }
        L.nports++;
        netif_add(&L.netif[i], &ip, &mask, IP4_ADDR_ANY4, L.port[i], netif_setup, ethernet_input);
        netif_set_up(&L.netif[i]);
        netif_set_link_up(&L.netif[i]);
    }
    netif_set_default(&L.netif[0]);
    struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
    ip_addr_t any;
    ip_addr_copy_from_ip4(any, ip);
    err_t e = pcb ? tcp_bind(pcb, &any, (u16_t)p->listen_port) : ERR_MEM;
    if (e == ERR_OK) L.listener = tcp_listen(pcb);
    if (!L.listener) {
        fprintf(stderr, "strobe-emu: lwIP cannot listen on %s:%d: %s.\n", p->listen_host,
                p->listen_port, lwip_strerr(e));
        if (pcb) tcp_close(pcb);
        l_stop();
        return -1;
    }
    tcp_accept(L.listener, on_accept);
    int control_port = -1;
    if (p->control_port >= 0) {
        control_port = emu_io_kernel_listen(p->control_host, p->control_port);
        if (control_port < 0) {
            l_stop();
            return -1;
        }
        L.control = 1;
    }
    char ports[512];
    size_t at = 0;
    for (int i = 0; i < L.nports && at < sizeof ports; i++) {
        uint8_t m[6];
        dpdk_port_mac(L.port[i], m);
        at += (size_t)snprintf(ports + at, sizeof ports - at, " %s %02x:%02x:%02x:%02x:%02x:%02x",
                               dpdk_port_driver(L.port[i]), m[0], m[1], m[2], m[3], m[4], m[5]);
    }
    fprintf(stderr, "strobe-emu: listening on %s:%d over DPDK + lwIP (%d port%s:%s)",
            p->listen_host, L.listener->local_port, L.nports, L.nports == 1 ? "" : "s", ports);
    if (L.control) fprintf(stderr, " and on %s:%d (kernel)", p->control_host, control_port);
    fprintf(stderr, ", model %s\n", p->model);
    return 0;
}

static const struct emu_io lwip_io = {"dpdk+lwip", l_start, l_wait,
                                      l_send,      l_recv,  l_want_write,
                                      l_close,     l_stop,  lwip_linger_unclosed};

const struct emu_io *emu_io_lwip(void) { return &lwip_io; }
