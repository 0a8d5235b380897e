/* The event log's writer and reader around its edges: a body longer than a ring takes whole
 * (by reference) comes back byte for byte between ordinary ones, and a body the disk refuses
 * is an error, not a log that looks whole. */
#include "check.h"
#include "eventlog.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

/* A log in a new folder made from dir (a mkdtemp template); NULL after a failed check. */
static struct eventlog *new_log(char *dir)
{
    char err[512];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    struct eventlog *l =
        eventlog_create(dir, "{\"kind\":\"slt\",\"config\":{}}", 1, err, sizeof err);
    CHECK(l != NULL, "create log: %s", err);
    return l;
}

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
        const char *got = eventlog_body(r, rec);
        CHECK(rec->req_id == i + 1 && rec->len == len && got && !memcmp(got, want, len),
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

int main(void)
{
    char *big = malloc(BIG);
    CHECK(big != NULL, "memory for the big body");
    if (!big) return check_done("eventlog");
    big_body_round_trip(big);
    refused_big_body(big);
    free(big);
    return check_done("eventlog");
}
