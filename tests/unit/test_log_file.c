/* log_file: after every write the file holds exactly the bytes put so far (never padding), direct
 * or plain, whole blocks direct or through the page cache, or only those below a point; a
 * header written before open is kept; a refused direct write falls back to plain; a failed
 * write drops its bytes and keeps later offsets. Direct checks run where /tmp's file system states
 * a direct I/O alignment (ext4 or xfs on Linux 6.1+); tmpfs is the plain case. */
#include "check.h"
#include "log_file.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char pattern_at(uint64_t i) { return (char)(i * 2654435761u >> 13); }

/* The file at path holds exactly `len` bytes: the header's `hlen`, then pattern bytes; those
 * before `from` are not read. */
static int file_holds_from(const char *path, const char *header, size_t hlen, uint64_t from,
                           uint64_t len)
{
    struct stat st;
    if (stat(path, &st) || (uint64_t)st.st_size != len) {
        printf("  %s: %lld bytes, %llu expected\n", path, (long long)st.st_size,
               (unsigned long long)len);
        return 0;
    }
    FILE *in = fopen(path, "rb");
    if (!in) return 0;
    int ok = fseeko(in, (off_t)from, SEEK_SET) == 0;
    for (uint64_t i = from; i < len && ok; i++) {
        int c = fgetc(in);
        char want = i < hlen ? header[i] : pattern_at(i - hlen);
        if (c != (unsigned char)want) {
            printf("  %s: byte %llu is %d, %d expected\n", path, (unsigned long long)i, c,
                   (unsigned char)want);
            ok = 0;
        }
    }
    fclose(in);
    return ok;
}

static int file_holds(const char *path, const char *header, size_t hlen, uint64_t len)
{
    return file_holds_from(path, header, hlen, 0, len);
}

struct trial {
    char path[4096];
    struct log_file f;
    const char *header;
    size_t hlen;
    uint64_t put; /* pattern bytes put */
};

static int trial_open(struct trial *t, const char *dir, const char *name, const char *header,
                      size_t room, int want_direct)
{
    snprintf(t->path, sizeof t->path, "%s/%s", dir, name);
    t->header = header;
    t->hlen = strlen(header);
    t->put = 0;
    int fd = open(t->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHECK(fd >= 0, "open %s: %s", t->path, strerror(errno));
    if (fd < 0) return -1;
    int rc = log_file_open(&t->f, fd, t->path, room, want_direct);
    CHECK(rc == 0, "log_file_open");
    if (rc) return rc;
    /* the header written first and whole, as the event log writes its own */
    rc = log_file_put(&t->f, header, t->hlen) || log_file_write(&t->f, 1, 0) ? -1 : 0;
    CHECK(rc == 0, "header write");
    return rc;
}

/* Puts n pattern bytes; a failed put takes its bytes all the same. */
static int trial_put(struct trial *t, size_t n)
{
    static char chunk[1 << 20];
    int rc = 0, saved = 0;
    while (n) {
        size_t take = n < sizeof chunk ? n : sizeof chunk;
        for (size_t i = 0; i < take; i++) chunk[i] = pattern_at(t->put + i);
        if (log_file_put(&t->f, chunk, take)) {
            rc = -1;
            saved = errno;
        }
        t->put += take;
        n -= take;
    }
    if (rc) errno = saved;
    return rc;
}

/* Random puts, whole-block writes and full writes; the file checked after each. */
static void exercise(struct trial *t, const char *what, unsigned seed)
{
    srand(seed);
    for (int step = 0; step < 60; step++) {
        size_t n = (size_t)rand() % 3 == 0 ? (size_t)rand() % 300000 : (size_t)rand() % 5000;
        CHECK(trial_put(t, n) == 0, "%s: put %zu: %s", what, n, strerror(errno));
        int all = rand() % 3 == 0, cached = rand() % 4 == 0;
        if (rand() % 3 == 0) {
            /* whole blocks below a point only: none past it (nor past what was there) */
            uint64_t total = t->hlen + t->put, before = total - log_file_waiting(&t->f);
            /* at times below what the file holds already, or below the buffer's start */
            uint64_t low = before > 10000 ? before - 10000 : 0;
            uint64_t upto = low + (uint64_t)rand() % (total - low + 1);
            CHECK(log_file_write_below(&t->f, upto, cached) == 0, "%s: write below: %s", what,
                  strerror(errno));
            uint64_t now = total - log_file_waiting(&t->f), most = upto > before ? upto : before;
            uint64_t least = t->f.direct_fd < 0 ? most : upto / t->f.align * t->f.align;
            CHECK(now <= most && now >= least && now >= before,
                  "%s: step %d: below %llu the file grew from %llu to %llu", what, step,
                  (unsigned long long)upto, (unsigned long long)before, (unsigned long long)now);
            CHECK(file_holds(t->path, t->header, t->hlen, now), "%s: step %d, after write below",
                  what, step);
        } else if (rand() % 2) {
            CHECK(log_file_write(&t->f, all, cached) == 0, "%s: write: %s", what, strerror(errno));
            uint64_t total = t->hlen + t->put;
            if (all) {
                CHECK(log_file_waiting(&t->f) == 0, "%s: %zu bytes still wait after write(all)",
                      what, log_file_waiting(&t->f));
                CHECK(file_holds(t->path, t->header, t->hlen, total),
                      "%s: step %d, after write(all)", what, step);
            } else {
                /* whole blocks written: what waits is less than a block */
                CHECK(log_file_waiting(&t->f) < t->f.align || t->f.direct_fd < 0,
                      "%s: %zu bytes wait after a direct write", what, log_file_waiting(&t->f));
                CHECK(file_holds(t->path, t->header, t->hlen, total - log_file_waiting(&t->f)),
                      "%s: step %d, after write", what, step);
            }
        }
    }
    CHECK(log_file_write(&t->f, 1, 0) == 0, "%s: last write", what);
    CHECK(file_holds(t->path, t->header, t->hlen, t->hlen + t->put), "%s: at the end", what);
}

static void test_modes(const char *dir, int direct_here)
{
    struct trial t;
    char mode[200];
    if (trial_open(&t, dir, "plain", "{\"header\":\"plain\"}", 64 << 10, 0)) return;
    CHECK(t.f.direct_fd < 0, "want_direct 0 gave a direct descriptor");
    CHECK(!strcmp(log_file_mode(&t.f, mode, sizeof mode), "plain (through the page cache)"),
          "mode: %s", mode);
    exercise(&t, "plain", 1);
    CHECK(log_file_close(&t.f, 1) == 0, "close plain");

    /* a header of 100 bytes: its partial block is carried and rewritten whole */
    char header[101];
    memset(header, 'h', 100);
    header[100] = 0;
    if (trial_open(&t, dir, "direct", header, 64 << 10, 1)) return;
    log_file_mode(&t.f, mode, sizeof mode);
    if (direct_here) {
        CHECK(t.f.direct_fd >= 0 && !strncmp(mode, "direct (O_DIRECT, ", 18), "mode: %s", mode);
        CHECK(t.f.align >= 4096 && !(t.f.align & (t.f.align - 1)), "align %zu", t.f.align);
    } else
        CHECK(strstr(mode, "states no direct I/O alignment") != NULL, "mode: %s", mode);
    exercise(&t, "direct", 2);
    /* whole blocks went both ways, as asked */
    CHECK(!direct_here || (t.f.direct_bytes > 0 && t.f.cached_bytes > 0 &&
                           t.f.direct_bytes % t.f.align == 0 && t.f.cached_bytes % t.f.align == 0),
          "whole blocks direct %llu, through the page cache %llu",
          (unsigned long long)t.f.direct_bytes, (unsigned long long)t.f.cached_bytes);
    /* one put of many buffers' worth at once */
    CHECK(trial_put(&t, 5u << 20) == 0, "a 5 MiB put");
    CHECK(log_file_write(&t.f, 1, 0) == 0, "write after the 5 MiB put");
    CHECK(file_holds(t.path, t.header, t.hlen, t.hlen + t.put), "after the 5 MiB put");
    CHECK(log_file_close(&t.f, 1) == 0, "close direct");
    printf("%s: %s\n", dir, mode);
}

/* A file system that states an alignment and refuses a write of it: plain from then on, and
 * nothing lost. Made by claiming a 64-byte alignment, which no block device takes. */
static void test_refused_direct(const char *dir)
{
    struct trial t;
    char mode[200];
    if (trial_open(&t, dir, "refused", "", 64 << 10, 1)) return;
    if (t.f.direct_fd < 0) {
        log_file_close(&t.f, 0);
        return;
    }
    t.f.align = 64;
    CHECK(trial_put(&t, 4096 + 64 + 10) == 0, "put");
    CHECK(log_file_write(&t.f, 0, 0) == 0, "the refused write is redone plainly: %s",
          strerror(errno));
    CHECK(t.f.direct_fd < 0, "still direct after EINVAL");
    CHECK(strstr(log_file_mode(&t.f, mode, sizeof mode), "refused a direct write") != NULL,
          "mode: %s", mode);
    exercise(&t, "after a refused direct write", 3);
    log_file_close(&t.f, 1);
}

/* A write the file system fails (here the file size limit, EFBIG): -1 with errno, the bytes
 * dropped, and later bytes at their own offsets once writes work again. */
static void test_failed_write(const char *dir, int want_direct)
{
    struct trial t;
    struct rlimit old, small;
    if (trial_open(&t, dir, want_direct ? "failed-direct" : "failed-plain", "", 64 << 10,
                   want_direct))
        return;
    int was_direct = t.f.direct_fd >= 0;
    getrlimit(RLIMIT_FSIZE, &old);
    small = old;
    small.rlim_cur = 1 << 20;
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0, "setrlimit");
    int rc = trial_put(&t, (3u << 20) + 100);
    CHECK(rc == -1 && errno == EFBIG, "a put past the size limit: rc %d, %s", rc, strerror(errno));
    /* and a write of what waits, which ends mid-block */
    rc = log_file_write(&t.f, 1, 0);
    CHECK(rc == -1 && errno == EFBIG, "a write past the size limit: rc %d, %s", rc,
          strerror(errno));
    setrlimit(RLIMIT_FSIZE, &old);
    /* later puts go on from where the dropped bytes ended */
    uint64_t dropped_to = t.f.start + t.f.len;
    CHECK(dropped_to == t.put, "offsets kept: %llu of %llu", (unsigned long long)dropped_to,
          (unsigned long long)t.put);
    CHECK(trial_put(&t, 10000) == 0 && log_file_write(&t.f, 1, 0) == 0, "writes after the failure");
    CHECK(file_holds_from(t.path, "", 0, dropped_to, t.put), "the bytes put after the failure");
    struct stat st;
    char mode[200];
    CHECK(!was_direct || t.f.direct_fd >= 0, "a failed write made the file plain: %s",
          log_file_mode(&t.f, mode, sizeof mode));
    CHECK(stat(t.path, &st) == 0 && (uint64_t)st.st_size == t.put, "file is %lld bytes, %llu put",
          (long long)st.st_size, (unsigned long long)t.put);
    log_file_close(&t.f, 0);
}

/* Whether dir's file system takes direct I/O: the machine's fact; both outcomes are checked. */
static int takes_direct(const char *dir)
{
    struct trial probe;
    int direct = 0;
    if (!trial_open(&probe, dir, "direct", "", 4096, 1)) {
        direct = probe.f.direct_fd >= 0;
        log_file_close(&probe.f, 0);
    }
    return direct;
}

static void remove_dir(const char *dir)
{
    const char *names[] = {"plain", "direct", "refused", "failed-direct", "failed-plain"};
    char path[4096];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(void)
{
    signal(SIGXFSZ, SIG_IGN); /* a write past RLIMIT_FSIZE fails with EFBIG instead */
    /* /tmp, else the working directory (the build folder under meson), for the direct checks */
    char tmp[] = "/tmp/strobe-log-file-XXXXXX", here[] = "strobe-log-file-XXXXXX";
    char *dir = mkdtemp(tmp);
    CHECK(dir != NULL, "mkdtemp: %s", strerror(errno));
    if (dir && !takes_direct(dir) && mkdtemp(here)) {
        remove_dir(dir);
        dir = here;
    }
    if (!dir) return check_done("log_file");
    int direct = takes_direct(dir);
    if (!direct)
        printf("SKIP the direct checks: neither /tmp nor the working directory states a direct "
               "I/O alignment (tmpfs, or Linux before 6.1)\n");
    test_modes(dir, direct);
    test_refused_direct(dir);
    test_failed_write(dir, 0);
    test_failed_write(dir, 1);
    remove_dir(dir);

    char shm[] = "/dev/shm/strobe-log-file-XXXXXX";
    if (mkdtemp(shm)) { /* tmpfs: no direct I/O alignment stated */
        test_modes(shm, takes_direct(shm));
        remove_dir(shm);
    }
    return check_done("log_file");
}
