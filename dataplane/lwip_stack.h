/* The seam between strobe and one worker's lwIP stack. lwIP keeps global state, so each DPDK
 * worker's stack is a copy of the module strobe-lwip.so (lwip_stack.c, tls_layer.c, with
 * liblwip and OpenSSL under them) loaded by transport_dpdk.c with dlmopen into a link
 * namespace of its own: every copy has its own globals. Neutral types only (neither lwIP's
 * nor DPDK's headers): the module reaches its port only through struct lwip_port_table, so
 * no DPDK symbol is in it. Memory the module allocates (connections, pbufs, TLS) is freed by
 * the module: each namespace has its own libc heap. Everything the module is given (options,
 * endpoint) stays owned by the caller and valid while the stack runs. */
#ifndef STROBE_LWIP_STACK_H
#define STROBE_LWIP_STACK_H
#include "dpdk_port.h"
#include "transport.h"
#include "transport_dpdk.h"

/* One port, driven through the main program's dpdk_port.c. */
struct lwip_port_table {
    struct dpdk_port *port;
    int (*rx)(struct dpdk_port *p, struct dpdk_frame *frames, int max);
    void (*rx_done)(struct dpdk_port *p);
    int (*tx)(struct dpdk_port *p, const void *frame, size_t len);
    void (*tx_flush)(struct dpdk_port *p);
    void (*calibrate)(struct dpdk_port *p);
    void (*mac)(const struct dpdk_port *p, uint8_t mac[6]);
    const char *(*driver)(const struct dpdk_port *p);
    int (*rx_intr_arm)(struct dpdk_port *p);
    int (*rx_intr_wait)(struct dpdk_port *p, int64_t timeout_ns);
    int (*tx_pending)(const struct dpdk_port *p);
};

struct lwip_stack_config {
    const struct dpdk_options *o; /* o->local_ips: this worker's own addresses */
    const struct endpoint *ep;
    struct lwip_port_table port;
    enum dpdk_idle idle; /* resolved: interrupt only where the port has Rx interrupts */
    double backoff_us;   /* the first back-off sleep */
};

struct lwip_stack_api {
    /* lwIP, this worker's addresses, and the next hop's MAC resolved by ARP (so a ramp's
     * first SYNs are not lost in lwIP's 10-packet ARP queue). Called once, before the worker
     * starts; the worker's thread owns every later call. NULL with err set: one sentence
     * naming the option at fault or the next hop that did not answer. */
    struct transport_ctx *(*start)(const struct lwip_stack_config *c, char *err, size_t errlen);
    /* The plain or the TLS table, as the endpoint asked. */
    const struct transport_ops *(*ops)(void);
    /* The stack's addresses, space-separated. */
    void (*addresses)(char *buf, size_t n);
    /* For the shutdown's wait (tcp_linger.h), once the worker's thread has stopped and every
     * connection is closed, from the thread that stops the transport: one round of the stack
     * (rx, timers, tx flush), adding the frames received to *frames and returning the
     * connections whose close has not finished; and the reset of those. Both return a count
     * of connections. Then the barrier: an ARP request to the next hop behind everything
     * sent (1; 0 and nothing sent when the next hop's MAC was given, --gateway-mac: such a
     * hop may not answer ARP), and whether its reply has come (the peer has read every frame
     * before it). */
    unsigned (*linger_round)(int *frames);
    unsigned (*linger_abort)(void);
    int (*linger_barrier)(void);
    int (*linger_barrier_done)(void);
};

/* The module's one exported symbol (dlsym name LWIP_STACK_ENTRY). Its name carries the
 * seam's version: change both when struct lwip_stack_api, lwip_stack_config or what they
 * point to changes, so that a module from another build is refused by name instead of being
 * misread (an older strobe-lwip.so installed next to a newer strobe). */
#define LWIP_STACK_ENTRY "strobe_lwip_stack_v3"
const struct lwip_stack_api *strobe_lwip_stack_v3(void);

#endif
