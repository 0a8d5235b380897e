#include "clock.h"

#include <stdlib.h>

int64_t clock_test_offset_ns;

void clock_init(void)
{
    const char *v = getenv("STROBE_TEST_CLOCK_OFFSET_NS");
    if (v && *v) clock_test_offset_ns = strtoll(v, NULL, 10);
}

const char *ts_source_name(enum ts_source s)
{
    switch (s) {
    case TS_USERSPACE: return "userspace";
    case TS_KERNEL: return "kernel";
    case TS_NIC: return "nic";
    case TS_FPGA: return "fpga";
    default: return "none";
    }
}
