/* The kernel-bypass transport: lwIP's TCP over DPDK ports, one worker per port. Worker i
 * drives EAL port i with its own lwIP stack (lwip_stack.h: a copy of the module strobe-lwip.so
 * in a link namespace of its own), its own slice of --local-ip and its own connections:
 * nothing is shared between workers. The worker's thread owns every call of its stack after
 * transport_dpdk_start. HTTP and HTTPS (tls_layer.c over lwIP) over IPv4. */
#ifndef STROBE_TRANSPORT_DPDK_H
#define STROBE_TRANSPORT_DPDK_H
#include "transport.h"

struct dpdk_options {
    const char *eal_args;  /* e.g. "--no-huge -m 256 --no-pci --vdev=net_af_packet0,iface=veth0" */
    const char *local_ips; /* "10.0.0.2[,10.0.0.3...]": split among the workers, in order;
                              16,384 connections per address */
    const char *netmask;   /* default 255.255.255.0 */
    const char *gateway;   /* next hop when the target is not on the local subnet, or NULL */
    /* What a worker does when its polls find nothing: "interrupt" (the default, NULL): after
     * idle_spin_us, sleep on the rx queue's interrupt, or back off where the PMD has none;
     * "backoff": sleep idle_backoff_us, doubling while nothing comes; "poll": busy-poll.
     * Without idle, an idle_backoff_us given (>= 0) keeps its older meaning: 0 busy-polls,
     * more backs off. */
    const char *idle;
    double idle_backoff_us;       /* the first back-off sleep; < 0: not given (20) */
    double idle_spin_us;          /* polls go on this long after a frame before a sleep */
    const char *gateway_mac;      /* the next hop's MAC as a static neighbour, or NULL: ARP */
    struct transport_options tls; /* for https:// targets */
    /* Test facility, for kernels without netem: impair received frames before lwIP sees them,
     * "loss=P,dup=P,reorder=P,jitter-ms=MS" (any subset). NULL: none. */
    const char *impair;
};

/* The idle policy in force on a worker (dpdk_options.idle, resolved against its port). */
enum dpdk_idle { DPDK_IDLE_INTERRUPT, DPDK_IDLE_BACKOFF, DPDK_IDLE_POLL };
#define DPDK_DEFAULT_BACKOFF_US 20
#define DPDK_DEFAULT_SPIN_US    10

/* Most workers: glibc has 16 link namespaces, one of them the program's own. */
#define DPDK_MAX_WORKERS 15

/* Call first thing in the process: glibc reserves static TLS for only 4 link namespaces
 * unless GLIBC_TUNABLES=glibc.rtld.nns says more, so for more than 3 workers strobe restarts
 * itself once with that tunable set (the same command line; says so in one line). Returns
 * only when no restart is needed, or with -1 and err set when it failed. */
int transport_dpdk_prepare(int workers, char *err, size_t errlen);

struct dpdk_dataplane; /* the EAL, one port and one lwIP stack per worker */

/* EAL, ports 0..workers-1, one lwIP stack per worker with its addresses, each stack's next
 * hop resolved. With fit_ports, `workers` is an upper bound (the default count) and fewer
 * start when the EAL finds fewer ports; otherwise fewer ports than workers is an error. NULL
 * with err set: one sentence naming the port, the option or the missing resource (fewer ports
 * or addresses than workers). */
struct dpdk_dataplane *transport_dpdk_start(const struct dpdk_options *o, const struct endpoint *ep,
                                            int workers, int fit_ports, char *err, size_t errlen);
/* The workers started: one per port. */
int transport_dpdk_workers(const struct dpdk_dataplane *d);
/* Worker i's transport: its context and its table (plain or TLS, as the endpoint asked). */
struct transport_ctx *transport_dpdk_ctx(struct dpdk_dataplane *d, int worker);
const struct transport_ops *transport_dpdk_ops(struct dpdk_dataplane *d, int worker);
/* After the workers have stopped and closed their connections: runs the stacks until every
 * close has finished and the server has read the last frames (within tcp_linger.h's limits;
 * connections reset at the limit, and a server that had not read everything, are each said in
 * one line on stderr), then closes the ports and the EAL. The lwIP stacks cannot be
 * torn down; the process is expected to exit. */
void transport_dpdk_stop(struct dpdk_dataplane *d);
/* One line: table, driver, each worker's addresses, clock. */
void transport_dpdk_describe(const struct dpdk_dataplane *d, char *buf, size_t n);

#endif
