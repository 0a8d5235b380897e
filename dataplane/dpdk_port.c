#include "dpdk_port.h"

#include "ts_convert.h"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_epoll.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BURST   32
#define RX_DESC 1024
#define TX_DESC 1024
/* frames waiting for room in the tx ring: a burst (a decode step's chunk for every stream)
 * waits here while the peer drains the ring, instead of being dropped and resent by TCP a
 * retransmission timeout later */
#define TX_BACKLOG 8192
/* a backlog the ring has taken none of for this long is not waited on without sleeping: long
 * enough for a busy peer (one that is writing a decode step of 1,000 chunks) to poll again */
#define TX_STUCK_NS 100000000LL

struct dpdk_port {
    uint16_t port;
    int started;
    struct rte_mempool *pool;
    struct rte_eth_dev_info info;
    struct rte_ether_addr mac;
    int ts_offset;    /* rx timestamp dynfield offset, or -1 */
    uint64_t ts_flag; /* its per-mbuf flag */
    int pmd_is_pcap;  /* net_pcap: the field is the kernel's stamp, microseconds */
    struct ts_converter tsc, nic;
    int nic_clock; /* rte_eth_read_clock works on this port */
    struct rte_mbuf *rx[BURST];
    int nrx;
    uint8_t *linear[BURST];          /* copies of multi-segment frames */
    struct rte_mbuf *tx[TX_BACKLOG]; /* queued, oldest first */
    int ntx;
    int64_t tx_stuck_since; /* when a flush last sent none of a backlog (0: it sent some) */
    int intr_epfd;          /* the rx queue's interrupt fd is in it; -1: no Rx interrupt */
    char intr_missing[96];  /* why not, when intr_epfd is -1 */
};

static int eal_ready;

const char *dpdk_port_driver(const struct dpdk_port *p)
{
    return p->info.driver_name ? p->info.driver_name : "none";
}

void dpdk_port_mac(const struct dpdk_port *p, uint8_t mac[6]) { memcpy(mac, p->mac.addr_bytes, 6); }

void dpdk_port_calibrate(struct dpdk_port *p)
{
    int64_t before = clock_now_ns();
    uint64_t tsc = rte_rdtsc();
    int64_t after = clock_now_ns();
    ts_conv_add(&p->tsc, (int64_t)tsc, before + (after - before) / 2);
    uint64_t nic;
    if (p->nic_clock) {
        before = clock_now_ns();
        if (rte_eth_read_clock(p->port, &nic) == 0) {
            after = clock_now_ns();
            ts_conv_add(&p->nic, (int64_t)nic, before + (after - before) / 2);
        }
    }
}

int dpdk_eal_init(const char *eal_args, char *err, size_t errlen)
{
    if (eal_ready) return 0;
    char *copy = strdup(eal_args ? eal_args : "");
    char *argv[64];
    int argc = 0;
    argv[argc++] = "strobe";
    for (char *tok = strtok(copy, " \t"); tok && argc < 63; tok = strtok(NULL, " \t"))
        argv[argc++] = tok;
    argv[argc] = NULL;
    if (rte_eal_init(argc, argv) < 0) {
        snprintf(err, errlen, "DPDK EAL init failed with --dpdk-args '%s': %s", eal_args,
                 rte_strerror(rte_errno));
        free(copy);
        return -1;
    }
    free(copy);
    eal_ready = 1;
    return 0;
}

int dpdk_port_count(void) { return eal_ready ? (int)rte_eth_dev_count_avail() : 0; }

/* The port id of the index-th port the EAL found. */
static int port_id_of(int index)
{
    uint16_t id;
    int i = 0;
    RTE_ETH_FOREACH_DEV(id)
    {
        if (i++ == index) return id;
    }
    return -1;
}

/* The rx queue's interrupt into an epoll set of the port's own (the worker that sleeps on it
 * is not the thread that opened the port, so not DPDK's per-thread set), tried once: a PMD
 * without one says so in the port's intr_missing. ethdev logs an error for a PMD without Rx
 * interrupts; that is an answer here, so its log is quiet meanwhile. */
static void rx_intr_setup(struct dpdk_port *p, int configured_with_intr)
{
    p->intr_epfd = -1;
    if (!configured_with_intr) {
        snprintf(p->intr_missing, sizeof p->intr_missing, "%s refused Rx interrupts at configure",
                 p->info.driver_name);
        return;
    }
    uint32_t level = (uint32_t)rte_log_get_level(rte_eth_dev_logtype);
    rte_log_set_level(rte_eth_dev_logtype, RTE_LOG_CRIT);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    int rc = epfd < 0 ? -1 : rte_eth_dev_rx_intr_ctl_q(p->port, 0, epfd, RTE_INTR_EVENT_ADD, NULL);
    if (rc == 0) rc = rte_eth_dev_rx_intr_enable(p->port, 0);
    if (rc == 0) rc = rte_eth_dev_rx_intr_disable(p->port, 0);
    rte_log_set_level(rte_eth_dev_logtype, level);
    if (rc == 0) {
        p->intr_epfd = epfd;
        return;
    }
    if (epfd >= 0) close(epfd);
    snprintf(p->intr_missing, sizeof p->intr_missing, "%s has no Rx interrupt%s",
             p->info.driver_name, rc == -ENOTSUP ? "" : " that works here");
}

const char *dpdk_port_rx_intr_missing(const struct dpdk_port *p)
{
    return p->intr_epfd >= 0 ? NULL : p->intr_missing;
}

int dpdk_port_rx_intr_arm(struct dpdk_port *p)
{
    if (p->intr_epfd < 0) return -1;
    return rte_eth_dev_rx_intr_enable(p->port, 0) == 0 ? 0 : -1;
}

int dpdk_port_rx_intr_wait(struct dpdk_port *p, int64_t timeout_ns)
{
    int fired = 0;
    if (timeout_ns > 0) {
        /* epoll_pwait2 for a wait in nanoseconds (rte_epoll_wait counts milliseconds: too
         * coarse for a request due in 300 us); DPDK's own wait, not waiting, then consumes
         * the interrupt the way this PMD's fd needs (an eventfd read, or nothing) */
        struct epoll_event ev;
        struct timespec ts = {(time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000)};
        fired = epoll_pwait2(p->intr_epfd, &ev, 1, &ts, NULL) > 0;
    }
    struct rte_epoll_event done[1];
    if (fired || timeout_ns <= 0) fired |= rte_epoll_wait(p->intr_epfd, done, 1, 0) > 0;
    rte_eth_dev_rx_intr_disable(p->port, 0);
    return fired;
}

struct dpdk_port *dpdk_port_open(int index, int want_rx_intr, char *err, size_t errlen)
{
    int id = port_id_of(index);
    if (id < 0) {
        if (dpdk_port_count() == 0)
            snprintf(err, errlen,
                     "DPDK found no port: give one in --dpdk-args, e.g. "
                     "--vdev=net_af_packet0,iface=veth0 (or bind a NIC to vfio-pci)");
        else
            snprintf(err, errlen, "DPDK has %d port(s); there is no port %d", dpdk_port_count(),
                     index);
        return NULL;
    }
    struct dpdk_port *p = calloc(1, sizeof *p);
    p->port = (uint16_t)id;
    p->ts_offset = -1;
    p->intr_epfd = -1;
    char name[RTE_ETH_NAME_MAX_LEN] = "";
    rte_eth_dev_get_name_by_port(p->port, name);
    int rc = rte_eth_dev_info_get(p->port, &p->info);
    char pool[RTE_MEMPOOL_NAMESIZE];
    snprintf(pool, sizeof pool, "strobe_rx%d", id);
    p->pool = rte_pktmbuf_pool_create(pool, 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                      (int)rte_socket_id());
    if (rc || !p->pool) {
        snprintf(err, errlen, "DPDK port %s: %s", name,
                 rc ? rte_strerror(-rc) : "cannot create the mbuf pool (give EAL more memory, -m)");
        dpdk_port_close(p);
        return NULL;
    }
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof conf);
    conf.intr_conf.rxq = want_rx_intr ? 1 : 0;
    uint16_t rxd = RX_DESC, txd = TX_DESC;
    /* a PMD may refuse Rx interrupts at configure: then the port runs without them */
    rc = rte_eth_dev_configure(p->port, 1, 1, &conf);
    if (rc && conf.intr_conf.rxq) {
        conf.intr_conf.rxq = 0;
        rc = rte_eth_dev_configure(p->port, 1, 1, &conf);
    }
    if (rc || (rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->port, &rxd, &txd)) ||
        (rc = rte_eth_rx_queue_setup(p->port, 0, rxd, rte_eth_dev_socket_id(p->port), NULL,
                                     p->pool)) ||
        (rc = rte_eth_tx_queue_setup(p->port, 0, txd, rte_eth_dev_socket_id(p->port), NULL)) ||
        (rc = rte_eth_dev_start(p->port))) {
        snprintf(err, errlen, "DPDK port %s (%s): configure/queue setup/start failed: %s", name,
                 p->info.driver_name, rte_strerror(rc < 0 ? -rc : rc));
        dpdk_port_close(p);
        return NULL;
    }
    p->started = 1;
    if (want_rx_intr) rx_intr_setup(p, conf.intr_conf.rxq);
    rte_eth_promiscuous_enable(p->port);
    rte_eth_macaddr_get(p->port, &p->mac);
    /* the field may be filled without the offload being advertised (net_pcap): register it
     * and trust each mbuf's flag, not the capability bit */
    p->ts_offset =
        rte_mbuf_dyn_rx_timestamp_register(&p->ts_offset, &p->ts_flag) == 0 ? p->ts_offset : -1;
    if (p->ts_offset >= 0) {
        int bit = rte_mbuf_dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, NULL);
        p->ts_flag = bit >= 0 ? 1ULL << bit : 0;
    }
    p->pmd_is_pcap = strstr(p->info.driver_name, "pcap") != NULL;
    ts_conv_init(&p->tsc, (double)rte_get_tsc_hz());
    uint64_t nic;
    p->nic_clock = rte_eth_read_clock(p->port, &nic) == 0;
    ts_conv_init(&p->nic, 1e9); /* the nominal rate is refined by the fit */
    dpdk_port_calibrate(p);
    dpdk_port_calibrate(p);
    return p;
}

void dpdk_port_clock_describe(const struct dpdk_port *p, char *buf, size_t n)
{
    if (p->pmd_is_pcap)
        snprintf(buf, n, "%s: the PMD's rx timestamp (kernel software stamp, microseconds)",
                 p->info.driver_name);
    else if (p->nic_clock)
        snprintf(buf, n, "%s: NIC clock, drift %.3f ppm, uncertainty %.0f ns", p->info.driver_name,
                 ts_conv_drift_ppm(&p->nic), ts_conv_uncertainty_ns(&p->nic));
    else
        snprintf(buf, n,
                 "%s: TSC at rx burst (no PMD timestamp), drift %.3f ppm, uncertainty %.0f ns",
                 p->info.driver_name, ts_conv_drift_ppm(&p->tsc), ts_conv_uncertainty_ns(&p->tsc));
}

int dpdk_port_rx(struct dpdk_port *p, struct dpdk_frame *frames, int max)
{
    /* a worker thread the EAL did not start has no lcore id, so every mbuf alloc and free
     * (the PMD's included) would go to the pool's shared ring; registered, it gets a cache */
    if (rte_lcore_id() == LCORE_ID_ANY) rte_thread_register();
    if (max > BURST) max = BURST;
    p->nrx = rte_eth_rx_burst(p->port, 0, p->rx, (uint16_t)max);
    if (!p->nrx) return 0;
    int64_t burst_ns = ts_conv_to_ns(&p->tsc, (int64_t)rte_rdtsc());
    for (int i = 0; i < p->nrx; i++) {
        struct rte_mbuf *m = p->rx[i];
        struct dpdk_frame *f = &frames[i];
        f->len = rte_pktmbuf_pkt_len(m);
        if (m->nb_segs == 1) {
            f->data = rte_pktmbuf_mtod(m, const uint8_t *);
        } else {
            p->linear[i] = malloc(f->len); /* never on veth; real NICs with jumbo frames only */
            rte_pktmbuf_read(m, 0, f->len, p->linear[i]);
            f->data = p->linear[i];
        }
        f->t_ns = burst_ns;
        f->src = TS_USERSPACE;
        if (p->ts_offset >= 0 && (m->ol_flags & p->ts_flag)) {
            uint64_t v = *RTE_MBUF_DYNFIELD(m, p->ts_offset, rte_mbuf_timestamp_t *);
            if (p->pmd_is_pcap) {
                f->t_ns = (int64_t)v * 1000;
                f->src = TS_KERNEL;
            } else if (p->nic_clock) {
                f->t_ns = ts_conv_to_ns(&p->nic, (int64_t)v);
                f->src = TS_NIC;
            }
        }
    }
    return p->nrx;
}

void dpdk_port_rx_done(struct dpdk_port *p)
{
    for (int i = 0; i < p->nrx; i++) {
        free(p->linear[i]);
        p->linear[i] = NULL;
    }
    rte_pktmbuf_free_bulk(p->rx, (unsigned)p->nrx);
    p->nrx = 0;
}

void dpdk_port_tx_flush(struct dpdk_port *p)
{
    int sent = 0;
    /* a NIC's full ring drains within microseconds, but memif's or vhost-user's only when the
     * peer's process polls, and a peer that spins the same way on its full ring towards us
     * stalled both (README, vhost-user at 1,000 streams): two tries, then the rest waits for
     * the next flush, which the caller's loop makes without sleeping (dpdk_port_tx_pending) */
    for (int tries = 0; sent < p->ntx && tries < 2; tries++)
        sent += rte_eth_tx_burst(p->port, 0, p->tx + sent, (uint16_t)(p->ntx - sent));
    if (sent && sent < p->ntx)
        memmove(p->tx, p->tx + sent, (size_t)(p->ntx - sent) * sizeof p->tx[0]);
    p->ntx -= sent;
    if (sent || !p->ntx)
        p->tx_stuck_since = 0;
    else if (!p->tx_stuck_since)
        p->tx_stuck_since = clock_now_ns();
}

int dpdk_port_tx_pending(const struct dpdk_port *p)
{
    /* a ring that has taken nothing for TX_STUCK_NS has no peer draining it (a departed memif
     * or vhost-user client): then the caller's idle policy holds again, and the backlog is
     * offered at each wake-up */
    return p->ntx && (!p->tx_stuck_since || clock_now_ns() - p->tx_stuck_since < TX_STUCK_NS);
}

int dpdk_port_tx(struct dpdk_port *p, const void *frame, size_t len)
{
    if (p->ntx == TX_BACKLOG) dpdk_port_tx_flush(p);
    if (p->ntx == TX_BACKLOG) return -1; /* the backlog is full: lwIP keeps the segment */
    struct rte_mbuf *m = rte_pktmbuf_alloc(p->pool);
    char *dst = m ? rte_pktmbuf_append(m, (uint16_t)len) : NULL;
    if (!dst) {
        if (m) rte_pktmbuf_free(m);
        return -1;
    }
    memcpy(dst, frame, len);
    p->tx[p->ntx++] = m;
    if (p->ntx % BURST == 0) dpdk_port_tx_flush(p);
    return 0;
}

void dpdk_port_close(struct dpdk_port *p)
{
    if (!p) return;
    if (p->started) {
        dpdk_port_tx_flush(p);
        rte_pktmbuf_free_bulk(p->tx, (unsigned)p->ntx); /* what the ring never took */
        p->ntx = 0;
        rte_eth_dev_stop(p->port);
    }
    if (p->intr_epfd >= 0) {
        rte_eth_dev_rx_intr_ctl_q(p->port, 0, p->intr_epfd, RTE_INTR_EVENT_DEL, NULL);
        close(p->intr_epfd);
    }
    rte_eth_dev_close(p->port);
    rte_mempool_free(p->pool);
    free(p);
}

void dpdk_eal_cleanup(void)
{
    if (!eal_ready) return;
    rte_eal_cleanup();
    eal_ready = 0;
}
