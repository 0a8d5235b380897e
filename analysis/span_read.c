#include "span_read.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *span_read(struct span_buf *sb, int fd, uint64_t off, size_t len)
{
    if (fd < 0 || len > SPAN_READ_MAX) return NULL;
    if (len > sb->cap) {
        char *buf = realloc(sb->buf, len);
        if (!buf) return NULL;
        sb->buf = buf;
        sb->cap = len;
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
    free(sb->buf);
    memset(sb, 0, sizeof *sb);
}
