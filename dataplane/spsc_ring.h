/* Single-producer single-consumer byte ring of length-prefixed messages. The producer (a
 * worker) never blocks on the consumer except when the ring is full; no locks, no syscalls. */
#ifndef STROBE_SPSC_RING_H
#define STROBE_SPSC_RING_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Each side keeps the last index it read of the other's and reads the other's again only
 * when that one says full (the producer) or empty (the consumer): a load of an index the
 * other core keeps writing moves its cache line across, and once per message that cost the
 * worker more than its own work per event. */
struct spsc_ring {
    char *buf;
    size_t cap;                       /* power of two */
    _Alignas(64) _Atomic size_t head; /* written by the producer */
    _Alignas(64) _Atomic size_t tail; /* written by the consumer */
    size_t seen_head;                 /* the consumer's last read of head (consumer-owned) */
    _Alignas(64) size_t seen_tail;    /* the producer's last read of tail (producer-owned) */
    uint64_t full_waits;              /* producer found it full (producer-owned) */
};

int spsc_init(struct spsc_ring *r, size_t cap_pow2);
void spsc_free(struct spsc_ring *r);
/* Reserves room for a message of len bytes; NULL when full (retry later). */
void *spsc_reserve(struct spsc_ring *r, size_t len);
/* Publishes the reserved message: len at most the length reserved. */
void spsc_commit(struct spsc_ring *r, size_t len);
/* Next message, or NULL; then spsc_release(r, len). */
const void *spsc_peek(struct spsc_ring *r, size_t *len);
void spsc_release(struct spsc_ring *r, size_t len);

#endif
