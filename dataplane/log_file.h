/* One of the event log's append-only files, as the collector writes it. Where the file system
 * says it takes direct I/O (statx STATX_DIOALIGN), whole aligned blocks go to the device with
 * O_DIRECT: no copy into the page cache on the collector's core (that copy, and the first touch
 * of the cache's pages, was most of a fast run's process CPU beside the worker). The bytes of a
 * last partial block go through the page cache, so that the file always holds exactly the bytes
 * written, never padding; the next direct write rewrites that block whole. Elsewhere (tmpfs,
 * kernels before 6.1, a direct write refused with EINVAL) every byte is written plainly. The
 * caller may also send whole blocks through the page cache (log_file_write's cached; the event
 * log does not). */
#ifndef STROBE_LOG_FILE_H
#define STROBE_LOG_FILE_H
#include <stddef.h>
#include <stdint.h>

struct log_file {
    int fd;        /* plain writes: the tail, the fallback, fsync */
    int direct_fd; /* O_DIRECT, or -1 */
    size_t align;  /* of a direct write's offset, length and buffer */
    char *buf;     /* buf[0] lies at file offset start */
    size_t len, cap;
    uint64_t start;
    uint64_t end;       /* bytes in the file */
    char why_plain[96]; /* direct was asked and is not used: why */
    /* while direct: the bytes of whole blocks written direct, and through the page cache
     * (log_file_write's cached); the time the direct writes took */
    uint64_t direct_bytes, cached_bytes;
    uint64_t direct_ns;
};

/* Takes fd, the empty file at path opened for plain writes. room: the most log_file_put may
 * hold before it writes. 0, or -1 (out of memory; fd stays open). want_direct 0: plain writes
 * only. */
int log_file_open(struct log_file *f, int fd, const char *path, size_t room, int want_direct);
/* Appends n bytes, writing whole blocks as the buffer fills. 0, or -1 with errno: a write
 * failed, its bytes were dropped, and all n bytes were taken all the same (offsets kept). */
int log_file_put(struct log_file *f, const void *p, size_t n);
/* Bytes waiting to be written (beyond the file's end). */
size_t log_file_waiting(const struct log_file *f);
/* Writes what waits: with all 0, whole blocks only (direct), else every byte, so that the file
 * holds everything put. cached: this time the whole blocks too go through the page cache (the
 * file stays direct). 0, or -1 with errno: what waited is dropped, later
 * bytes keep their offsets (the failed stretch reads as a hole or as what an earlier write
 * left). */
int log_file_write(struct log_file *f, int all, int cached);
/* log_file_write with all 0, of the whole blocks below file offset upto only. */
int log_file_write_below(struct log_file *f, uint64_t upto, int cached);
/* The byte at file offset at while it waits in the buffer, else NULL. */
const char *log_file_buffered(const struct log_file *f, uint64_t at);
/* "direct (O_DIRECT, N-byte blocks)" or "plain (through the page cache[: why not direct])". */
const char *log_file_mode(const struct log_file *f, char *buf, size_t len);
/* Closes both descriptors (after fsync when sync); 0, or -1 when fsync failed. */
int log_file_close(struct log_file *f, int sync);

#endif
