#include "log_file.h"

#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A plain write copies into the page cache on this core, which the kernel does not preempt:
 * 128 KiB at most per call keeps a worker that wakes behind it waiting tens of µs, not ms.
 * A direct write copies nothing and sleeps; 1 MiB (a multiple of any alignment used here)
 * costs a quarter of the CPU per byte that 128 KiB does. */
#define PLAIN_WRITE_MAX  (128u << 10)
#define DIRECT_WRITE_MAX (1u << 20)

static int pwrite_all(int fd, const char *p, size_t n, uint64_t at, size_t most, size_t *done)
{
    *done = 0;
    while (n) {
        ssize_t w = pwrite(fd, p, n < most ? n : most, (off_t)at);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (w == 0) {
            errno = ENOSPC;
            return -1;
        }
        p += w;
        at += (uint64_t)w;
        n -= (size_t)w;
        *done += (size_t)w;
    }
    return 0;
}

/* The direct I/O alignment the file system states for fd's file, or 0: none stated. A page
 * when it divides one, so that a direct write covers whole pages of the cache it bypasses. */
static size_t direct_alignment(int fd)
{
#ifdef STATX_DIOALIGN
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) || !(sx.stx_mask & STATX_DIOALIGN) ||
        !sx.stx_dio_offset_align || !sx.stx_dio_mem_align)
        return 0;
    size_t need = sx.stx_dio_offset_align > sx.stx_dio_mem_align ? sx.stx_dio_offset_align
                                                                 : sx.stx_dio_mem_align;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (need & (need - 1) || page & (page - 1) || need > DIRECT_WRITE_MAX) return 0; /* unseen */
    return need < page ? page : need;
#else
    (void)fd; /* C library headers from before Linux 6.1: plain writes */
    return 0;
#endif
}

/* A second descriptor of fd's file with O_DIRECT, or -1. By path, checked to be the same
 * file: O_DIRECT set with fcntl on a dup would apply to fd too. */
static int open_direct(int fd, const char *path)
{
    int d = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC | O_NOFOLLOW);
    if (d < 0) return -1;
    struct stat a, b;
    if (fstat(fd, &a) || fstat(d, &b) || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
        close(d);
        return -1;
    }
    return d;
}

int log_file_open(struct log_file *f, int fd, const char *path, size_t room, int want_direct)
{
    memset(f, 0, sizeof *f);
    f->fd = fd;
    f->direct_fd = -1;
    f->align = 64;
    size_t align = want_direct ? direct_alignment(fd) : 0;
    if (align && (f->direct_fd = open_direct(fd, path)) >= 0)
        f->align = align;
    else if (want_direct)
        snprintf(f->why_plain, sizeof f->why_plain, "%s",
                 align ? "opening it for direct I/O failed"
                       : "its file system states no direct I/O alignment");
    f->cap = (room + 2 * f->align - 1) / f->align * f->align;
    f->buf = aligned_alloc(f->align, f->cap);
    if (!f->buf) {
        if (f->direct_fd >= 0) close(f->direct_fd);
        f->direct_fd = -1;
        return -1;
    }
    return 0;
}

size_t log_file_waiting(const struct log_file *f) { return (size_t)(f->start + f->len - f->end); }

/* Writes buf's bytes not yet in the file plainly, up to file offset to (within buf). */
static int write_plain_to(struct log_file *f, uint64_t to)
{
    if (to <= f->end) return 0;
    size_t done, from = (size_t)(f->end - f->start);
    int rc =
        pwrite_all(f->fd, f->buf + from, (size_t)(to - f->end), f->end, PLAIN_WRITE_MAX, &done);
    f->end += done;
    return rc;
}

/* Writes buf's whole blocks below file offset upto (all of them: UINT64_MAX), then with all
 * the rest plainly. */
static int write_some(struct log_file *f, int all, int cached, uint64_t upto)
{
    uint64_t buffered_end = f->start + f->len;
    if (all || upto > buffered_end) upto = buffered_end;
    if (upto < f->start) upto = f->start;
    if (f->direct_fd < 0) {
        if (write_plain_to(f, upto)) return -1;
        size_t written = (size_t)(upto - f->start);
        if (written) memmove(f->buf, f->buf + written, f->len - written);
        f->start = upto;
        f->len -= written;
        return 0;
    }
    size_t whole = (size_t)(upto - f->start) / f->align * f->align, done = 0;
    int64_t began = whole && !cached ? clock_mono_ns() : 0;
    int rc = whole ? pwrite_all(cached ? f->fd : f->direct_fd, f->buf, whole, f->start,
                                cached ? PLAIN_WRITE_MAX : DIRECT_WRITE_MAX, &done)
                   : 0;
    if (began) f->direct_ns += (uint64_t)(clock_mono_ns() - began);
    *(cached ? &f->cached_bytes : &f->direct_bytes) += done;
    if (rc) {
        if (!cached && errno == EINVAL && !done) {
            /* a file system that states an alignment and then refuses it: plain from now */
            snprintf(f->why_plain, sizeof f->why_plain, "its file system refused a direct write");
            close(f->direct_fd);
            f->direct_fd = -1;
            return write_some(f, all, cached, upto);
        }
        /* what was written stays; the rest goes plainly, whose error (if any) is the one to
         * report: a direct write stopped short leaves an offset no direct write takes */
        if (f->start + done > f->end) f->end = f->start + done;
        if (write_plain_to(f, upto)) return -1;
    } else if (f->start + whole > f->end)
        f->end = f->start + whole;
    /* the last partial block stays, at an aligned offset, to be rewritten whole */
    if (whole) memmove(f->buf, f->buf + whole, f->len - whole);
    f->start += whole;
    f->len -= whole;
    return all ? write_plain_to(f, upto) : 0; /* with all, upto is buf's end */
}

static int write_or_drop(struct log_file *f, int all, int cached, uint64_t upto)
{
    if (!write_some(f, all, cached, upto)) return 0;
    /* what could not be written is dropped, as the writer's error says: later bytes keep
     * their offsets (a failed stretch reads as a hole), and a full buffer never blocks puts.
     * Direct, the last partial block is kept so that the next write's offset stays aligned. */
    int saved = errno;
    uint64_t to = f->start + f->len;
    size_t keep = f->direct_fd >= 0 ? (size_t)(to % f->align) : 0;
    memmove(f->buf, f->buf + f->len - keep, keep);
    f->start = to - keep;
    f->len = keep;
    f->end = to;
    errno = saved;
    return -1;
}

int log_file_write(struct log_file *f, int all, int cached)
{
    return write_or_drop(f, all, cached, UINT64_MAX);
}

int log_file_write_below(struct log_file *f, uint64_t upto, int cached)
{
    return write_or_drop(f, 0, cached, upto);
}

const char *log_file_buffered(const struct log_file *f, uint64_t at)
{
    return at >= f->start && at - f->start < f->len ? f->buf + (at - f->start) : NULL;
}

int log_file_put(struct log_file *f, const void *p, size_t n)
{
    const char *from = p;
    int rc = 0, saved = 0;
    while (n) {
        /* a failed write drops what waited and the put goes on, so that the bytes after it
         * keep their offsets (a record's body offset is counted before it is put) */
        if (f->len == f->cap && log_file_write(f, 0, 0)) {
            rc = -1;
            saved = errno;
        }
        size_t take = f->cap - f->len < n ? f->cap - f->len : n;
        memcpy(f->buf + f->len, from, take);
        f->len += take;
        from += take;
        n -= take;
    }
    if (rc) errno = saved;
    return rc;
}

const char *log_file_mode(const struct log_file *f, char *buf, size_t len)
{
    if (f->direct_fd >= 0)
        snprintf(buf, len, "direct (O_DIRECT, %zu-byte blocks)", f->align);
    else
        snprintf(buf, len, "plain (through the page cache%s%s)", f->why_plain[0] ? ": " : "",
                 f->why_plain);
    return buf;
}

int log_file_close(struct log_file *f, int sync)
{
    int rc = sync && fsync(f->fd) ? -1 : 0;
    if (f->direct_fd >= 0) close(f->direct_fd);
    close(f->fd);
    free(f->buf);
    f->buf = NULL;
    f->fd = f->direct_fd = -1;
    return rc;
}
