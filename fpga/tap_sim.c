/* The sim backend: hw/rtl's Verilator model in this process, fed with a pcap file's frames
 * at their captured times. The tap's clock is steered like a real one (SET once, then ADJ
 * forward across the idle time between frames, which the model does not spend clocks on),
 * so the tap's time of each frame is its capture time to within the 4 ns clock. */
#include "tap.h"

#include "read_file.h"
#include "sim_model.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SO_TIMESTAMPNS
#define SO_TIMESTAMPNS 35
#endif

#define NS_PER_CLOCK 4
/* the most a pcap record holds (libpcap's MAXIMUM_SNAPLEN): a header claiming more is not
 * a frame but a damaged file */
#define PCAP_MAX_FRAME 262144u
/* drop-every=N: one record in a billion is already none worth testing */
#define DROP_EVERY_MAX 1000000000L

struct sim {
    struct sim_model *m;
    uint8_t *pcap;
    size_t len, at;
    char path[1024];   /* the capture, for messages */
    uint32_t max_incl; /* its snapshot length, within PCAP_MAX_FRAME */
    uint64_t frames;   /* records read from it */
    int nanosecond_pcap;
    long drop_every; /* lose one record in N on the way to the host (tests) */
    uint64_t popped;
    int started, done, broken, passthrough_bad;
    int live_fd; /* iface=NAME: frames from a live interface, or -1 */
    uint8_t frame[65536];
};

#include "clock.h"

static uint32_t u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A whole number, digits only, in [lo, hi]: sscanf took "3abc" for 3, and wrapped an
 * overflow to a value that lost no record. -1 when text is anything else. */
static int whole_option(const char *text, long lo, long hi, long *out)
{
    char *end;
    if (*text < '0' || *text > '9') return -1;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* The options after either form's source, comma-separated: only drop-every=N. 0, or -2 (a
 * bad command line) with err. */
static int sim_options(char *opts, long *drop, char *err, size_t errlen)
{
    for (char *o = opts, *next; o; o = next) {
        next = strchr(o, ',');
        if (next) *next++ = 0;
        if (strncmp(o, "drop-every=", 11)) {
            snprintf(err, errlen,
                     "tap sim: unknown option '%s': both forms take only drop-every=N "
                     "(sim:FILE.pcap,drop-every=N or sim:iface=NAME,drop-every=N)",
                     o);
            return -2;
        }
        if (*drop) {
            snprintf(err, errlen, "tap sim: drop-every is given twice: give it once");
            return -2;
        }
        if (whole_option(o + 11, 2, DROP_EVERY_MAX, drop)) {
            snprintf(err, errlen,
                     "tap sim: drop-every=%s is not a whole number from 2 to %ld (lose one "
                     "record in N)",
                     o + 11, DROP_EVERY_MAX);
            return -2;
        }
    }
    return 0;
}

/* live: every frame the interface sees, with the kernel's receive time */
static int open_live(struct tap *t, const char *iface, long drop, char *err, size_t errlen)
{
    struct sim *s = calloc(1, sizeof *s);
    s->live_fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(0x0003));
    int one = 1;
    struct sockaddr_ll ll = {.sll_family = AF_PACKET,
                             .sll_protocol = htons(0x0003),
                             .sll_ifindex = (int)if_nametoindex(iface)};
    if (s->live_fd < 0 || !ll.sll_ifindex ||
        setsockopt(s->live_fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) ||
        bind(s->live_fd, (struct sockaddr *)&ll, sizeof ll)) {
        snprintf(err, errlen,
                 "tap sim: cannot capture on interface '%s': %s (needs root and an "
                 "existing interface)",
                 iface, !ll.sll_ifindex ? "no such interface" : strerror(errno));
        if (s->live_fd >= 0) close(s->live_fd);
        free(s);
        return -1;
    }
    s->drop_every = drop;
    t->impl = s;
    return 0;
}

static int sim_open(struct tap *t, const char *options, char *err, size_t errlen)
{
    char path[1024];
    long drop = 0;
    /* a longer spec would be cut to a different file's name */
    if (strlen(options) >= sizeof path) {
        snprintf(err, errlen,
                 "tap sim: the spec is longer than %zu characters: give a shorter path",
                 sizeof path - 1);
        return -2;
    }
    snprintf(path, sizeof path, "%s", options);
    char *comma = strchr(path, ',');
    if (comma) {
        *comma = 0;
        if (sim_options(comma + 1, &drop, err, errlen)) return -2;
    }
    if (!strncmp(path, "iface=", 6)) {
        if (!path[6]) {
            snprintf(err, errlen, "tap sim: iface= names no interface: give sim:iface=NAME");
            return -2;
        }
        return open_live(t, path + 6, drop, err, errlen);
    }
    if (!path[0]) {
        snprintf(err, errlen, "tap sim needs a pcap file: sim:FILE.pcap");
        return -2;
    }
    struct sim *s = calloc(1, sizeof *s);
    s->pcap = (uint8_t *)read_file(path, &s->len);
    if (!s->pcap || s->len < 24 || (u32(s->pcap) != 0xA1B2C3D4 && u32(s->pcap) != 0xA1B23C4D)) {
        snprintf(err, errlen, "tap sim: %s is not a readable little-endian pcap file%s%s", path,
                 s->pcap ? "" : ": ", s->pcap ? "" : strerror(errno));
        free(s->pcap);
        free(s);
        return -1;
    }
    if (u32(s->pcap + 20) != 1) {
        snprintf(err, errlen, "tap sim: %s holds link type %u, not Ethernet (1)", path,
                 u32(s->pcap + 20));
        free(s->pcap);
        free(s);
        return -1;
    }
    s->nanosecond_pcap = u32(s->pcap) == 0xA1B23C4D;
    snprintf(s->path, sizeof s->path, "%s", path);
    /* not the header's snapshot length: libpcap reads records past it, and some writers
     * give one smaller than their records */
    s->max_incl = PCAP_MAX_FRAME;
    s->live_fd = -1;
    s->at = 24;
    s->drop_every = drop;
    t->impl = s;
    return 0;
}

static int sim_start(struct tap *t, char *err, size_t errlen)
{
    struct sim *s = t->impl;
    s->m = sim_model_new();
    if (sim_model_read(s->m, 0x00) != 0x53545450) {
        snprintf(err, errlen, "tap sim: the model's ID register is wrong");
        return -1;
    }
    sim_model_write(s->m, 0x08, 1);
    return 0;
}

static void steer_to(struct sim *s, int64_t capture_ns)
{
    int64_t now = (int64_t)((uint64_t)sim_model_read(s->m, 0x20) |
                            (uint64_t)sim_model_read(s->m, 0x24) << 32);
    /* frames that arrived faster than the model clocks them keep the clock's own pace */
    int64_t ahead = capture_ns - now - 4 * NS_PER_CLOCK; /* the ADJ write itself takes clocks */
    if (ahead <= 0) return;
    if (ahead > 2000000000LL) {
        sim_model_write(s->m, 0x14, (uint32_t)capture_ns);
        sim_model_write(s->m, 0x18, (uint32_t)((uint64_t)capture_ns >> 32));
    } else {
        sim_model_write(s->m, 0x1C, (uint32_t)ahead);
    }
}

/* One live frame and its kernel receive time; 0 when none is waiting. */
static int live_frame(struct sim *s, size_t *len, int64_t *ns)
{
    char ctrl[256];
    struct sockaddr_ll from;
    struct iovec iov = {s->frame, sizeof s->frame};
    struct msghdr msg = {.msg_name = &from,
                         .msg_namelen = sizeof from,
                         .msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = ctrl,
                         .msg_controllen = sizeof ctrl};
    for (;;) {
        ssize_t n = recvmsg(s->live_fd, &msg, 0);
        if (n <= 0) return 0;
        if (from.sll_pkttype == PACKET_OUTGOING && from.sll_ifindex == 1) continue; /* lo: twice */
        *len = (size_t)n;
        *ns = clock_now_ns();
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
                struct timespec ts;
                memcpy(&ts, CMSG_DATA(c), sizeof ts);
                *ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
            }
        return 1;
    }
}

static void feed(struct sim *s, const uint8_t *frame, size_t len, int64_t ns)
{
    if (!s->started) {
        sim_model_write(s->m, 0x14, (uint32_t)ns);
        sim_model_write(s->m, 0x18, (uint32_t)((uint64_t)ns >> 32));
        s->started = 1;
    } else {
        steer_to(s, ns);
    }
    if (len >= 14 && sim_model_frame(s->m, frame, len)) s->passthrough_bad++;
}

/* The capture is over (whole, cut short or broken): the last records out of the FIFO. */
static void pcap_end(struct sim *s)
{
    sim_model_tick(s->m, 16);
    s->done = 1;
}

/* A capture that ends inside a record (a copy cut short, a capture killed while writing):
 * said, with what is missing, and the frames before it stand. incl: the cut record's frame
 * length, 0 when even its header is cut. */
static void warn_cut_short(const struct sim *s, uint32_t incl)
{
    size_t left = s->len - s->at;
    if (left < 16)
        fprintf(stderr,
                "strobe: tap sim: warning: %s is cut short: it ends %zu bytes into a 16-byte "
                "record header; the %llu frames before it were read (capture again for the "
                "rest)\n",
                s->path, left, (unsigned long long)s->frames);
    else
        fprintf(stderr,
                "strobe: tap sim: warning: %s is cut short: its last record, from byte %zu, "
                "holds %zu of its frame's %u bytes; the %llu frames before it were read "
                "(capture again for the rest)\n",
                s->path, s->at, left - 16, incl, (unsigned long long)s->frames);
}

/* A record header no capture writes (a frame longer than libpcap's largest, 262,144 bytes):
 * the file is damaged or not a capture, and reading on would take its bytes for frames. */
static void bad_record(struct tap *t, uint32_t incl)
{
    struct sim *s = t->impl;
    snprintf(t->why, sizeof t->why,
             "tap sim: the record at byte %zu of %.200s (after %llu frames) claims a %u-byte "
             "frame, more than the %u bytes its records can hold: the file is damaged or not a "
             "pcap capture; capture the traffic again",
             s->at, s->path, (unsigned long long)s->frames, incl, s->max_incl);
    s->broken = 1;
}

/* The model's records from raw[n] on, up to max, losing one in drop_every on the way to
 * the host (tests); the new n. */
static int pop_records(struct sim *s, uint8_t (*raw)[32], int n, int max)
{
    while (n < max && sim_model_record(s->m, raw[n])) {
        s->popped++;
        if (s->drop_every && s->popped % (uint64_t)s->drop_every == 0) continue;
        n++;
    }
    return n;
}

static int sim_poll(struct tap *t, uint8_t (*raw)[32], int max)
{
    struct sim *s = t->impl;
    int n = 0;
    if (s->live_fd >= 0) {
        size_t len;
        int64_t ns;
        for (int frames = 0; frames < 256 && live_frame(s, &len, &ns); frames++)
            feed(s, s->frame, len, ns);
        if (s->started) sim_model_tick(s->m, 8);
        return pop_records(s, raw, n, max);
    }
    for (;;) {
        n = pop_records(s, raw, n, max);
        if (n == max) return n;
        if (s->done) return n ? n : s->broken ? -2 : -1;
        const uint8_t *h = s->pcap + s->at;
        size_t left = s->len - s->at;
        uint32_t incl = left >= 16 ? u32(h + 8) : 0;
        if (!left) {
            pcap_end(s);
            continue;
        }
        if (incl > s->max_incl) {
            bad_record(t, incl);
            pcap_end(s);
            continue;
        }
        if (left < 16 || left - 16 < incl) {
            warn_cut_short(s, incl);
            pcap_end(s);
            continue;
        }
        int64_t ns =
            (int64_t)u32(h) * 1000000000LL + (int64_t)u32(h + 4) * (s->nanosecond_pcap ? 1 : 1000);
        feed(s, h + 16, incl, ns);
        s->frames++;
        s->at += 16 + incl;
        if (n) return n;
    }
}

static int sim_read_clock(struct tap *t, int64_t *tap_ns, int64_t *host_ns)
{
    struct sim *s = t->impl;
    uint32_t lo = sim_model_read(s->m, 0x20), hi = sim_model_read(s->m, 0x24);
    *tap_ns = (int64_t)((uint64_t)hi << 32 | lo);
    /* the model's clock is the capture's CLOCK_REALTIME by construction */
    *host_ns = *tap_ns;
    return 0;
}

static void sim_stop(struct tap *t)
{
    struct sim *s = t->impl;
    if (s->m) sim_model_write(s->m, 0x08, 0);
}

static void sim_close(struct tap *t)
{
    struct sim *s = t->impl;
    if (!s) return;
    if (s->passthrough_bad)
        fprintf(stderr, "strobe: tap sim: %d frames did not pass through bit for bit\n",
                s->passthrough_bad);
    sim_model_free(s->m);
    if (s->live_fd >= 0) close(s->live_fd);
    free(s->pcap);
    free(s);
}

/* A capture has an end: a reading stopped before it (--seconds, a signal) says how far. */
static int sim_file_progress(const struct tap *t, char *what, size_t n)
{
    const struct sim *s = t->impl;
    if (s->live_fd >= 0) return 0;
    if (s->at == s->len)
        snprintf(what, n,
                 "all %llu frames of %s went into the tap, but its last records were not read",
                 (unsigned long long)s->frames, s->path);
    else
        snprintf(what, n, "%llu frames of %s were read, to byte %zu of its %zu; the rest was not",
                 (unsigned long long)s->frames, s->path, s->at, s->len);
    return 1;
}

const struct tap_backend tap_backend_sim = {"sim",          sim_open, sim_start, sim_poll,
                                            sim_read_clock, sim_stop, sim_close, sim_file_progress};
