/* Host runtime of the FPGA timestamping tap (hw/): one small API over two backends.
 *   sim:PCAP[,drop-every=N]  the Verilator model of hw/rtl in this process, fed with a pcap
 *                            file's frames at their captured times (the tap's clock is set
 *                            so that tap time = capture time); drop-every loses one record
 *                            in N on the way to the host, for tests
 *   sim:iface=NAME           the same model fed live with every frame an interface sees,
 *                            at the kernel's receive time (root)
 *   xrt:INDEX[,XCLBIN]       an Alveo card through XRT: device, xclbin, the kernel's
 *                            registers and a record ring in host memory
 * Records are decoded (tap_record.h); gaps in their sequence numbers are counted as lost.
 * One thread at a time. */
#ifndef STROBE_TAP_H
#define STROBE_TAP_H
#include "tap_record.h"
#include <stddef.h>
#include <stdint.h>

struct tap;

/* NULL with err set: one sentence naming the backend and what is missing. */
struct tap *tap_open(const char *spec, char *err, size_t errlen);
/* Sets the tap's clock from CLOCK_REALTIME (sim: from the first frame's capture time) and
 * enables records. 0, or -1 with err. */
int tap_start(struct tap *t, char *err, size_t errlen);
/* Up to max records now; 0 when none is ready, -1 when the source is exhausted (sim), -2
 * when it turned out broken (t->why says how, in one sentence; the records before it stand). */
int tap_poll(struct tap *t, struct tap_record *out, int max);
/* Stops the tap emitting records (CTRL.0 = 0); records already made can still be polled. */
void tap_stop(struct tap *t);
void tap_close(struct tap *t);
/* The tap's time now (ns on its own clock) and the host's CLOCK_REALTIME read around it. */
int tap_read_clock(struct tap *t, int64_t *tap_ns, int64_t *host_ns);
/* Records lost (sequence gaps) and received so far. */
uint64_t tap_lost(const struct tap *t);
uint64_t tap_received(const struct tap *t);

/* The backends' table (tap.c dispatches on the spec's prefix). */
struct tap_backend {
    const char *name;
    int (*open)(struct tap *t, const char *options, char *err, size_t errlen);
    int (*start)(struct tap *t, char *err, size_t errlen);
    /* raw 32-byte records; same return convention as tap_poll */
    int (*poll)(struct tap *t, uint8_t (*raw)[32], int max);
    int (*read_clock)(struct tap *t, int64_t *tap_ns, int64_t *host_ns);
    void (*stop)(struct tap *t);
    void (*close)(struct tap *t);
};

struct tap {
    const struct tap_backend *b;
    void *impl;
    uint64_t lost, received;
    int64_t next_seq;
    char why[512]; /* a backend's poll that returned -2: what was wrong and what to do */
};

extern const struct tap_backend tap_backend_sim, tap_backend_xrt;

#endif
