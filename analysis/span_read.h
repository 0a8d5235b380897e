/* A span of a file read into a buffer that one thread reuses, for the analysis's passes over
 * the event log: read(2) copies a page for about a quarter of what mapping it in and touching
 * it costs on this project's virtual machines (measured: README, the analysis benchmark), and
 * a copied page leaves nothing mapped to drop afterwards. */
#ifndef STROBE_SPAN_READ_H
#define STROBE_SPAN_READ_H
#include <stddef.h>
#include <stdint.h>

struct span_buf {
    char *buf;
    size_t cap;
};

/* The largest span read at once: a longer one (a damaged log's huge body) is left to the
 * mapping, so the buffer never grows past this. */
#define SPAN_READ_MAX (64u << 20)

/* Bytes [off, off + len) of fd in sb's buffer (valid until the next call), or NULL when
 * they cannot be read whole (then the caller reads the mapping instead). */
const char *span_read(struct span_buf *sb, int fd, uint64_t off, size_t len);
void span_buf_free(struct span_buf *sb);

#endif
