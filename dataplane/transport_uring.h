/* --transport uring: kernel TCP sockets driven through one io_uring per worker (share-nothing).
 * Connects go through the ring; receives are one multishot recvmsg per connection into a
 * provided buffer ring, so each completion carries its bytes and their SO_TIMESTAMPING stamp,
 * and one io_uring_enter both submits and reaps many completions. Sends are plain send()
 * calls (one per request, not per chunk). TLS is tls_layer.c over it, as over the kernel
 * transport. Readiness reaches the worker through ops->poll (transport.h). */
#ifndef STROBE_TRANSPORT_URING_H
#define STROBE_TRANSPORT_URING_H
#include "transport.h"

/* Once per process, before any context: checks that io_uring, the opcodes used and provided
 * buffer rings work here, and whether multishot recvmsg and deferred task work do (else the
 * single-shot / plain fallbacks run). STROBE_URING_DISABLE=multishot,defer-taskrun,io_uring
 * (any subset) forces the fallbacks, or io_uring's absence, for tests. 0 with `line` saying
 * which path runs; -1 with `err` one sentence (io_uring unusable: use --transport kernel). */
int transport_uring_probe(char *line, size_t n, char *err, size_t errlen);
/* One ring, its buffer ring and a TLS context, for one worker. Made on any thread; the
 * worker thread that first calls open or poll on it owns it from then on. NULL with err set. */
struct transport_ctx *transport_uring_ctx_new(const struct transport_options *o, char *err,
                                              size_t errlen);
/* After the worker has stopped: waits briefly for cancelled operations to complete, and
 * warns on stderr if a receive buffer was never given back to the ring (a leak). */
void transport_uring_ctx_free(struct transport_ctx *x);
const struct transport_ops *transport_uring_ops(int tls);

#endif
