#include "dpdk_port.h"

#include "ts_convert.h"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BURST   32
#define RX_DESC 1024
#define TX_DESC 1024

static struct {
    int ready;
    uint16_t port;
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
    uint8_t *linear[BURST]; /* copies of multi-segment frames */
    struct rte_mbuf *tx[BURST];
    int ntx;
} P = {.ts_offset = -1};

const char *dpdk_port_driver(void) { return P.info.driver_name ? P.info.driver_name : "none"; }
void dpdk_port_mac(uint8_t mac[6]) { memcpy(mac, P.mac.addr_bytes, 6); }

void dpdk_port_calibrate(void)
{
    int64_t before = clock_now_ns();
    uint64_t tsc = rte_rdtsc();
    int64_t after = clock_now_ns();
    ts_conv_add(&P.tsc, (int64_t)tsc, before + (after - before) / 2);
    uint64_t nic;
    if (P.nic_clock) {
        before = clock_now_ns();
        if (rte_eth_read_clock(P.port, &nic) == 0) {
            after = clock_now_ns();
            ts_conv_add(&P.nic, (int64_t)nic, before + (after - before) / 2);
        }
    }
}

int dpdk_port_init(const char *eal_args, char *err, size_t errlen)
{
    if (P.ready) return 0;
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
    if (rte_eth_dev_count_avail() == 0) {
        snprintf(err, errlen,
                 "DPDK found no port: give one in --dpdk-args, e.g. "
                 "--vdev=net_af_packet0,iface=veth0 (or bind a NIC to vfio-pci)");
        return -1;
    }
    P.port = 0;
    while (!rte_eth_dev_is_valid_port(P.port)) P.port++;
    char name[RTE_ETH_NAME_MAX_LEN] = "";
    rte_eth_dev_get_name_by_port(P.port, name);
    int rc = rte_eth_dev_info_get(P.port, &P.info);
    P.pool = rte_pktmbuf_pool_create("strobe_rx", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                     (int)rte_socket_id());
    if (rc || !P.pool) {
        snprintf(err, errlen, "DPDK port %s: %s", name,
                 rc ? rte_strerror(-rc) : "cannot create the mbuf pool (give EAL more memory, -m)");
        return -1;
    }
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof conf);
    uint16_t rxd = RX_DESC, txd = TX_DESC;
    if ((rc = rte_eth_dev_configure(P.port, 1, 1, &conf)) ||
        (rc = rte_eth_dev_adjust_nb_rx_tx_desc(P.port, &rxd, &txd)) ||
        (rc =
             rte_eth_rx_queue_setup(P.port, 0, rxd, rte_eth_dev_socket_id(P.port), NULL, P.pool)) ||
        (rc = rte_eth_tx_queue_setup(P.port, 0, txd, rte_eth_dev_socket_id(P.port), NULL)) ||
        (rc = rte_eth_dev_start(P.port))) {
        snprintf(err, errlen, "DPDK port %s (%s): configure/queue setup/start failed: %s", name,
                 P.info.driver_name, rte_strerror(rc < 0 ? -rc : rc));
        return -1;
    }
    rte_eth_promiscuous_enable(P.port);
    rte_eth_macaddr_get(P.port, &P.mac);
    /* the field may be filled without the offload being advertised (net_pcap): register it
     * and trust each mbuf's flag, not the capability bit */
    P.ts_offset =
        rte_mbuf_dyn_rx_timestamp_register(&P.ts_offset, &P.ts_flag) == 0 ? P.ts_offset : -1;
    if (P.ts_offset >= 0) {
        int bit = rte_mbuf_dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, NULL);
        P.ts_flag = bit >= 0 ? 1ULL << bit : 0;
    }
    P.pmd_is_pcap = strstr(P.info.driver_name, "pcap") != NULL;
    ts_conv_init(&P.tsc, (double)rte_get_tsc_hz());
    uint64_t nic;
    P.nic_clock = rte_eth_read_clock(P.port, &nic) == 0;
    ts_conv_init(&P.nic, 1e9); /* the nominal rate is refined by the fit */
    dpdk_port_calibrate();
    dpdk_port_calibrate();
    P.ready = 1;
    return 0;
}

void dpdk_port_clock_describe(char *buf, size_t n)
{
    if (P.pmd_is_pcap)
        snprintf(buf, n, "%s: the PMD's rx timestamp (kernel software stamp, microseconds)",
                 P.info.driver_name);
    else if (P.nic_clock)
        snprintf(buf, n, "%s: NIC clock, drift %.3f ppm, uncertainty %.0f ns", P.info.driver_name,
                 ts_conv_drift_ppm(&P.nic), ts_conv_uncertainty_ns(&P.nic));
    else
        snprintf(buf, n,
                 "%s: TSC at rx burst (no PMD timestamp), drift %.3f ppm, uncertainty %.0f ns",
                 P.info.driver_name, ts_conv_drift_ppm(&P.tsc), ts_conv_uncertainty_ns(&P.tsc));
}

int dpdk_port_rx(struct dpdk_frame *frames, int max)
{
    if (max > BURST) max = BURST;
    P.nrx = rte_eth_rx_burst(P.port, 0, P.rx, (uint16_t)max);
    if (!P.nrx) return 0;
    int64_t burst_ns = ts_conv_to_ns(&P.tsc, (int64_t)rte_rdtsc());
    for (int i = 0; i < P.nrx; i++) {
        struct rte_mbuf *m = P.rx[i];
        struct dpdk_frame *f = &frames[i];
        f->len = rte_pktmbuf_pkt_len(m);
        if (m->nb_segs == 1) {
            f->data = rte_pktmbuf_mtod(m, const uint8_t *);
        } else {
            P.linear[i] = malloc(f->len); /* never on veth; real NICs with jumbo frames only */
            rte_pktmbuf_read(m, 0, f->len, P.linear[i]);
            f->data = P.linear[i];
        }
        f->t_ns = burst_ns;
        f->src = TS_USERSPACE;
        if (P.ts_offset >= 0 && (m->ol_flags & P.ts_flag)) {
            uint64_t v = *RTE_MBUF_DYNFIELD(m, P.ts_offset, rte_mbuf_timestamp_t *);
            if (P.pmd_is_pcap) {
                f->t_ns = (int64_t)v * 1000;
                f->src = TS_KERNEL;
            } else if (P.nic_clock) {
                f->t_ns = ts_conv_to_ns(&P.nic, (int64_t)v);
                f->src = TS_NIC;
            }
        }
    }
    return P.nrx;
}

void dpdk_port_rx_done(void)
{
    for (int i = 0; i < P.nrx; i++) {
        free(P.linear[i]);
        P.linear[i] = NULL;
    }
    rte_pktmbuf_free_bulk(P.rx, (unsigned)P.nrx);
    P.nrx = 0;
}

void dpdk_port_tx_flush(void)
{
    int sent = 0;
    /* a full tx ring drains within microseconds; a few retries, then the rest is dropped */
    for (int tries = 0; sent < P.ntx && tries < 100; tries++)
        sent += rte_eth_tx_burst(P.port, 0, P.tx + sent, (uint16_t)(P.ntx - sent));
    if (sent < P.ntx) {
        rte_pktmbuf_free_bulk(P.tx + sent, (unsigned)(P.ntx - sent));
    }
    P.ntx = 0;
}

int dpdk_port_tx(const void *frame, size_t len)
{
    struct rte_mbuf *m = rte_pktmbuf_alloc(P.pool);
    char *dst = m ? rte_pktmbuf_append(m, (uint16_t)len) : NULL;
    if (!dst) {
        if (m) rte_pktmbuf_free(m);
        return -1;
    }
    memcpy(dst, frame, len);
    P.tx[P.ntx++] = m;
    if (P.ntx == BURST) dpdk_port_tx_flush();
    return 0;
}

void dpdk_port_close(void)
{
    if (!P.ready) return;
    dpdk_port_tx_flush();
    rte_eth_dev_stop(P.port);
    rte_eth_dev_close(P.port);
    rte_mempool_free(P.pool);
    rte_eal_cleanup();
    P.ready = 0;
}
