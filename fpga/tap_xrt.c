/* The xrt backend: an Alveo card running the tap as a Vitis RTL kernel (hw/README.md) through
 * XRT's C API: device, xclbin, the kernel's registers, and a record ring in host memory
 * written by the kernel (offset 0x40/0x44: ring address; 0x48: ring size in records; 0x4C:
 * the kernel's head index). Without a card: one sentence and a failure, never a guess. */
#include "tap.h"

#include "clock.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "INDEX[,XCLBIN]" after "xrt:", or "" (plain "xrt": device 0). The index is digits only:
 * sscanf's %u took "-1" for device 4294967295 and "0abc" for 0. 0, or -2 (a bad command
 * line) with err. */
static int x_spec(const char *options, unsigned *index, char *xclbin, size_t n, char *err,
                  size_t errlen)
{
    *index = 0;
    xclbin[0] = 0;
    if (!*options) return 0;
    char *end;
    errno = 0;
    unsigned long v = strtoul(options, &end, 10);
    if (*options < '0' || *options > '9' || errno || v > UINT_MAX || (*end && *end != ',')) {
        snprintf(err, errlen,
                 "tap xrt: '%s' is not INDEX[,XCLBIN]: give a device index, a whole number "
                 "such as 0 (xrt:0,strobe_tap.xclbin)",
                 options);
        return -2;
    }
    *index = (unsigned)v;
    if (*end == ',' && (!end[1] || strlen(end + 1) >= n)) {
        snprintf(err, errlen,
                 "tap xrt: give the xclbin's path after the comma, of at most %zu "
                 "characters: xrt:INDEX,XCLBIN",
                 n - 1);
        return -2;
    }
    if (*end == ',') snprintf(xclbin, n, "%s", end + 1);
    return 0;
}

#ifdef STROBE_HAVE_XRT
#include <xrt/xrt_bo.h>
#include <xrt/xrt_device.h>
#include <xrt/xrt_kernel.h>

#define RING_RECORDS 65536

struct xrt {
    xrtDeviceHandle dev;
    xrtXclbinHandle xclbin;
    xrtKernelHandle kernel;
    xrtBufferHandle ring;
    uint8_t *ring_map;
    uint32_t tail;
};

/* XRT aborts the whole process (a C++ exception through its C API) unless $XILINX_XRT/lib
 * holds libxrt_core.so.2. Debian installs it in the multiarch folder, with no such root:
 * give XRT one, a private folder whose lib/ points there. */
static int xrt_root(char *err, size_t errlen)
{
    static const char multiarch[] = "/usr/lib/x86_64-linux-gnu";
    if (getenv("XILINX_XRT")) return 0;
    char lib[512], root[256];
    snprintf(lib, sizeof lib, "%s/libxrt_core.so.2", multiarch);
    if (access(lib, R_OK)) {
        snprintf(err, errlen,
                 "tap xrt: XRT's runtime (%s) is missing; install libxrt2 or set XILINX_XRT", lib);
        return -1;
    }
    snprintf(root, sizeof root, "/tmp/strobe-xrt-%u", (unsigned)getuid());
    snprintf(lib, sizeof lib, "%s/lib", root);
    if ((mkdir(root, 0700) && errno != EEXIST) || (symlink(multiarch, lib) && errno != EEXIST)) {
        snprintf(err, errlen, "tap xrt: cannot make %s for XRT (%s); set XILINX_XRT", root,
                 strerror(errno));
        return -1;
    }
    setenv("XILINX_XRT", root, 0);
    return 0;
}

static int x_open(struct tap *t, const char *options, char *err, size_t errlen)
{
    unsigned index;
    char xclbin[1024];
    if (x_spec(options, &index, xclbin, sizeof xclbin, err, errlen)) return -2;
    if (xrt_root(err, errlen)) return -1;
    struct xrt *x = calloc(1, sizeof *x);
    x->dev = xrtDeviceOpen(index);
    if (!x->dev) {
        snprintf(err, errlen,
                 "tap xrt: no Alveo device %u (xrtDeviceOpen failed): install the card "
                 "and its XRT driver, or use the sim backend",
                 index);
        free(x);
        return -1;
    }
    if (!xclbin[0]) {
        snprintf(err, errlen,
                 "tap xrt: device %u found, but no xclbin given: xrt:%u,strobe_tap.xclbin", index,
                 index);
        xrtDeviceClose(x->dev);
        free(x);
        return -1;
    }
    x->xclbin = xrtXclbinAllocFilename(xclbin);
    xuid_t uuid;
    if (!x->xclbin || xrtDeviceLoadXclbinHandle(x->dev, x->xclbin) ||
        xrtXclbinGetUUID(x->xclbin, uuid) ||
        !(x->kernel = xrtPLKernelOpenExclusive(x->dev, uuid, "strobe_tap"))) {
        snprintf(err, errlen, "tap xrt: cannot load %s or open its kernel strobe_tap", xclbin);
        xrtDeviceClose(x->dev);
        free(x);
        return -1;
    }
    x->ring = xrtBOAlloc(x->dev, RING_RECORDS * 32, XRT_BO_FLAGS_HOST_ONLY,
                         xrtKernelArgGroupId(x->kernel, 0));
    x->ring_map = x->ring ? xrtBOMap(x->ring) : NULL;
    if (!x->ring_map) {
        snprintf(err, errlen, "tap xrt: cannot allocate the record ring in host memory");
        xrtKernelClose(x->kernel);
        xrtDeviceClose(x->dev);
        free(x);
        return -1;
    }
    t->impl = x;
    return 0;
}

static int x_start(struct tap *t, char *err, size_t errlen)
{
    struct xrt *x = t->impl;
    uint64_t addr = xrtBOAddress(x->ring);
    int64_t now = clock_now_ns();
    if (xrtKernelWriteRegister(x->kernel, 0x40, (uint32_t)addr) ||
        xrtKernelWriteRegister(x->kernel, 0x44, (uint32_t)(addr >> 32)) ||
        xrtKernelWriteRegister(x->kernel, 0x48, RING_RECORDS) ||
        xrtKernelWriteRegister(x->kernel, 0x14, (uint32_t)now) ||
        xrtKernelWriteRegister(x->kernel, 0x18, (uint32_t)((uint64_t)now >> 32)) ||
        xrtKernelWriteRegister(x->kernel, 0x08, 1)) {
        snprintf(err, errlen, "tap xrt: register writes to strobe_tap failed");
        return -1;
    }
    return 0;
}

static int x_poll(struct tap *t, uint8_t (*raw)[32], int max)
{
    struct xrt *x = t->impl;
    uint32_t head = 0;
    if (xrtKernelReadRegister(x->kernel, 0x4C, &head)) {
        /* the card stopped answering: not an exhausted source, whose end is exit 0 */
        snprintf(t->why, sizeof t->why,
                 "tap xrt: reading the record ring's head register failed; the card or its "
                 "driver stopped answering: check it with xbutil examine, then run again");
        return -2;
    }
    int n = 0;
    while (x->tail != head && n < max) {
        size_t off = (size_t)(x->tail % RING_RECORDS) * 32;
        xrtBOSync(x->ring, XCL_BO_SYNC_BO_FROM_DEVICE, 32, off);
        memcpy(raw[n++], x->ring_map + off, 32);
        x->tail++;
    }
    return n;
}

static int x_read_clock(struct tap *t, int64_t *tap_ns, int64_t *host_ns)
{
    struct xrt *x = t->impl;
    uint32_t lo, hi;
    int64_t before = clock_now_ns();
    if (xrtKernelReadRegister(x->kernel, 0x20, &lo) || xrtKernelReadRegister(x->kernel, 0x24, &hi))
        return -1;
    int64_t after = clock_now_ns();
    *tap_ns = (int64_t)((uint64_t)hi << 32 | lo);
    *host_ns = before + (after - before) / 2;
    return 0;
}

static void x_stop(struct tap *t)
{
    struct xrt *x = t->impl;
    if (x) xrtKernelWriteRegister(x->kernel, 0x08, 0);
}

static void x_close(struct tap *t)
{
    struct xrt *x = t->impl;
    if (!x) return;
    xrtBOFree(x->ring);
    xrtKernelClose(x->kernel);
    xrtDeviceClose(x->dev);
    free(x);
}
#else
static int x_open(struct tap *t, const char *options, char *err, size_t errlen)
{
    (void)t;
    unsigned index;
    char xclbin[1024];
    /* a bad spec is a bad command line whether or not this build has XRT */
    if (x_spec(options, &index, xclbin, sizeof xclbin, err, errlen)) return -2;
    snprintf(err, errlen,
             "tap xrt: this strobe was built without XRT (install libxrt-dev and rebuild)");
    return -1;
}
static int x_start(struct tap *t, char *err, size_t errlen)
{
    (void)t;
    (void)err;
    (void)errlen;
    return -1;
}
static int x_poll(struct tap *t, uint8_t (*raw)[32], int max)
{
    (void)t;
    (void)raw;
    (void)max;
    return -1;
}
static int x_read_clock(struct tap *t, int64_t *a, int64_t *b)
{
    (void)t;
    (void)a;
    (void)b;
    return -1;
}
static void x_stop(struct tap *t) { (void)t; }
static void x_close(struct tap *t) { (void)t; }
#endif

/* a card is always live: no file_progress */
const struct tap_backend tap_backend_xrt = {"xrt",        x_open, x_start, x_poll,
                                            x_read_clock, x_stop, x_close, NULL};
