#include "spsc_ring.h"

#include <stdlib.h>
#include <string.h>

/* Messages never wrap: a message that would cross the end is preceded by a skip marker
 * (length SKIP) and placed at offset 0, so readers always see contiguous bytes. */
#define HDR  8
#define SKIP UINT32_MAX

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

int spsc_init(struct spsc_ring *r, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->buf = aligned_alloc(64, cap);
    if (!r->buf) return -1;
    r->cap = cap;
    return 0;
}

void spsc_free(struct spsc_ring *r) { free(r->buf); }

void *spsc_reserve(struct spsc_ring *r, size_t len)
{
    size_t need = HDR + pad8(len);
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t off = head & (r->cap - 1);
    size_t to_end = r->cap - off;
    size_t total = need <= to_end ? need : to_end + need;
    if (need > r->cap / 2) {
        r->full_waits++;
        return NULL;
    }
    if ((head - r->seen_tail) + total > r->cap) {
        /* full by the tail last seen: the consumer may have released since */
        r->seen_tail = atomic_load_explicit(&r->tail, memory_order_acquire);
        if ((head - r->seen_tail) + total > r->cap) {
            r->full_waits++;
            return NULL;
        }
    }
    if (need > to_end) {
        *(uint32_t *)(r->buf + off) = SKIP;
        atomic_store_explicit(&r->head, head + to_end, memory_order_release);
        off = 0;
    }
    return r->buf + off + HDR;
}

void spsc_commit(struct spsc_ring *r, size_t len)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    *(uint32_t *)(r->buf + (head & (r->cap - 1))) = (uint32_t)len;
    atomic_store_explicit(&r->head, head + HDR + pad8(len), memory_order_release);
}

const void *spsc_peek(struct spsc_ring *r, size_t *len)
{
    for (;;) {
        size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        if (tail == r->seen_head) {
            /* empty by the head last seen: the producer may have committed since */
            r->seen_head = atomic_load_explicit(&r->head, memory_order_acquire);
            if (tail == r->seen_head) return NULL;
        }
        size_t off = tail & (r->cap - 1);
        uint32_t l = *(uint32_t *)(r->buf + off);
        if (l == SKIP) {
            atomic_store_explicit(&r->tail, tail + (r->cap - off), memory_order_release);
            continue;
        }
        *len = l;
        return r->buf + off + HDR;
    }
}

void spsc_release(struct spsc_ring *r, size_t len)
{
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    atomic_store_explicit(&r->tail, tail + HDR + pad8(len), memory_order_release);
}
