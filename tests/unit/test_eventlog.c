/* The event log's writer and reader around its edges: a body longer than a ring takes whole
 * (by reference) comes back byte for byte between ordinary ones, a body the disk refuses is an
 * error, not a log that looks whole, and while a run goes on no record in events.bin points
 * past bodies.bin's end (what a run killed then leaves), short bodies or none; keyed event
 * bodies of interleaved requests on two producers, written in place or through a copy, come
 * back as they were given, each key's offset filled in by the collector. */
#include "check.h"
#include "eventlog.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define BIG (20u << 20) /* over half the 32 MiB ring */

static struct log_record event(uint64_t req, size_t len)
{
    return (struct log_record){.type = REC_EVENT, .req_id = req, .len = (uint32_t)len};
}

static void fill(char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) p[i] = (char)('a' + (i * 7 + seed) % 26);
}

/* A log of `producers` rings in a new folder made from dir (a mkdtemp template); NULL after a
 * failed check. */
static struct eventlog *new_log_of(char *dir, int producers)
{
    char err[512];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    struct eventlog *l =
        eventlog_create(dir, "{\"kind\":\"slt\",\"config\":{}}", producers, err, sizeof err);
    CHECK(l != NULL, "create log: %s", err);
    return l;
}

static struct eventlog *new_log(char *dir) { return new_log_of(dir, 1); }

static void remove_log(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/events.bin", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/bodies.bin", dir);
    unlink(path);
    rmdir(dir);
}

static void big_body_round_trip(char *big)
{
    char dir[] = "/tmp/strobe-eventlog-XXXXXX", err[512];
    struct eventlog *l = new_log(dir);
    if (!l) return;
    char small[100];
    fill(small, sizeof small, 1);
    fill(big, BIG, 2);
    struct log_record a = event(1, sizeof small), b = event(2, BIG), c = event(3, sizeof small);
    eventlog_put(l, 0, &a, small, sizeof small);
    eventlog_put(l, 0, &b, big, BIG);
    eventlog_put(l, 0, &c, small, sizeof small);
    CHECK(eventlog_close(l) == 0, "close: %s", "write error");
    struct eventlog_reader *r = eventlog_open(dir, err, sizeof err);
    CHECK(r != NULL, "open: %s", err);
    if (!r) return;
    CHECK(r->nrecords == 3, "3 records, got %zu", r->nrecords);
    for (size_t i = 0; i < r->nrecords && i < 3; i++) {
        const struct log_record *rec = &r->records[i];
        const char *want = i == 1 ? big : small;
        size_t len = i == 1 ? BIG : sizeof small;
        char keyed[BODY_KEY_MAX];
        size_t got_len;
        const char *got = eventlog_body(r, rec, keyed, &got_len);
        CHECK(rec->req_id == i + 1 && rec->len == len && got && got_len == len &&
                  !memcmp(got, want, len),
              "record %zu: request %llu, %u bytes, body %s", i, (unsigned long long)rec->req_id,
              rec->len, got && !memcmp(got, want, len) ? "same" : "differs");
    }
    eventlog_reader_close(r);
    remove_log(dir);
}

/* A file-size limit below the big body: its write fails (EFBIG) and the log says so. */
static void refused_big_body(char *big)
{
    char dir[] = "/tmp/strobe-eventlog-XXXXXX";
    struct eventlog *l = new_log(dir);
    if (!l) return;
    struct rlimit was, small = {1u << 20, 1u << 20};
    getrlimit(RLIMIT_FSIZE, &was);
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &small);
    struct log_record b = event(1, BIG);
    eventlog_put(l, 0, &b, big, BIG);
    eventlog_sync(l);
    const char *why = eventlog_error(l);
    CHECK(why && strstr(why, "bodies.bin"), "a refused big body is an error naming bodies.bin: %s",
          why ? why : "(none)");
    CHECK(eventlog_close(l) != 0 || why, "close reports the failure");
    setrlimit(RLIMIT_FSIZE, &was);
    remove_log(dir);
}

/* Every write to events.bin while `watched` is set is checked as it is made: each record it
 * writes must point within bodies.bin as the file is then (this test is linked with
 * -Wl,--wrap=pwrite64, so the log's own writes come here first). */
ssize_t __real_pwrite64(int fd, const void *buf, size_t n, off_t at);
static const char *watched;
static size_t watched_writes, records_written, records_past;

static int is_watched_events_file(int fd)
{
    char link[64], target[4200];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) return 0;
    target[n] = 0;
    size_t dl = strlen(watched);
    return !strncmp(target, watched, dl) && !strcmp(target + dl, "/events.bin");
}

ssize_t __wrap_pwrite64(int fd, const void *buf, size_t n, off_t at);
ssize_t __wrap_pwrite64(int fd, const void *buf, size_t n, off_t at)
{
    if (!watched || !is_watched_events_file(fd)) return __real_pwrite64(fd, buf, n, at);
    char path[4200];
    snprintf(path, sizeof path, "%s/bodies.bin", watched);
    struct stat st;
    uint64_t bodies_size = stat(path, &st) ? 0 : (uint64_t)st.st_size;
    /* the header's length, from the file (written whole before any record) or this write */
    snprintf(path, sizeof path, "%s/events.bin", watched);
    char head[16];
    FILE *in = at ? fopen(path, "rb") : NULL;
    int got = at ? in && fread(head, 1, 16, in) == 16 : n >= 16;
    if (in) fclose(in);
    if (!at && got) memcpy(head, buf, 16);
    uint32_t hl = 0;
    if (got) memcpy(&hl, head + 12, 4);
    uint64_t from = 16 + (uint64_t)hl;
    watched_writes++;
    for (uint64_t q = (uint64_t)at; got && q + sizeof(struct log_record) <= (uint64_t)at + n;
         q += 64) {
        if (q < from || (q - from) % sizeof(struct log_record)) continue;
        struct log_record rec;
        memcpy(&rec, (const char *)buf + (q - (uint64_t)at), sizeof rec);
        records_written++;
        if (rec.len && rec.off + rec.len > bodies_size) records_past++;
    }
    return __real_pwrite64(fd, buf, n, at);
}

static void watch(const char *dir)
{
    watched = dir;
    watched_writes = records_written = records_past = 0;
}

/* Closes the watched log of `records` records: none of its writes pointed past bodies.bin. */
static void close_watched(struct eventlog *l, uint64_t records)
{
    CHECK(eventlog_close(l) == 0, "close: %s", eventlog_error(l) ? eventlog_error(l) : "");
    watched = NULL;
    CHECK(records_past == 0 && records_written >= records,
          "%zu of %zu records written pointed past bodies.bin's end then (%zu writes)",
          records_past, records_written, watched_writes);
}

/* Records written between the timed flushes point at bodies already in bodies.bin: the
 * collector writes bodies.bin's whole blocks only, then events.bin's up to the last record
 * those cover. Checked at every write of a fast stream of events, mostly short. */
static void records_never_past_bodies(void)
{
    char dir[] = "/tmp/strobe-eventlog-XXXXXX";
    struct eventlog *l = new_log(dir);
    if (!l) return;
    watch(dir);
    static char body[800];
    uint64_t req = 0;
    srand(7);
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < 20000; i++, req++) {
            /* mostly short bodies: bodies.bin's last partial block then holds the bodies of
             * more records than a block of events.bin */
            size_t len = req % 5 == 4    ? 0
                         : req % 97 == 0 ? (size_t)rand() % 800
                                         : 1 + (size_t)rand() % 40;
            fill(body, len, (unsigned)req);
            struct log_record rec = event(req, len);
            eventlog_put(l, 0, &rec, body, len);
        }
        struct timespec nap = {0, (long)(rand() % 3000) * 1000};
        nanosleep(&nap, NULL);
    }
    close_watched(l, req);
    char err[512];
    struct eventlog_reader *r = eventlog_open(dir, err, sizeof err);
    CHECK(r != NULL, "open: %s", err);
    size_t bad = 0;
    for (size_t i = 0; r && i < r->nrecords; i++) {
        const struct log_record *rec = &r->records[i];
        fill(body, rec->len, (unsigned)rec->req_id);
        char keyed[BODY_KEY_MAX];
        size_t len;
        const char *b = eventlog_body(r, rec, keyed, &len);
        if (rec->len && (!b || len != rec->len || memcmp(b, body, rec->len))) bad++;
    }
    CHECK(r && r->nrecords == req && bad == 0, "%zu records of %llu back, %zu bodies differ",
          r ? r->nrecords : 0, (unsigned long long)req, bad);
    if (r) eventlog_reader_close(r);
    remove_log(dir);
}

/* A long run of records without bodies behind one short body: they are not held back until
 * the next timed flush (the events buffer would fill, and a full buffer writes its whole
 * blocks whatever they point at); bodies.bin's last partial block is written for them. Two
 * rings, so that one pass of the collector takes more than the buffer holds. */
static void bodyless_run_behind_a_body(void)
{
    char dir[] = "/tmp/strobe-eventlog-XXXXXX";
    struct eventlog *l = new_log_of(dir, 2);
    if (!l) return;
    watch(dir);
    uint64_t req = 0;
    for (int round = 0; round < 6; round++) {
        struct log_record rec = event(req++, 1);
        eventlog_put(l, 0, &rec, "x", 1);
        for (int i = 0; i < 150000; i++, req++) {
            rec = event(req, 0);
            eventlog_put(l, i & 1, &rec, NULL, 0);
        }
    }
    close_watched(l, req);
    char err[512];
    struct eventlog_reader *r = eventlog_open(dir, err, sizeof err);
    CHECK(r && r->nrecords == req, "%zu records of %llu back: %s", r ? r->nrecords : 0,
          (unsigned long long)req, r ? "" : err);
    if (r) eventlog_reader_close(r);
    remove_log(dir);
}

/* A server's chunk of request req: the same JSON around a varying content. */
static size_t chunk(char *out, uint64_t req, int i)
{
    static const char *words[] = {"Hello", " world", ",", " a longer piece of text", "", "\\n"};
    if (i == 0)
        return (size_t)sprintf(out,
                               "{\"id\":\"chatcmpl-%llu\",\"object\":\"chat.completion.chunk\","
                               "\"created\":1700000000,\"model\":\"m\",\"choices\":[{\"index\":0,"
                               "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                               "\"finish_reason\":null}]}",
                               (unsigned long long)req);
    return (size_t)sprintf(out,
                           "{\"id\":\"chatcmpl-%llu\",\"object\":\"chat.completion.chunk\","
                           "\"created\":1700000000,\"model\":\"m\",\"choices\":[{\"index\":0,"
                           "\"delta\":{\"content\":\"%s\"},\"finish_reason\":null}]}",
                           (unsigned long long)req, words[(req + (unsigned)i) % 6]);
}

static void keyed_bodies_round_trip(void)
{
    char dir[] = "/tmp/strobe-eventlog-XXXXXX", err[512];
    struct eventlog *l = new_log_of(dir, 2);
    if (!l) return;
    enum { REQS = 6, EVENTS = 200 };
    struct body_key keys[REQS];
    memset(keys, 0, sizeof keys);
    size_t stored = 0, given = 0, n_keyed = 0;
    for (int i = 0; i < EVENTS; i++) {
        for (uint64_t q = 1; q <= REQS; q++) {
            char body[BODY_KEY_MAX], out[BODY_KEY_HEAD + BODY_KEY_MAX];
            size_t len = i == EVENTS - 1 ? (size_t)sprintf(body, "[DONE]") : chunk(body, q, i),
                   out_len = 0;
            /* requests 1-3 on producer 0, 4-6 on producer 1; slots of each producer its own */
            int producer = q > REQS / 2;
            /* odd requests written in place, as the worker does; even ones through a copy */
            char *slot = q % 2 ? eventlog_event_reserve(l, producer, BODY_KEY_HEAD + len) : NULL;
            char *coded = slot ? slot + sizeof(struct log_record) : out;
            enum body_key_role role = body_key_encode(&keys[q - 1], q, body, len, coded, &out_len);
            struct log_record rec = event(q, 0);
            rec.a = i;
            if (role == BODY_KEYED) {
                rec.c = (int64_t)REC_EVENT_BODY_KEYED;
                n_keyed++;
            }
            if (slot) {
                if (role != BODY_KEYED) memcpy(coded, body, len);
                memcpy(slot, &rec, sizeof rec);
                eventlog_event_commit(l, producer, slot, role == BODY_KEYED ? out_len : len, role,
                                      (uint32_t)(q - 1) % 3);
            } else {
                eventlog_put_event(l, producer, &rec, role == BODY_KEYED ? out : body,
                                   role == BODY_KEYED ? out_len : len, role, (uint32_t)(q - 1) % 3);
            }
            stored += role == BODY_KEYED ? out_len : len;
            given += len;
        }
    }
    CHECK(eventlog_close(l) == 0, "close: %s", "write error");
    struct eventlog_reader *r = eventlog_open(dir, err, sizeof err);
    CHECK(r != NULL, "open: %s", err);
    if (!r) return;
    size_t bad = 0;
    for (size_t i = 0; i < r->nrecords; i++) {
        const struct log_record *rec = &r->records[i];
        char want[BODY_KEY_MAX], keyed[BODY_KEY_MAX];
        size_t want_len = rec->a == EVENTS - 1 ? (size_t)sprintf(want, "[DONE]")
                                               : chunk(want, rec->req_id, (int)rec->a),
               len;
        const char *got = eventlog_body(r, rec, keyed, &len);
        if (!got || len != want_len || memcmp(got, want, len)) bad++;
    }
    CHECK(r->nrecords == REQS * EVENTS && bad == 0, "%zu records of %d, %zu bodies differ",
          r->nrecords, REQS * EVENTS, bad);
    CHECK(n_keyed >= REQS * (EVENTS - 3) && stored * 4 < given,
          "keyed: %zu of %d events, %zu bytes stored for %zu given", n_keyed, REQS * EVENTS, stored,
          given);
    /* a damaged keyed body (its key past the file's end) reads as missing, not as bytes */
    struct log_record damaged = r->records[REQS * 2];
    char keyed[BODY_KEY_MAX];
    size_t len;
    CHECK(log_body_is_keyed(&damaged), "the third event is keyed");
    if (r->bodies_len > damaged.off + 8) {
        char copy[BODY_KEY_HEAD + BODY_KEY_MAX];
        memcpy(copy, r->bodies + damaged.off, damaged.len);
        memset(copy, 0xff, 8);
        damaged.off = 0;
        CHECK(!eventlog_body_in(copy, damaged.len, &damaged, keyed, &len),
              "a key past the end is refused");
    }
    eventlog_reader_close(r);
    remove_log(dir);
}

int main(void)
{
    char *big = malloc(BIG);
    CHECK(big != NULL, "memory for the big body");
    if (!big) return check_done("eventlog");
    /* before refused_big_body's file size limit */
    records_never_past_bodies();
    bodyless_run_behind_a_body();
    big_body_round_trip(big);
    keyed_bodies_round_trip();
    refused_big_body(big);
    free(big);
    return check_done("eventlog");
}
