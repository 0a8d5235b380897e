/* The DPDK side of the kernel-bypass transport: EAL, one port, one rx and one tx queue, and
 * the receive time of every frame. Neutral types only, because DPDK's headers cannot share
 * a translation unit with lwIP's (platform-notes.md); lwip_stack.c is the other side.
 *
 * Frame timestamps, best first: the PMD's rx timestamp (mbuf dynamic field, trusted only when
 * its per-mbuf flag is set) converted to ns by the port's converter — net_pcap's is the
 * kernel's software stamp in microseconds since the epoch (TS_KERNEL); a NIC clock is mapped
 * by cross-timestamps against the system clock (TS_NIC) — else the TSC read right after the
 * rx burst, mapped the same way (TS_USERSPACE). Used by one thread after init. */
#ifndef STROBE_DPDK_PORT_H
#define STROBE_DPDK_PORT_H
#include "clock.h"
#include <stddef.h>
#include <stdint.h>

struct dpdk_frame {
    const uint8_t *data;
    uint32_t len;
    int64_t t_ns;
    enum ts_source src;
};

/* EAL init with eal_args (split on spaces), then the first port: configured, started,
 * promiscuous. 0, or -1 with err naming the port and the EAL's or the driver's error. */
int dpdk_port_init(const char *eal_args, char *err, size_t errlen);
void dpdk_port_mac(uint8_t mac[6]);
const char *dpdk_port_driver(void);
/* Up to max frames received now (each linear, valid until dpdk_port_rx_done). */
int dpdk_port_rx(struct dpdk_frame *frames, int max);
void dpdk_port_rx_done(void);
/* Queues a copy of one frame; sent by dpdk_port_tx_flush (or when the batch fills).
 * 0, or -1 when no buffer was free (the frame is dropped, as a full NIC queue would). */
int dpdk_port_tx(const void *frame, size_t len);
void dpdk_port_tx_flush(void);
/* A cross-timestamp for the converters; call about once a second. */
void dpdk_port_calibrate(void);
/* One line: the clock behind the stamps, drift and uncertainty. */
void dpdk_port_clock_describe(char *buf, size_t n);
/* Stops and closes the port and releases the EAL (its files under /var/run/dpdk). */
void dpdk_port_close(void);

#endif
