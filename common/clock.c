#include "clock.h"

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
