/* Host runtime of the FPGA timestamping tap (hw/): one small API over two backends.
 *   sim:PCAP[,drop-every=N]  the Verilator model of hw/rtl in this process, fed with a pcap
 *                            file's frames at their captured times (the tap's clock is set
 *                            so that tap time = capture time); drop-every loses one record
 *                            in N on the way to the host, for tests
 *   sim:iface=NAME[,drop-every=N]  the same model fed live with every frame an interface
 *                            sees, at the kernel's receive time (root)
 *   xrt[:INDEX[,XCLBIN]]     an Alveo card through XRT (device 0 when no INDEX): device,
 *                            xclbin, the kernel's registers and a record ring in host memory
 * Records are decoded (tap_record.h); gaps in their sequence numbers are counted as lost.
 * One thread at a time. */
#ifndef STROBE_TAP_H
#define STROBE_TAP_H
#include "tap_record.h"
#include <stddef.h>
#include <stdint.h>

struct tap;

/* NULL with err set: one sentence naming the backend and what is missing or wrong;
 * *bad_spec is 1 when the spec itself is wrong (a bad command line), 0 when it is well
 * formed but its source cannot be opened (no such file, interface or card). */
struct tap *tap_open(const char *spec, char *err, size_t errlen, int *bad_spec);
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
/* 1 when the source is a file (a capture), which has an end to read to, with `what` saying
 * how far it was read (for a reading stopped before tap_poll said -1); 0 for a live tap. */
int tap_file_progress(const struct tap *t, char *what, size_t n);

/* The backends' table (tap.c dispatches on the spec's prefix). */
struct tap_backend {
    const char *name;
    /* -2 (the options are wrong: a bad command line) or -1 (the source cannot be opened),
     * with err set; 0 */
    int (*open)(struct tap *t, const char *options, char *err, size_t errlen);
    int (*start)(struct tap *t, char *err, size_t errlen);
    /* raw 32-byte records; same return convention as tap_poll */
    int (*poll)(struct tap *t, uint8_t (*raw)[32], int max);
    int (*read_clock)(struct tap *t, int64_t *tap_ns, int64_t *host_ns);
    void (*stop)(struct tap *t);
    void (*close)(struct tap *t);
    /* tap_file_progress; NULL for a backend that is always live */
    int (*file_progress)(const struct tap *t, char *what, size_t n);
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
