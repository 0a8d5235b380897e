/* The DPDK side of the kernel-bypass transport: the EAL once per process, then any number of
 * ports, each with one rx and one tx queue, its own mbuf pool, clock converters and tx batch,
 * and the receive time of every frame. Neutral types only, because DPDK's headers cannot
 * share a translation unit with lwIP's (platform-notes.md); transport_dpdk.c is the other side.
 *
 * Frame timestamps, best first: the PMD's rx timestamp (mbuf dynamic field, trusted only when
 * its per-mbuf flag is set) converted to ns by the port's converter — net_pcap's is the
 * kernel's software stamp in microseconds since the epoch (TS_KERNEL); a NIC clock is mapped
 * by cross-timestamps against the system clock (TS_NIC) — else the TSC read right after the
 * rx burst, mapped the same way (TS_USERSPACE). A port is used by one thread after open.
 *
 * Rx interrupts, where the PMD has them (rte_eth_dev_rx_intr_enable; virtio-user, tap, most
 * NICs; not net_memif or net_af_packet in DPDK 22.11): an idle worker arms the queue's
 * interrupt, polls once more (a frame that came before arming raises none), and sleeps on the
 * queue's fd until a frame or its deadline. The stamp is still taken at the rx burst. */
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

struct dpdk_port; /* one port (one rx and one tx queue) and its own mbuf pool, clock converter
                     and tx batch; used by one thread after open */

/* EAL init with eal_args (split on spaces), once per process. 0, or -1 with err set. */
int dpdk_eal_init(const char *eal_args, char *err, size_t errlen);
/* Ports the EAL found (vdevs and devices), in port-id order. */
int dpdk_port_count(void);
/* Configures and starts port `index` (0-based among the EAL's ports), promiscuous, one rx and
 * one tx queue, its mbuf pool on the calling thread's NUMA node; with want_rx_intr, the rx
 * queue's interrupt too where the PMD has one (dpdk_port_rx_intr_missing says whether). NULL with
 * err naming the port and the driver's error. */
struct dpdk_port *dpdk_port_open(int index, int want_rx_intr, char *err, size_t errlen);
/* NULL when the port has Rx interrupts, else why not (one phrase, e.g. "net_memif has no Rx
 * interrupt"). */
const char *dpdk_port_rx_intr_missing(const struct dpdk_port *p);
/* Arms the rx queue's interrupt: 0, or -1 when the port has none. Poll once after arming,
 * then call dpdk_port_rx_intr_wait (with 0 when that poll found frames). */
int dpdk_port_rx_intr_arm(struct dpdk_port *p);
/* Sleeps until the armed interrupt fires or timeout_ns passes (0: not at all), consumes the
 * interrupt and disarms. 1 when it fired, 0 on timeout. */
int dpdk_port_rx_intr_wait(struct dpdk_port *p, int64_t timeout_ns);
void dpdk_port_mac(const struct dpdk_port *p, uint8_t mac[6]);
const char *dpdk_port_driver(const struct dpdk_port *p);
/* Up to max frames received now (each linear, valid until dpdk_port_rx_done). */
int dpdk_port_rx(struct dpdk_port *p, struct dpdk_frame *frames, int max);
void dpdk_port_rx_done(struct dpdk_port *p);
/* Queues a copy of one frame; sent by dpdk_port_tx_flush (or each time a burst's worth is
 * queued). Frames the tx ring has no room for wait in the port's backlog (8,192) for the next
 * flush. 0, or -1 when no buffer was free or the backlog is full (nothing queued: the caller
 * keeps the frame, as lwIP keeps a segment its output failed). */
int dpdk_port_tx(struct dpdk_port *p, const void *frame, size_t len);
/* Offers the backlog to the tx ring, a few times; what the ring has no room for stays queued
 * (a peer in user space drains its ring only when its process next polls). */
void dpdk_port_tx_flush(struct dpdk_port *p);
/* Frames are queued that the tx ring has not taken, and it took some within the last
 * 100 ms (a peer is draining it): a worker must not sleep on them. 0 when the backlog is
 * empty, or the ring has taken none of it for 100 ms (a peer gone: the caller sleeps
 * as its idle policy says, and offers the backlog again at each wake-up). */
int dpdk_port_tx_pending(const struct dpdk_port *p);
/* A cross-timestamp for the converters; call about once a second. */
void dpdk_port_calibrate(struct dpdk_port *p);
/* One line: the clock behind the stamps, drift and uncertainty. */
void dpdk_port_clock_describe(const struct dpdk_port *p, char *buf, size_t n);
/* Flushes, stops and closes the port and frees its pool. NULL is ignored. */
void dpdk_port_close(struct dpdk_port *p);
/* After every port is closed: releases the EAL (its files under /var/run/dpdk). */
void dpdk_eal_cleanup(void);

#endif
