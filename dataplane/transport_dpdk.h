/* The kernel-bypass transport: lwIP's TCP over a DPDK port (dpdk_port.h). lwIP keeps global
 * state, so one process runs one stack on one worker thread; that thread owns every call
 * after transport_dpdk_start. HTTP and HTTPS (tls_layer.c over lwIP) over IPv4. */
#ifndef STROBE_TRANSPORT_DPDK_H
#define STROBE_TRANSPORT_DPDK_H
#include "transport.h"

struct dpdk_options {
    const char *eal_args;   /* e.g. "--no-huge -m 256 --no-pci --vdev=net_af_packet0,iface=veth0" */
    const char *local_ips;  /* "10.0.0.2[,10.0.0.3...]": 16,384 connections per address */
    const char *netmask;    /* default 255.255.255.0 */
    const char *gateway;    /* next hop when the target is not on the local subnet, or NULL */
    double idle_backoff_us; /* sleep when a poll found nothing; 0 = busy-poll */
    const char *gateway_mac;      /* the next hop's MAC as a static neighbour, or NULL: ARP */
    struct transport_options tls; /* for https:// targets */
    /* Test facility, for kernels without netem: impair received frames before lwIP sees them,
     * "loss=P,dup=P,reorder=P,jitter-ms=MS" (any subset). NULL: none. */
    const char *impair;
};

/* EAL, port, lwIP, addresses, and the next hop's MAC resolved by ARP (so a ramp's first
 * SYNs are not lost in lwIP's 10-packet ARP queue). NULL with err set: one sentence naming
 * the port or the option at fault. */
struct transport_ctx *transport_dpdk_start(const struct dpdk_options *o, const struct endpoint *ep,
                                           char *err, size_t errlen);
/* The plain or the TLS table, as the endpoint of transport_dpdk_start asked. */
const struct transport_ops *transport_dpdk_ops(void);
/* After the worker has stopped: closes every connection still open, the port and the EAL.
 * lwIP itself cannot be torn down; the process is expected to exit. */
void transport_dpdk_stop(void);
/* One line: port, driver, addresses, clock. */
void transport_dpdk_describe(char *buf, size_t n);

#endif
