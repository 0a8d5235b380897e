#include "span_read.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

const char *span_read(struct span_buf *sb, int fd, uint64_t off, size_t len)
{
    if (fd < 0 || len > SPAN_READ_MAX) return NULL;
    if (len > sb->cap) {
        /* mapped, not malloc'ed: freeing a block this large through malloc would raise its
         * threshold for mapping blocks, and the analysis's later large blocks would then stay
         * in the heap when freed (a higher peak) */
        size_t cap = sb->cap * 2 < SPAN_READ_MAX ? sb->cap * 2 : SPAN_READ_MAX;
        if (cap < len) cap = len;
        char *buf = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (buf == MAP_FAILED) return NULL;
        span_buf_free(sb);
        sb->buf = buf;
        sb->cap = cap;
    }
    for (size_t got = 0; got < len;) {
        ssize_t n = pread(fd, sb->buf + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return NULL; /* an error, or the file is shorter than it was mapped */
        got += (size_t)n;
    }
    return sb->buf;
}

void span_buf_free(struct span_buf *sb)
{
    if (sb->buf) munmap(sb->buf, sb->cap);
    memset(sb, 0, sizeof *sb);
}
