/* One timeline for every timestamp: int64 nanoseconds of CLOCK_REALTIME.
 * CLOCK_REALTIME because the kernel's SO_TIMESTAMPING stamps, the emulator's send stamps
 * and (later) PTP-disciplined NIC clocks all speak it. Each stamp carries its source.
 * clock_test_offset_ns (0 unless STROBE_TEST_CLOCK_OFFSET_NS is set when clock_init runs) is
 * added to every stamp this process takes: the test hook that gives one MPI rank a shifted
 * clock, so that the measured offsets and the merged timeline can be checked. */
#ifndef STROBE_CLOCK_H
#define STROBE_CLOCK_H
#include <stdint.h>
#include <time.h>

enum ts_source {
    TS_NONE = 0,
    TS_USERSPACE = 1, /* clock_gettime after the read returned */
    TS_KERNEL = 2,    /* SO_TIMESTAMPING software receive stamp */
    TS_NIC = 3,       /* SO_TIMESTAMPING raw hardware stamp (non-zero only) */
    TS_FPGA = 4,      /* timestamping tap record */
};

extern int64_t clock_test_offset_ns;

/* Reads STROBE_TEST_CLOCK_OFFSET_NS once, before any thread starts. */
void clock_init(void);

static inline int64_t clock_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec + clock_test_offset_ns;
}

/* Nanoseconds on CLOCK_MONOTONIC: for intervals (how long a wait or a write took), which a
 * step of the wall clock (NTP) must not stretch or cut. Not a stamp: not on the timeline. */
static inline int64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline struct timespec clock_ns_to_timespec(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};
    return ts;
}

const char *ts_source_name(enum ts_source s);

#endif
