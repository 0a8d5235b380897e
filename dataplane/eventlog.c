#include "eventlog.h"

#include "body_key.h"
#include "clock.h"
#include "log_file.h"
#include "redact.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RING_BYTES  (32u << 20)
#define BATCH_BYTES (4u << 20)
/* The most one write(2) carries. Its copy into the page cache runs in the kernel, which a
 * kernel built without preemption does not interrupt: the 4 MiB writes of every 100 ms held
 * a worker sharing the core off its sockets for 1-10 ms (the p99 of a paced run). 128 KiB
 * takes tens of microseconds, and between two writes a worker that woke takes the core. */
#define WRITE_BYTES (128u << 10)
/* A direct write copies nothing on this core and sleeps while the device takes the bytes:
 * larger writes cost less CPU per byte (1 MiB: about 0.08 s per GB on the development VM, 128
 * KiB 0.3 s, through the page cache 0.85-2.2 s) */
#define DIRECT_WRITE_BYTES (1u << 20)
#define FLUSH_NS           100000000LL /* at most 100 ms of facts are lost in a crash */
#define DIRECT_SPEED_FROM  (64u << 20) /* bytes written direct before their speed is said */
/* Direct writes only, also while the disk is behind the stream: the workers then wait for
 * the collector (eventlog_full_waits). Whole blocks sent through the page cache instead must
 * still reach the same disk, so while the disk is the limit they slow the direct writes that
 * follow, and on a VM whose fresh guest pages each cost the host a fault the copy costs more
 * CPU per byte than a worker spends per byte of the stream. (The collector used to do that
 * whenever direct writes took more than half the time, which counted the waits for the core a
 * worker kept busy as the disk's: 17-60 % of an unpaced run's log went through the page cache,
 * and it ran at 1.5-3.7 M events/s against 2.7-4.7 M without; spilling only when a ring was
 * 7/8 full, one profiled run still sent 70 % that way, 69 % of the process's CPU in the copy.)
 * --log-writes plain is there for a disk so slow that memory should take a run's excess. */
/* the collector's sleep between passes: the rings hold seconds of data, so 200 wake-ups a
 * second are plenty, and a pass finds enough to be worth a context switch */
#define PASS_SLEEP_NS 5000000L
/* a producer's sleep while its ring is full: the collector, on the same core, runs */
#define NAP_NS 50000L
/* the most a pass takes from one ring */
#define PASS_BYTES (4u << 20)
/* A message longer than a ring takes whole (half of it, less the ring's own header: an event
 * under a raised --max-event-bytes) goes by reference: the producer copies it into a block of
 * its own and queues a record of this type holding the block's address and length; the
 * collector takes the block as if it had come through the ring, then frees it. Never in the
 * files. (Rings sized for the largest event would each become that large in memory once their
 * head had gone round: 4 GiB a thread under --max-event-bytes 1G.) */
#define REC_BY_REFERENCE 0xFF
#define RING_MESSAGE_MAX (RING_BYTES / 2 - 64)
struct by_reference {
    char *msg; /* the record, then its body */
    size_t len;
};
/* A REC_EVENT's off on its way through a ring (the collector places bodies, so a producer's
 * off is free): the body's role (enum body_key_role) in the top two bits, its key slot in the
 * low 32. Never in the files. */
#define ROLE_SHIFT 62
#define SLOT_MASK  0xffffffffULL

/* One producer's keys: the offset in bodies.bin of each slot's key (eventlog_put_event). */
struct key_table {
    uint64_t *off;
    size_t cap;
};

static const char *const error_names[ERR_COUNT] = {
    "none",        "connect",     "send",           "connection-reset",
    "http-status", "http-parse",  "timeout",        "idle-timeout",
    "interrupted", "drain-limit", "event-too-long", "not-event-stream",
};

const char *req_error_name(enum req_error e) { return e < ERR_COUNT ? error_names[e] : "?"; }

struct eventlog {
    struct log_file events, bodies;
    int64_t since_flush; /* when the last timed flush was */
    int producers;
    struct spsc_ring *rings;
    struct key_table *keys; /* one per producer */
    pthread_t thread;
    int joined; /* eventlog_stop ran */
    _Atomic int stop;
    _Atomic uint64_t requested, done; /* sync barrier generations */
    uint64_t bodies_off;
    uint64_t records_from; /* events.bin's offset of its first record (after the header) */
    char error[256];
    _Atomic int failed;                   /* error is set: release after it is written */
    volatile sig_atomic_t *stop_on_error; /* set to 1 at the first error (eventlog_stop_on_error) */
    /* a message too long for a ring that could not be copied (out of memory): its length,
     * set by the producer, said by the collector in error */
    _Atomic size_t lost_len;
    /* bytes of messages by reference not yet written: a producer waits while they pass a
     * ring's size, as it waits for a full ring, so a disk slower than the stream bounds
     * them instead of the memory */
    _Atomic size_t by_reference_bytes;
};

/* The collector's first error kept (the later ones follow from it), said at once on stderr,
 * and the run asked to stop: a run whose log cannot be written measures nothing that lasts. */
static void __attribute__((format(printf, 2, 3)))
log_failed(struct eventlog *l, const char *fmt, ...)
{
    if (l->error[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->error, sizeof l->error, fmt, ap);
    va_end(ap);
    atomic_store_explicit(&l->failed, 1, memory_order_release);
    /* on a line of its own under the live progress; at the close the run has ended already */
    fprintf(stderr, "%sstrobe: the event log cannot be written (%s)%s\n",
            isatty(2) ? "\r\033[K" : "", l->error,
            atomic_load(&l->stop) ? "." : ": the run stops.");
    if (l->stop_on_error) *l->stop_on_error = 1;
}

/* The end of the records waiting in events.bin's buffer whose bodies lie below bodies_end
 * (bodies.bin's bytes in the file): the records after them point at bodies still waiting. */
static uint64_t records_covered(const struct eventlog *l, uint64_t bodies_end)
{
    const struct log_file *f = &l->events;
    uint64_t end = f->start + f->len, at = end;
    int uncovered = 0;
    while (at >= l->records_from + sizeof(struct log_record)) {
        const char *p = log_file_buffered(f, at - sizeof(struct log_record));
        if (!p) break;
        struct log_record rec;
        memcpy(&rec, p, sizeof rec);
        if (rec.len && rec.off + rec.len > bodies_end)
            uncovered = 1;
        else if (rec.len)
            break;
        at -= sizeof rec;
    }
    /* bodies are placed in record order: the uncovered ones are the last */
    return uncovered ? at : end;
}

/* Writes what the files wait for: everything when `all` (the timed flush, a sync, the close),
 * else whole blocks only: bodies.bin's, then events.bin's up to the last record whose body is
 * in the file, so that a record written never points past bodies.bin's end. (Writing
 * bodies.bin's last partial block too, every megabyte, halved the direct writes' speed: the
 * next direct write over that block first waits for the page cache to write it back.) */
static void flush_batches(struct eventlog *l, int all)
{
    if (log_file_waiting(&l->bodies) && log_file_write(&l->bodies, all, 0))
        log_failed(l, "writing bodies.bin failed: %s", strerror(errno));
    if (!log_file_waiting(&l->events)) return;
    int rc;
    if (all) {
        rc = log_file_write(&l->events, 1, 0);
    } else {
        rc = log_file_write_below(&l->events, records_covered(l, l->bodies.end), 0);
        /* records without bodies (failures without a reason, say) held behind one whose body
         * is in bodies.bin's last partial block: that block is written now, plainly */
        if (!rc && log_file_waiting(&l->events) >= DIRECT_WRITE_BYTES) {
            if (log_file_write(&l->bodies, 1, 0))
                log_failed(l, "writing bodies.bin failed: %s", strerror(errno));
            rc = log_file_write_below(&l->events, records_covered(l, l->bodies.end), 0);
        }
    }
    if (rc) log_failed(l, "writing events.bin failed: %s", strerror(errno));
}

/* Remembers where producer p's slot's key lies in bodies.bin. */
static void set_key(struct eventlog *l, int p, uint32_t slot, uint64_t off)
{
    struct key_table *t = &l->keys[p];
    if (slot >= t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap <= slot) cap *= 2;
        uint64_t *grown = realloc(t->off, cap * sizeof *grown);
        if (!grown) {
            log_failed(l, "out of memory for the keys of %zu sessions", cap);
            return;
        }
        memset(grown + t->cap, 0xff, (cap - t->cap) * sizeof *grown);
        t->off = grown;
        t->cap = cap;
    }
    t->off[slot] = off;
}

/* A keyed body's key offset, which its producer left 0, filled in. */
static void fill_key_offset(struct eventlog *l, int p, uint32_t slot, char *b)
{
    const struct key_table *t = &l->keys[p];
    uint64_t off = slot < t->cap ? t->off[slot] : UINT64_MAX;
    if (off == UINT64_MAX) /* a producer's bug: its body then reads as damaged, not as another */
        log_failed(l, "an event's body was keyed against slot %u, which has no key", slot);
    for (int i = 0; i < 8; i++) b[i] = (char)(off >> (8 * i));
}

static void nap(long ns)
{
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

/* Drains every ring once, at most PASS_BYTES of each: a pass ends even while a producer
 * keeps writing, so the timed flush stays on time and the collector's turns stay short.
 * Returns the number of messages taken; *more: a ring still held messages. */
static size_t drain(struct eventlog *l, int *more)
{
    size_t taken = 0;
    *more = 0;
    for (int p = 0; p < l->producers; p++) {
        struct spsc_ring *r = &l->rings[p];
        size_t len, bytes = 0;
        const char *msg;
        while ((msg = spsc_peek(r, &len))) {
            if (bytes && bytes + len > PASS_BYTES) {
                *more = 1;
                break;
            }
            struct log_record rec;
            memcpy(&rec, msg, sizeof rec);
            const char *whole = msg; /* the record and its body */
            size_t whole_len = len;
            struct by_reference ref = {NULL, 0};
            if (rec.type == REC_BY_REFERENCE) {
                memcpy(&ref, msg + sizeof rec, sizeof ref);
                whole = ref.msg;
                whole_len = ref.len;
                memcpy(&rec, whole, sizeof rec);
            }
            bytes += whole_len;
            size_t body = whole_len - sizeof rec;
            uint64_t note = 0;
            if (rec.type == REC_EVENT) {
                note = rec.off;
                rec.off = 0;
            }
            enum body_key_role role = (enum body_key_role)(note >> ROLE_SHIFT);
            if (body) {
                char *b = (char *)whole + sizeof rec;
                if (role == BODY_KEYED && body >= BODY_KEY_HEAD)
                    fill_key_offset(l, p, (uint32_t)(note & SLOT_MASK), b);
                /* the API key, if a server echoed it, is blanked here, on the writer thread
                 * and in place: the slot (or block) is the collector's until it is released
                 * (a body that holds it is never keyed, nor a key: the worker's rule) */
                if (role != BODY_KEYED) redact(b, body);
                if (log_file_put(&l->bodies, b, body))
                    log_failed(l, "writing bodies.bin failed: %s", strerror(errno));
                rec.off = l->bodies_off;
                rec.len = (uint32_t)body;
                l->bodies_off += body;
                if (role == BODY_SETS_KEY) set_key(l, p, (uint32_t)(note & SLOT_MASK), rec.off);
            } else {
                rec.len = 0; /* points at no body, whatever the producer left there */
            }
            /* bodies.bin first, then a record that points into it */
            if (log_file_waiting(&l->events) + sizeof rec > BATCH_BYTES) flush_batches(l, 0);
            if (log_file_put(&l->events, &rec, sizeof rec))
                log_failed(l, "writing events.bin failed: %s", strerror(errno));
            if (ref.msg) {
                free(ref.msg);
                atomic_fetch_sub_explicit(&l->by_reference_bytes, ref.len, memory_order_relaxed);
            }
            spsc_release(r, len);
            taken++;
            /* written as it comes, in short writes, not 100 ms at once */
            size_t write_bytes = l->bodies.direct_fd >= 0 ? DIRECT_WRITE_BYTES : WRITE_BYTES;
            if (log_file_waiting(&l->bodies) >= write_bytes ||
                log_file_waiting(&l->events) >= write_bytes)
                flush_batches(l, 0);
        }
    }
    size_t lost = atomic_load_explicit(&l->lost_len, memory_order_relaxed);
    if (lost)
        log_failed(l,
                   "an event of %zu bytes could not be kept: out of memory (lower "
                   "--max-event-bytes, or give the run more memory)",
                   lost);
    return taken;
}

/* The collector shares a core with a worker whenever every core has one. It keeps its
 * turns on the CPU short, so a worker that wakes behind it waits for little: it wakes 200
 * times a second, takes what the rings hold (at most 4 MiB each), writes at most 1 MiB per
 * write(2) direct (128 KiB through the page cache), and sleeps. (Idle priority, SCHED_IDLE, gave
 * the worker the core at once but starved the collector whenever another process kept the core
 * busy: the rings filled and the worker stalled for seconds; an unprivileged thread cannot be
 * raised back.) */
static void *collector(void *arg)
{
    struct eventlog *l = arg;
    l->since_flush = clock_mono_ns();
    for (;;) {
        uint64_t want = atomic_load(&l->requested);
        int stopping = atomic_load(&l->stop), more;
        size_t n = drain(l, &more);
        int64_t now = clock_mono_ns();
        /* a sync is answered once everything queued before it was taken (!more) */
        int synced = !more && want != atomic_load(&l->done);
        if (synced || stopping || now - l->since_flush > FLUSH_NS) {
            flush_batches(l, 1);
            l->since_flush = now;
            if (!more) atomic_store(&l->done, want);
        }
        if (stopping && n == 0) break;
        if (!stopping && !more) nap(PASS_SLEEP_NS);
    }
    return NULL;
}

/* The log's files removed, after a failed start: the same --out works again once the cause is
 * fixed. */
static void remove_files(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/events.bin", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/bodies.bin", dir);
    unlink(path);
}

/* The log's files closed and removed (remove_files). */
static void abandon_files(struct eventlog *l, const char *dir)
{
    log_file_close(&l->events, 0);
    log_file_close(&l->bodies, 0);
    remove_files(dir);
}

static void free_log(struct eventlog *l)
{
    for (int p = 0; l->rings && p < l->producers; p++) spsc_free(&l->rings[p]);
    free(l->rings);
    for (int p = 0; l->keys && p < l->producers; p++) free(l->keys[p].off);
    free(l->keys);
    free(l);
}

/* The header, padded so that records start on a 64-byte boundary; NULL out of memory. */
static char *log_header(const char *header_json, size_t *len)
{
    uint32_t hl = (uint32_t)strlen(header_json);
    uint32_t ver = LOG_VERSION;
    size_t head = 16 + hl, pad = (64 - head % 64) % 64;
    char *h = calloc(1, head + pad);
    if (!h) return NULL;
    memcpy(h, LOG_MAGIC, 8);
    memcpy(h + 8, &ver, 4);
    uint32_t padded = hl + (uint32_t)pad;
    memcpy(h + 12, &padded, 4);
    memcpy(h + 16, header_json, hl);
    redact(h + 16, hl); /* e.g. a key the user put in --extra-body */
    memset(h + 16 + hl, ' ', pad);
    *len = head + pad;
    return h;
}

/* events.bin and bodies.bin created, the header written, both taken by log_files; 0, or -1
 * with err set and nothing left behind. */
static int open_files(struct eventlog *l, const char *dir, const char *header_json, int want_direct,
                      char *err, size_t errlen)
{
    char epath[4096], bpath[4096];
    snprintf(epath, sizeof epath, "%s/events.bin", dir);
    snprintf(bpath, sizeof bpath, "%s/bodies.bin", dir);
    int efd = open(epath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (efd < 0) {
        snprintf(err, errlen, "cannot create %s: %s (use a new --out directory)", epath,
                 strerror(errno));
        return -1;
    }
    int bfd = open(bpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (bfd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", bpath, strerror(errno));
        close(efd);
        unlink(epath);
        return -1;
    }
    if (log_file_open(&l->events, efd, epath, BATCH_BYTES, want_direct)) {
        close(efd);
        close(bfd);
        remove_files(dir);
        snprintf(err, errlen, "cannot start the event log: out of memory");
        return -1;
    }
    if (log_file_open(&l->bodies, bfd, bpath, BATCH_BYTES, want_direct)) {
        log_file_close(&l->events, 0);
        close(bfd);
        remove_files(dir);
        snprintf(err, errlen, "cannot start the event log: out of memory");
        return -1;
    }
    size_t hlen = 0;
    char *h = log_header(header_json, &hlen);
    int rc = -1;
    if (!h)
        snprintf(err, errlen, "cannot start the event log: out of memory");
    else if (log_file_put(&l->events, h, hlen) || log_file_write(&l->events, 1, 0))
        snprintf(err, errlen, "cannot write the log header in %s: %s", dir, strerror(errno));
    else
        rc = 0;
    l->records_from = hlen;
    free(h);
    if (rc) abandon_files(l, dir);
    return rc;
}

struct eventlog *eventlog_create_writes(const char *dir, const char *header_json, int producers,
                                        int want_direct, char *err, size_t errlen)
{
    struct eventlog *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "cannot start the event log: out of memory");
        return NULL;
    }
    if (open_files(l, dir, header_json, want_direct, err, errlen)) {
        free(l);
        return NULL;
    }
    l->producers = producers;
    l->rings = calloc((size_t)producers, sizeof *l->rings);
    l->keys = calloc((size_t)producers, sizeof *l->keys);
    int no_memory = !l->rings || !l->keys;
    for (int p = 0; !no_memory && p < producers; p++)
        no_memory = spsc_init(&l->rings[p], RING_BYTES) != 0;
    int thread_rc = no_memory ? 0 : pthread_create(&l->thread, NULL, collector, l);
    if (no_memory || thread_rc) {
        if (no_memory)
            snprintf(err, errlen,
                     "cannot start the event log: out of memory for %d ring(s) of %u MiB (use "
                     "fewer --threads, or raise the memory limit)",
                     producers, RING_BYTES >> 20);
        else
            snprintf(err, errlen,
                     "cannot start the event log's thread: %s (raise the process or thread "
                     "limit)",
                     strerror(thread_rc));
        abandon_files(l, dir);
        free_log(l);
        return NULL;
    }
    pthread_setname_np(l->thread, "strobe-log");
    return l;
}

struct eventlog *eventlog_create(const char *dir, const char *header_json, int producers, char *err,
                                 size_t errlen)
{
    return eventlog_create_writes(dir, header_json, producers, 1, err, errlen);
}

const char *eventlog_writes(struct eventlog *l, char *buf, size_t len)
{
    char events[160], bodies[160];
    log_file_mode(&l->events, events, sizeof events);
    log_file_mode(&l->bodies, bodies, sizeof bodies);
    if (!strcmp(events, bodies))
        snprintf(buf, len, "%s", bodies);
    else
        snprintf(buf, len, "bodies.bin %s, events.bin %s", bodies, events);
    /* how fast the disk took them, where there was enough to tell (a run whose workers
     * waited for the writer names the disk as the limit) */
    uint64_t direct = l->events.direct_bytes + l->bodies.direct_bytes;
    uint64_t ns = l->events.direct_ns + l->bodies.direct_ns;
    size_t used = strlen(buf);
    if (direct >= DIRECT_SPEED_FROM && ns && used < len)
        snprintf(buf + used, len - used, "; %.1f MB direct at %.0f MB/s", (double)direct / 1e6,
                 (double)direct * 1e3 / (double)ns);
    return buf;
}

struct spsc_ring *eventlog_ring(struct eventlog *l, int producer) { return &l->rings[producer]; }

/* A message a ring cannot take whole, by reference (REC_BY_REFERENCE): the copy is an
 * allocation on the worker's path, for events of megabytes only. */
static void put_by_reference(struct eventlog *l, int producer, const struct log_record *rec,
                             const void *body, size_t body_len)
{
    size_t len = sizeof *rec + body_len;
    /* room first, then the copy: the copies outstanding stay within a ring's size (one at
     * least, whatever its size), and a producer waiting holds none */
    size_t held = atomic_load_explicit(&l->by_reference_bytes, memory_order_relaxed);
    for (;;) {
        if (held && held + len > RING_BYTES) {
            l->rings[producer].full_waits++;
            nap(NAP_NS);
            held = atomic_load_explicit(&l->by_reference_bytes, memory_order_relaxed);
        } else if (atomic_compare_exchange_weak_explicit(&l->by_reference_bytes, &held, held + len,
                                                         memory_order_relaxed,
                                                         memory_order_relaxed)) {
            break;
        }
    }
    struct by_reference ref = {malloc(len), len};
    if (!ref.msg) {
        atomic_fetch_sub_explicit(&l->by_reference_bytes, len, memory_order_relaxed);
        /* the run fails saying so (eventlog_error); the record alone keeps its request whole */
        atomic_store_explicit(&l->lost_len, len, memory_order_relaxed);
        struct log_record bare = *rec;
        bare.len = 0;
        eventlog_put(l, producer, &bare, NULL, 0);
        return;
    }
    memcpy(ref.msg, rec, sizeof *rec);
    memcpy(ref.msg + sizeof *rec, body, body_len);
    struct log_record marker = {.type = REC_BY_REFERENCE};
    eventlog_put(l, producer, &marker, &ref, sizeof ref);
}

/* Room for len bytes in a producer's ring, sleeping while it is full (the collector, on the
 * same core, then runs); counted by the ring. */
static char *reserve_waiting(struct spsc_ring *r, size_t len)
{
    char *slot;
    while (!(slot = spsc_reserve(r, len))) nap(NAP_NS);
    return slot;
}

void eventlog_put(struct eventlog *l, int producer, const struct log_record *rec, const void *body,
                  size_t body_len)
{
    struct spsc_ring *r = &l->rings[producer];
    size_t len = sizeof *rec + body_len;
    if (len > RING_MESSAGE_MAX) {
        put_by_reference(l, producer, rec, body, body_len);
        return;
    }
    char *slot = reserve_waiting(r, len);
    memcpy(slot, rec, sizeof *rec);
    if (body_len) memcpy(slot + sizeof *rec, body, body_len);
    spsc_commit(r, len);
}

/* The producer's note in a REC_EVENT's off: how its body was coded, and its key slot. */
static uint64_t key_note(enum body_key_role role, uint32_t key_slot)
{
    return (uint64_t)role << ROLE_SHIFT | key_slot;
}

void eventlog_put_event(struct eventlog *l, int producer, const struct log_record *rec,
                        const void *body, size_t body_len, enum body_key_role role,
                        uint32_t key_slot)
{
    struct log_record r = *rec;
    r.off = key_note(role, key_slot);
    eventlog_put(l, producer, &r, body, body_len);
}

_Static_assert(sizeof(struct log_record) + EVENTLOG_IN_PLACE_MAX <= RING_MESSAGE_MAX,
               "an in-place event fits a ring");

void *eventlog_event_reserve(struct eventlog *l, int producer, size_t body_max)
{
    if (body_max > EVENTLOG_IN_PLACE_MAX) return NULL; /* a ring might never hold it */
    return reserve_waiting(&l->rings[producer], sizeof(struct log_record) + body_max);
}

void eventlog_event_commit(struct eventlog *l, int producer, void *slot, size_t body_len,
                           enum body_key_role role, uint32_t key_slot)
{
    ((struct log_record *)slot)->off = key_note(role, key_slot);
    spsc_commit(&l->rings[producer], sizeof(struct log_record) + body_len);
}

void eventlog_sync(struct eventlog *l)
{
    uint64_t gen = atomic_fetch_add(&l->requested, 1) + 1;
    while (atomic_load(&l->done) < gen) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
}

uint64_t eventlog_full_waits(struct eventlog *l)
{
    uint64_t n = 0;
    for (int p = 0; p < l->producers; p++) n += l->rings[p].full_waits;
    return n;
}

const char *eventlog_error(struct eventlog *l)
{
    return atomic_load_explicit(&l->failed, memory_order_acquire) ? l->error : NULL;
}

void eventlog_stop_on_error(struct eventlog *l, volatile sig_atomic_t *flag)
{
    l->stop_on_error = flag;
}

void eventlog_abandon(struct eventlog *l, const char *dir)
{
    eventlog_stop(l);
    abandon_files(l, dir);
    free_log(l);
}

void eventlog_stop(struct eventlog *l)
{
    if (l->joined) return;
    atomic_store(&l->stop, 1);
    pthread_join(l->thread, NULL);
    l->joined = 1;
}

int eventlog_close(struct eventlog *l)
{
    eventlog_stop(l);
    int rc = l->error[0] ? -1 : 0;
    if (log_file_close(&l->bodies, 1)) rc = -1;
    if (log_file_close(&l->events, 1)) rc = -1;
    free_log(l);
    return rc;
}

/* ---------- reader ---------- */

static void *map_file(const char *path, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    fstat(fd, &st);
    *len = (size_t)st.st_size;
    void *m = *len ? mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "cannot map %s: %s", path, strerror(errno));
        return NULL;
    }
    return m ? m : (void *)"";
}

/* Maps DIR/NAME, which must be a plain file: a directory or a device there would map as
 * "No such device", which names no cause. NULL with err set. */
static void *map_log_file(const char *dir, const char *name, size_t *len, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(err, errlen,
                 "%s is %s, not a file: the run's event log is damaged; give a run's folder "
                 "whose %s is the file strobe wrote",
                 path, S_ISDIR(st.st_mode) ? "a directory" : "not a regular file", name);
        return NULL;
    }
    return map_file(path, len, err, errlen);
}

/* Whether the header is one JSON object and nothing after it but the writer's padding
 * (spaces): strings closed, brackets closing at its end. A shape check, not a parser (the
 * dataplane does not link one), but every valid header passes it, and a header length that was
 * overwritten or cut (records would then be read from the wrong offset, as garbage) fails. */
static int header_is_object(const char *h, size_t n)
{
    size_t i = 0;
    while (i < n && (h[i] == ' ' || h[i] == '\n' || h[i] == '\t' || h[i] == '\r')) i++;
    if (i == n || h[i] != '{') return 0;
    int depth = 0, in_string = 0;
    for (; i < n; i++) {
        char c = h[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
            else if ((unsigned char)c < 0x20)
                return 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if ((c == '}' || c == ']') && --depth == 0) {
            break;
        } else if (!c) {
            return 0;
        }
    }
    if (i >= n) return 0; /* never closed */
    while (++i < n)
        if (h[i] != ' ' && h[i] != '\n' && h[i] != '\t' && h[i] != '\r') return 0;
    return 1;
}

/* The header's checks, each saying what is wrong: 0, or -1 with err set. */
static int check_header(const char *dir, const char *e, size_t len, char *err, size_t errlen)
{
    uint32_t ver, hl;
    if (len < 16 || memcmp(e, LOG_MAGIC, 8)) {
        snprintf(err, errlen, "%s/events.bin is not a strobe event log", dir);
        return -1;
    }
    memcpy(&ver, e + 8, 4);
    memcpy(&hl, e + 12, 4);
    if (ver < 1 || ver > LOG_VERSION) {
        snprintf(err, errlen,
                 "%s/events.bin has log version %u; this strobe reads versions 1 to %d: analyse "
                 "it with the strobe that wrote it",
                 dir, ver, LOG_VERSION);
        return -1;
    }
    if (16 + (size_t)hl > len) {
        snprintf(err, errlen,
                 "%s/events.bin's header is torn: it gives its length as %u bytes but the file "
                 "holds %zu after the 16-byte start, so the log is damaged (cut short or "
                 "overwritten); restore it from a copy of the run",
                 dir, hl, len - 16);
        return -1;
    }
    if (!header_is_object(e + 16, hl)) {
        snprintf(err, errlen,
                 "%s/events.bin's header (%u bytes) is not valid JSON, so the log is damaged "
                 "(its header or the header's length was overwritten) and its records cannot be "
                 "found; restore it from a copy of the run",
                 dir, hl);
        return -1;
    }
    return 0;
}

/* Where the last body the records point at ends. The collector gives bodies their offsets
 * in the order it writes the records, so the last record with a body has the furthest. */
static uint64_t bodies_end(const struct eventlog_reader *r)
{
    for (size_t i = r->nrecords; i-- > 0;)
        if (r->records[i].len) return r->records[i].off + r->records[i].len;
    return 0;
}

static int has_end_mark(const struct eventlog_reader *r)
{
    for (size_t i = r->nrecords; i-- > 0;)
        if (r->records[i].type == REC_MARK && rec_mark_decode(&r->records[i]).kind == MARK_RUN_END)
            return 1;
    return 0;
}

/* bodies.bin is written before the records that point into it, and a run that ended synced
 * both: records pointing past its end then mean it was cut short afterwards, not a run that
 * died before its last flush. Its events would read as missing, their requests as failed.
 * 0, or -1 with err set. */
static int check_bodies(const char *dir, const struct eventlog_reader *r, char *err, size_t errlen)
{
    uint64_t end = bodies_end(r);
    if (end <= r->bodies_len || !has_end_mark(r)) return 0;
    snprintf(err, errlen,
             "%s/bodies.bin is shorter than its records say (%zu bytes; they point up to byte "
             "%llu) although the run ended normally: the log is damaged (bodies.bin was cut "
             "short after the run), and its requests would read as failed; restore bodies.bin "
             "from a copy of the run",
             dir, r->bodies_len, (unsigned long long)end);
    return -1;
}

struct eventlog_reader *eventlog_open(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    struct stat st;
    /* what was given instead of a run's folder, said as such rather than as events.bin's error */
    int missing = stat(dir, &st) ? errno : 0;
    if (missing && missing != ENOENT) {
        snprintf(err, errlen, "cannot read %s (%s): give a run's folder you may read", dir,
                 strerror(missing));
        return NULL;
    }
    if (missing || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s %s: give the folder of a run (the --out of strobe slt or agents)",
                 dir, missing ? "does not exist" : "is not a folder");
        return NULL;
    }
    snprintf(path, sizeof path, "%s/events.bin", dir);
    if (access(path, F_OK) && errno == ENOENT) {
        snprintf(err, errlen,
                 "%s holds no events.bin, so it is not a run's folder: give the --out of "
                 "strobe slt or agents",
                 dir);
        return NULL;
    }
    struct eventlog_reader *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory opening %s's log", dir);
        return NULL;
    }
    r->map_events = map_log_file(dir, "events.bin", &r->map_events_len, err, errlen);
    if (!r->map_events) goto fail;
    r->map_bodies = map_log_file(dir, "bodies.bin", &r->map_bodies_len, err, errlen);
    if (!r->map_bodies) goto fail;
    const char *e = r->map_events;
    if (check_header(dir, e, r->map_events_len, err, errlen)) goto fail;
    uint32_t hl;
    memcpy(&hl, e + 12, 4);
    r->header_json = malloc(hl + 1);
    memcpy(r->header_json, e + 16, hl);
    r->header_json[hl] = 0;
    r->nrecords = (r->map_events_len - 16 - hl) / sizeof(struct log_record);
    if ((16 + hl) % 8) {
        /* strobe pads its header so records are aligned; a file from elsewhere may not be */
        r->owned_records = malloc((r->nrecords ? r->nrecords : 1) * sizeof(struct log_record));
        memcpy(r->owned_records, e + 16 + hl, r->nrecords * sizeof(struct log_record));
        r->records = r->owned_records;
    } else {
        r->records = (const struct log_record *)(e + 16 + hl);
    }
    r->bodies = r->map_bodies;
    r->bodies_len = r->map_bodies_len;
    if (check_bodies(dir, r, err, errlen)) goto fail;
    return r;
fail:
    eventlog_reader_close(r);
    return NULL;
}

const char *eventlog_body_in(const char *bodies, size_t bodies_len, const struct log_record *rec,
                             char *keyed, size_t *len)
{
    *len = 0;
    if (rec->off > bodies_len || rec->len > bodies_len - rec->off) return NULL;
    const char *stored = bodies + rec->off;
    if (!log_body_is_keyed(rec)) {
        *len = rec->len;
        return stored;
    }
    struct body_keyed k;
    if (body_key_parse(stored, rec->len, bodies_len, &k)) return NULL;
    *len = body_key_join(&k, bodies + k.key_off, keyed);
    return keyed;
}

const char *eventlog_body(const struct eventlog_reader *r, const struct log_record *rec,
                          char *keyed, size_t *len)
{
    return eventlog_body_in(r->bodies, r->bodies_len, rec, keyed, len);
}

void eventlog_reader_close(struct eventlog_reader *r)
{
    if (!r) return;
    if (r->map_events && r->map_events_len) munmap(r->map_events, r->map_events_len);
    if (r->map_bodies && r->map_bodies_len) munmap(r->map_bodies, r->map_bodies_len);
    free(r->header_json);
    free(r->owned_records);
    free(r);
}
