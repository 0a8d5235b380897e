#include "value_counts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The distinct values the hash holds before a table takes its adds of a few values into
 * sorted runs: up to about this many (a few hundred KiB of hash) a probe costs less than a
 * key's share of sorting and merging (measured on a 10 M-event log). */
#ifndef HASH_DISTINCT_MAX /* (a test builds it small, to reach every path) */
#define HASH_DISTINCT_MAX (32u << 10)
#endif
/* Keys a pending buffer holds before it is sorted into a run (512 KiB: near the cache). */
#ifndef PENDING_KEYS /* (a test builds it small, to reach every path) */
#define PENDING_KEYS (64u << 10)
#endif
/* Runs of one level merged into one of the next: each key is rewritten once per level. */
#ifndef RUNS_PER_LEVEL /* (a test builds it small, to reach every path) */
#define RUNS_PER_LEVEL 8
#endif
/* The most bytes one encoded (key, count) takes: a 10-byte code (a delta under 2^63 and the
 * count bit), then a 5-byte count. */
#define ENTRY_BYTES_MAX 15
/* An add of more values than this goes to the hash even in a table of runs: the pending
 * buffer holds a key per value. */
#ifndef PENDING_TIMES_MAX /* (a test builds it small, to reach every path) */
#define PENDING_TIMES_MAX 16
#endif

/* A double's bits made an unsigned key whose order is the values' order, and back. */
static uint64_t key_of(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    if (v == 0) bits = 0; /* -0 is +0 */
    /* a negative's bits all flipped, a positive's sign bit set: no branch */
    return bits ^ ((uint64_t)((int64_t)bits >> 63) | 1ULL << 63);
}

static double value_of(uint64_t k)
{
    uint64_t bits = k >> 63 ? k & ~(1ULL << 63) : ~k;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* ---- the hash: a count per distinct key, in parts that grow one at a time ---- */

/* The slot takes bits from 20 up, and a product's bit k depends only on the key's bits 0..k:
 * the key's high half is folded in first, or values whose low bits are all 0 (whole
 * microseconds, halves) would all start their probes at one slot. */
static uint64_t hash(uint64_t key) { return (key ^ key >> 32) * 0x9e3779b97f4a7c15ULL; }

static inline uint64_t slot_key(const struct value_counts_slot *s)
{
    uint64_t key;
    memcpy(&key, s->key, sizeof key);
    return key;
}

/* The part is chosen by the hash's top bits, the slot by the bits below them. */
static size_t slot_of(uint64_t h, size_t cap) { return (size_t)(h >> 20) & (cap - 1); }

/* Doubles a part (the slow path, kept out of add_key's line). */
static int grow(struct value_counts *c, struct value_counts_part *p)
{
    size_t cap = p->cap ? p->cap * 2 : 64;
    struct value_counts_slot *slots = big_realloc(NULL, cap * sizeof *slots);
    if (!slots) return -1;
    memset(slots, 0, cap * sizeof *slots);
    for (size_t i = 0; i < p->cap; i++) {
        if (!p->slots[i].count) continue;
        size_t s = slot_of(hash(slot_key(&p->slots[i])), cap);
        while (slots[s].count) s = (s + 1) & (cap - 1);
        slots[s] = p->slots[i];
    }
    free(p->slots);
    p->slots = slots;
    p->cap = cap;
    p->grow_at = cap / 4 * 3; /* at most 3/4 full */
    c->last_count = NULL;     /* it may have pointed into this part */
    return 0;
}

/* The count of key in p, which has room for it: its slot, taken when key is new. */
static inline uint32_t *slot_for(struct value_counts_part *p, uint64_t key, uint64_t h)
{
    size_t s = slot_of(h, p->cap);
    while (p->slots[s].count && slot_key(&p->slots[s]) != key) s = (s + 1) & (p->cap - 1);
    if (!p->slots[s].count) {
        memcpy(p->slots[s].key, &key, sizeof key);
        p->used++;
    }
    return &p->slots[s].count;
}

/* Adds `times` to key's count (times fits, checked) and remembers its slot. */
static inline int counted(struct value_counts *c, uint64_t key, uint32_t *count, uint64_t times)
{
    *count += (uint32_t)times;
    c->n += times;
    c->last_key = key;
    c->last_count = count;
    return 0;
}

/* A hash past HASH_DISTINCT_MAX distinct values sends its adds of up to PENDING_TIMES_MAX
 * values to sorted runs from now on (what it holds stays, and is merged with the runs by
 * value_counts_sort). */
static void maybe_take_runs(struct value_counts *c)
{
    size_t distinct = 0;
    for (int k = 0; k < VALUE_COUNTS_PARTS; k++) distinct += c->part[k].used;
    if (c->pending || distinct < HASH_DISTINCT_MAX) return;
    /* the keys, then the room to sort them and to encode their run */
    c->pending = malloc(PENDING_KEYS * (sizeof *c->pending + ENTRY_BYTES_MAX));
    c->npending = 0; /* without the buffer (out of memory) the hash goes on alone */
}

/* add_key's slow path, in its own frame so that the common one saves no registers. */
static __attribute__((noinline)) int add_growing(struct value_counts *c,
                                                 struct value_counts_part *p, uint64_t key,
                                                 uint64_t h, uint64_t times)
{
    if (grow(c, p)) return -1;
    int rc = counted(c, key, slot_for(p, key, h), times);
    maybe_take_runs(c);
    return rc;
}

static inline __attribute__((always_inline)) int add_key(struct value_counts *c, uint64_t key,
                                                         uint64_t times)
{
    if (times - 1 >= UINT32_MAX - c->n) return times ? -1 : 0; /* also times == 0 */
    if (key == c->last_key && c->last_count) return counted(c, key, c->last_count, times);
    uint64_t h = hash(key);
    struct value_counts_part *p = &c->part[h >> 60];
    if (p->used >= p->grow_at) return add_growing(c, p, key, h, times);
    return counted(c, key, slot_for(p, key, h), times);
}

/* The queued add at i of the queue's order (0: the oldest) into the hash. n counted it
 * already, so it is taken out and counted again. */
static int add_queued(struct value_counts *c, unsigned i)
{
    unsigned at = (c->queue_head + i) & (VALUE_COUNTS_QUEUE - 1);
    c->n -= c->queued_times[at];
    return add_key(c, c->queued_key[at], c->queued_times[at]);
}

/* Every queued add into the hash: before anything reads the table or sends adds elsewhere. */
static int drain_queue(struct value_counts *c)
{
    int rc = 0;
    for (unsigned i = 0; i < c->nqueued; i++) rc |= add_queued(c, i);
    c->nqueued = 0;
    c->queue_head = 0;
    return rc ? -1 : 0;
}

/* An add to the hash, queued behind VALUE_COUNTS_QUEUE - 1 others while its slot's line comes
 * in; the oldest goes in when the queue is full. Counted in n at once (the limit checked
 * now); a run of one value (a chunk's one token, again and again) stays one entry. */
static inline int add_queueing(struct value_counts *c, uint64_t key, uint64_t times)
{
    if (times - 1 >= UINT32_MAX - c->n) return times ? -1 : 0; /* also times == 0 */
    unsigned last = (c->queue_head + c->nqueued - 1) & (VALUE_COUNTS_QUEUE - 1);
    if (c->nqueued && c->queued_key[last] == key) {
        c->queued_times[last] += times;
        c->n += times;
        return 0;
    }
    int rc = 0;
    if (c->nqueued == VALUE_COUNTS_QUEUE) {
        rc = add_queued(c, 0);
        c->queue_head = (c->queue_head + 1) & (VALUE_COUNTS_QUEUE - 1);
        c->nqueued--;
    }
    uint64_t h = hash(key);
    const struct value_counts_part *p = &c->part[h >> 60];
    if (p->cap) __builtin_prefetch(&p->slots[slot_of(h, p->cap)], 1);
    unsigned at = (c->queue_head + c->nqueued++) & (VALUE_COUNTS_QUEUE - 1);
    c->queued_key[at] = key;
    c->queued_times[at] = times;
    c->n += times;
    return rc;
}

/* ---- sorting a pending buffer: most significant digit first, on the bits that vary ---- */

#define DIGIT_BITS 11
#define SMALL_SORT 24

static void insertion_sort(uint64_t *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint64_t k = a[i];
        size_t j = i;
        for (; j && a[j - 1] > k; j--) a[j] = a[j - 1];
        a[j] = k;
    }
}

/* Sorts a[0..n) with tmp[0..n) as room: the top DIGIT_BITS of the bits that vary in a (equal
 * keys, the common case of a repeated value, end it at once) scatter a into buckets, each
 * then sorted alike. A level takes at least 5 bits (a bucket of more than SMALL_SORT keys
 * has a digit of 5 bits or more), so at most 13 levels deep. */
static void sort_keys(uint64_t *a, uint64_t *tmp, size_t n)
{
    if (n <= SMALL_SORT) {
        insertion_sort(a, n);
        return;
    }
    uint64_t differ = 0;
    for (size_t i = 1; i < n; i++) differ |= a[i] ^ a[0];
    if (!differ) return;
    /* at most DIGIT_BITS, and no more buckets than about twice the keys */
    int top = 63 - __builtin_clzll(differ), bits = 64 - __builtin_clzll((uint64_t)n);
    if (bits > DIGIT_BITS) bits = DIGIT_BITS;
    int shift = top + 1 > bits ? top + 1 - bits : 0;
    size_t mask = ((size_t)1 << (top + 1 - shift)) - 1, nb = mask + 1;
    /* each bucket's start, then (after the scatter) its end: 8 KiB of stack a level */
    uint32_t at[1u << DIGIT_BITS];
    memset(at, 0, nb * sizeof *at);
    for (size_t i = 0; i < n; i++) at[(a[i] >> shift) & mask]++;
    uint32_t sum = 0;
    for (size_t b = 0; b < nb; b++) {
        uint32_t count = at[b];
        at[b] = sum;
        sum += count;
    }
    for (size_t i = 0; i < n; i++) tmp[at[(a[i] >> shift) & mask]++] = a[i];
    memcpy(a, tmp, n * sizeof *a);
    if (!shift) return; /* the digit was the whole of what varies */
    for (size_t b = 0, begin = 0; b < nb; begin = at[b++])
        if (at[b] - begin > 1) sort_keys(a + begin, tmp + begin, at[b] - begin);
}

/* ---- runs: (key, count) ascending by key, each key once, delta-coded ----
 * An entry is a varint code: (key - previous key) << 1 | (count > 1), then, when that bit is
 * set, the varint count - 2. A delta of 2^63 or more (the first key, or one across the sign)
 * is the code 0 or 1 (its count bit) and the delta's 8 raw bytes. Near-unique values cost the
 * bytes of their gap, about 5 for microseconds made from nanoseconds. */

struct run_writer {
    uint8_t *bytes;
    size_t len, cap;
    uint64_t prev;
};

static uint8_t *put_varint(uint8_t *p, uint64_t x)
{
    for (; x >= 0x80; x >>= 7) *p++ = (uint8_t)(x | 0x80);
    *p++ = (uint8_t)x;
    return p;
}

static const uint8_t *get_varint(const uint8_t *p, uint64_t *x)
{
    uint64_t v = 0;
    for (int s = 0;; s += 7) {
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << s;
        if (b < 0x80) break;
    }
    *x = v;
    return p;
}

static int writer_put(struct run_writer *w, uint64_t key, uint64_t count)
{
    if (w->cap - w->len < ENTRY_BYTES_MAX) {
        size_t cap = w->cap * 2 + 4 * ENTRY_BYTES_MAX;
        uint8_t *b = realloc(w->bytes, cap);
        if (!b) return -1;
        w->bytes = b;
        w->cap = cap;
    }
    uint8_t *p = w->bytes + w->len;
    uint64_t delta = key - w->prev, more = count > 1;
    w->prev = key;
    if (delta >> 63) {
        *p++ = (uint8_t)more;
        memcpy(p, &delta, sizeof delta);
        p += sizeof delta;
    } else {
        p = put_varint(p, delta << 1 | more);
    }
    if (more) p = put_varint(p, count - 2);
    w->len = (size_t)(p - w->bytes);
    return 0;
}

/* The writer's bytes as a run, trimmed to their length. */
static struct value_counts_run writer_run(struct run_writer *w, uint32_t level)
{
    if (!w->len) {
        free(w->bytes);
        return (struct value_counts_run){.level = level};
    }
    uint8_t *b = realloc(w->bytes, w->len);
    return (struct value_counts_run){.bytes = b ? b : w->bytes, .len = w->len, .level = level};
}

/* Reads the next entry of bytes[at..end) after key; the new position. */
static const uint8_t *run_next(const uint8_t *p, uint64_t *key, uint64_t *count)
{
    uint64_t code, delta;
    if (*p < 2) {
        code = *p++;
        memcpy(&delta, p, sizeof delta);
        p += sizeof delta;
    } else {
        p = get_varint(p, &code);
        delta = code >> 1;
    }
    *key += delta;
    *count = 1;
    if (code & 1) {
        p = get_varint(p, count);
        *count += 2;
    }
    return p;
}

/* ---- merging sources (runs, and the hash's parts once sorted) into one run ---- */

struct source {
    const uint8_t *at, *end;                           /* a run */
    const struct value_counts_slot *slots, *slots_end; /* or a sorted part */
    const struct value_counts *dense;                  /* or a table's ticks, */
    size_t tick;                                       /* from this one on */
    uint64_t key, count;                               /* the entry it stands at */
};

/* Whether any of the ticks of block b came. */
static int block_used(const uint64_t *blocks, size_t b) { return blocks[b / 64] >> (b % 64) & 1; }

/* The first tick from i on with a count (VALUE_COUNTS_DENSE: none), skipping unused blocks. */
static size_t next_tick(const struct value_counts *c, size_t i)
{
    while (i < VALUE_COUNTS_DENSE) {
        if (!block_used(c->dense_blocks, i / VALUE_COUNTS_DENSE_BLOCK))
            i = (i / VALUE_COUNTS_DENSE_BLOCK + 1) * VALUE_COUNTS_DENSE_BLOCK;
        else if (c->dense[i])
            return i;
        else
            i++;
    }
    return i;
}

/* Moves s to its next entry; 0 when it has none. */
static int source_step(struct source *s)
{
    if (s->dense) {
        /* ascending ticks give ascending values (per > 0); ticks whose quotients round to one
         * value are summed by the merge as equal keys */
        s->tick = next_tick(s->dense, s->tick);
        if (s->tick == VALUE_COUNTS_DENSE) return 0;
        s->key = key_of((double)(int64_t)s->tick / s->dense->dense_per);
        s->count = s->dense->dense[s->tick++];
        return 1;
    }
    if (s->slots) {
        if (s->slots == s->slots_end) return 0;
        s->key = slot_key(s->slots);
        s->count = s->slots++->count;
        return 1;
    }
    if (s->at == s->end) return 0;
    s->at = run_next(s->at, &s->key, &s->count);
    return 1;
}

/* Restores the min-heap order of heap[0..n) by key from i down. */
static void sift_down(struct source **heap, size_t n, size_t i)
{
    struct source *s = heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && heap[child + 1]->key < heap[child]->key) child++;
        if (heap[child]->key >= s->key) break;
        heap[i] = heap[child];
        i = child;
    }
    heap[i] = s;
}

/* Merges src[0..n) into one run of `level`, the counts of equal keys summed; -1 out of memory
 * (the sources untouched). */
static int merge_sources(struct source *src, size_t n, uint32_t level, struct value_counts_run *out)
{
    struct source **heap = malloc((n ? n : 1) * sizeof *heap);
    if (!heap) return -1;
    size_t live = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += src[i].dense   ? 0 /* unknown: the writer grows */
                 : src[i].slots ? (size_t)(src[i].slots_end - src[i].slots) * 6
                                : (size_t)(src[i].end - src[i].at);
        src[i].key = 0;
        if (source_step(&src[i])) heap[live++] = &src[i];
    }
    struct run_writer w = {.cap = bytes + 4 * ENTRY_BYTES_MAX};
    w.bytes = malloc(w.cap);
    int rc = w.bytes ? 0 : -1;
    for (size_t i = live / 2; i-- > 0;) sift_down(heap, live, i);
    while (live && !rc) {
        uint64_t key = heap[0]->key, count = 0;
        while (live && heap[0]->key == key) {
            count += heap[0]->count;
            if (source_step(heap[0]))
                sift_down(heap, live, 0);
            else if (--live)
                heap[0] = heap[live], sift_down(heap, live, 0);
        }
        rc = writer_put(&w, key, count);
    }
    free(heap);
    if (rc) {
        free(w.bytes);
        return -1;
    }
    *out = writer_run(&w, level);
    return 0;
}

static struct source run_source(const struct value_counts_run *r)
{
    return (struct source){.at = r->bytes, .end = r->bytes + r->len};
}

static int push_run(struct value_counts *c, struct value_counts_run r)
{
    if (c->nruns == c->runs_cap) {
        size_t cap = c->runs_cap ? c->runs_cap * 2 : 16;
        struct value_counts_run *runs = realloc(c->runs, cap * sizeof *runs);
        if (!runs) return -1;
        c->runs = runs;
        c->runs_cap = cap;
    }
    c->runs[c->nruns++] = r;
    return 0;
}

/* Merges the last RUNS_PER_LEVEL runs into one a level up while they share a level, so that a
 * table holds a few runs per level and a key repeated across runs is kept once. */
static int merge_levels(struct value_counts *c)
{
    while (c->nruns >= RUNS_PER_LEVEL) {
        struct value_counts_run *last = &c->runs[c->nruns - RUNS_PER_LEVEL];
        uint32_t level = last[0].level;
        for (int i = 1; i < RUNS_PER_LEVEL; i++)
            if (last[i].level != level) return 0;
        struct source src[RUNS_PER_LEVEL];
        for (int i = 0; i < RUNS_PER_LEVEL; i++) src[i] = run_source(&last[i]);
        struct value_counts_run merged;
        if (merge_sources(src, RUNS_PER_LEVEL, level + 1, &merged)) return -1;
        for (int i = 0; i < RUNS_PER_LEVEL; i++) free(last[i].bytes);
        c->nruns -= RUNS_PER_LEVEL;
        c->runs[c->nruns++] = merged;
    }
    return 0;
}

/* Sorts the pending keys into a run (equal keys counted once) and merges levels. */
static __attribute__((noinline)) int flush(struct value_counts *c)
{
    if (!c->npending) return 0;
    sort_keys(c->pending, c->pending + PENDING_KEYS, c->npending);
    /* encoded into the room after the keys (it holds the worst case), then copied to a block
     * of its exact size: a block trimmed in place would leave the heap holes */
    struct run_writer w = {.bytes = (uint8_t *)(c->pending + PENDING_KEYS),
                           .cap = PENDING_KEYS * ENTRY_BYTES_MAX};
    for (size_t i = 0; i < c->npending;) {
        size_t j = i + 1;
        while (j < c->npending && c->pending[j] == c->pending[i]) j++;
        writer_put(&w, c->pending[i], j - i); /* has room */
        i = j;
    }
    c->npending = 0;
    struct value_counts_run r = {.bytes = malloc(w.len), .len = w.len};
    if (!r.bytes) return -1;
    memcpy(r.bytes, w.bytes, w.len);
    if (push_run(c, r)) {
        free(r.bytes);
        return -1;
    }
    return merge_levels(c);
}

/* ---- the table ---- */

int value_counts_add(struct value_counts *c, double v, uint64_t times)
{
    uint64_t key = key_of(v);
    if (!c->pending) return add_queueing(c, key, times);
    if (c->nqueued && drain_queue(c)) return -1; /* (the hash just took runs) */
    if (times - 1 >= PENDING_TIMES_MAX) return add_key(c, key, times);
    if (times > UINT32_MAX - c->n) return -1;
    c->n += times;
    for (; times; times--) {
        c->pending[c->npending++] = key;
        if (c->npending == PENDING_KEYS && flush(c)) return -1;
    }
    return 0;
}

#define DENSE_BYTES ((size_t)VALUE_COUNTS_DENSE * sizeof(uint32_t))

/* c's array of ticks, for ticks / per, once c holds VALUE_COUNTS_DENSE_AFTER values: 0, or -1
 * when it is not (yet) to be, or cannot be (then for good): the values go to the hash. Mapped
 * rather than taken from malloc, which after the first such block is freed serves the next from
 * the heap, zeroed whole; in small pages, so that one value costs 4 KiB, not 2 MiB. */
static __attribute__((noinline)) int dense_start(struct value_counts *c, double per)
{
    if (c->dense_refused || c->n < VALUE_COUNTS_DENSE_AFTER || !(per > 0 && per < INFINITY))
        return -1;
    void *m = mmap(NULL, DENSE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        c->dense_refused = 1;
        return -1;
    }
    madvise(m, DENSE_BYTES, MADV_NOHUGEPAGE);
    c->dense = m;
    c->dense_per = per;
    return 0;
}

static void dense_free(struct value_counts *c)
{
    if (c->dense) munmap(c->dense, DENSE_BYTES);
    c->dense = NULL;
    memset(c->dense_blocks, 0, sizeof c->dense_blocks);
}

int value_counts_add_ticks(struct value_counts *c, int64_t ticks, double per, uint64_t times)
{
    if ((uint64_t)ticks < VALUE_COUNTS_DENSE && !c->sorted &&
        (c->dense ? c->dense_per == per : !dense_start(c, per))) {
        if (times - 1 >= UINT32_MAX - c->n) return times ? -1 : 0; /* also times == 0 */
        c->dense[ticks] += (uint32_t)times;
        size_t b = (size_t)ticks / VALUE_COUNTS_DENSE_BLOCK;
        c->dense_blocks[b / 64] |= (uint64_t)1 << (b % 64);
        c->n += times;
        return 0;
    }
    return value_counts_add(c, (double)ticks / per, times);
}

/* src's ticks into c (whose n already counts them): moved when c has none, added when c's
 * are of the same unit, else given to c as values. */
static int merge_dense(struct value_counts *c, struct value_counts *src)
{
    if (!src->dense) return 0;
    if (!c->dense) {
        c->dense = src->dense;
        c->dense_per = src->dense_per;
        memcpy(c->dense_blocks, src->dense_blocks, sizeof c->dense_blocks);
        src->dense = NULL;
        return 0;
    }
    int rc = 0;
    for (size_t i = next_tick(src, 0); i < VALUE_COUNTS_DENSE && !rc; i = next_tick(src, i + 1)) {
        if (c->dense_per == src->dense_per) {
            c->dense[i] += src->dense[i];
            c->dense_blocks[i / VALUE_COUNTS_DENSE_BLOCK / 64] |=
                (uint64_t)1 << (i / VALUE_COUNTS_DENSE_BLOCK % 64);
        } else {
            rc = add_key(c, key_of((double)(int64_t)i / src->dense_per), src->dense[i]);
        }
    }
    return rc;
}

int value_counts_merge(struct value_counts *c, struct value_counts *src)
{
    int rc = -1;
    uint64_t n = c->n + src->n;
    if (n > UINT32_MAX || drain_queue(c) || drain_queue(src) || flush(src)) goto done;
    for (size_t i = 0; i < src->nruns; i++) {
        if (push_run(c, src->runs[i])) goto done;
        src->runs[i] = (struct value_counts_run){0}; /* now c's */
    }
    /* of each pair of hash parts the larger stays in c and the smaller is added to it */
    for (int k = 0; k < VALUE_COUNTS_PARTS; k++)
        if (src->part[k].used > c->part[k].used) {
            struct value_counts_part t = c->part[k];
            c->part[k] = src->part[k];
            src->part[k] = t;
        }
    c->last_count = NULL; /* its part may have moved to src */
    c->n = 0;
    rc = 0;
    for (int k = 0; k < VALUE_COUNTS_PARTS && !rc; k++) {
        const struct value_counts_part *s = &src->part[k];
        for (size_t i = 0; i < s->cap && !rc; i++)
            if (s->slots[i].count) rc = add_key(c, slot_key(&s->slots[i]), s->slots[i].count);
    }
    if (!rc) rc = merge_dense(c, src);
    c->n = n; /* what add_key counted is in it */
done:
    value_counts_free(src);
    return rc;
}

static void swap(struct value_counts_part *p, size_t a, size_t b)
{
    struct value_counts_slot t = p->slots[a];
    p->slots[a] = p->slots[b];
    p->slots[b] = t;
}

static uint64_t key_at(const struct value_counts_part *p, size_t i)
{
    return slot_key(&p->slots[i]);
}

/* Quicksort of keys[lo, hi) with their counts, in place (no second copy of a large table):
 * the median of three as pivot, the smaller side first so the stack stays logarithmic. */
static void sort_range(struct value_counts_part *p, size_t lo, size_t hi)
{
    while (hi - lo > 16) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_at(p, mid) < key_at(p, lo)) swap(p, mid, lo);
        if (key_at(p, hi - 1) < key_at(p, lo)) swap(p, hi - 1, lo);
        if (key_at(p, hi - 1) < key_at(p, mid)) swap(p, hi - 1, mid);
        uint64_t pivot = key_at(p, mid);
        size_t i = lo, j = hi - 1;
        for (;;) { /* keys are distinct */
            while (key_at(p, i) < pivot) i++;
            while (key_at(p, j) > pivot) j--;
            if (i >= j) break;
            swap(p, i++, j--);
        }
        if (j + 1 - lo < hi - j - 1) {
            sort_range(p, lo, j + 1);
            lo = j + 1;
        } else {
            sort_range(p, j + 1, hi);
            hi = j + 1;
        }
    }
    for (size_t i = lo + 1; i < hi; i++)
        for (size_t j = i; j > lo && key_at(p, j) < key_at(p, j - 1); j--) swap(p, j, j - 1);
}

/* Frees the hash's parts and the pending buffer. */
static void free_hash(struct value_counts *c)
{
    for (int k = 0; k < VALUE_COUNTS_PARTS; k++) {
        free(c->part[k].slots);
    }
    memset(c->part, 0, sizeof c->part);
    free(c->pending);
    c->pending = NULL;
    c->npending = 0;
    c->last_count = NULL;
    dense_free(c);
}

/* Memory running out while sorting leaves no figure to give. */
static _Noreturn void sort_out_of_memory(void)
{
    fprintf(stderr, "strobe: out of memory while sorting the per-token figures: analyse the run "
                    "on a machine with more memory\n");
    exit(1);
}

void value_counts_sort(struct value_counts *c)
{
    if (c->sorted) return;
    if (drain_queue(c) || flush(c)) sort_out_of_memory();
    struct source *src = malloc((c->nruns + VALUE_COUNTS_PARTS + 1) * sizeof *src);
    if (!src) sort_out_of_memory();
    size_t n = 0;
    if (c->dense) src[n++] = (struct source){.dense = c};
    for (size_t i = 0; i < c->nruns; i++) src[n++] = run_source(&c->runs[i]);
    for (int k = 0; k < VALUE_COUNTS_PARTS; k++) {
        struct value_counts_part *p = &c->part[k];
        size_t m = 0;
        for (size_t i = 0; i < p->cap; i++)
            if (p->slots[i].count) p->slots[m++] = p->slots[i];
        sort_range(p, 0, m);
        if (m) src[n++] = (struct source){.slots = p->slots, .slots_end = p->slots + m};
    }
    struct value_counts_run all = {0};
    if (merge_sources(src, n, 0, &all)) sort_out_of_memory();
    free(src);
    for (size_t i = 0; i < c->nruns; i++) free(c->runs[i].bytes);
    free_hash(c);
    c->nruns = 0;
    if (all.len && push_run(c, all)) sort_out_of_memory();
    c->sorted = 1;
}

void value_counts_cursor_start(struct value_counts_cursor *cur, const struct value_counts *c)
{
    const struct value_counts_run *r = c->nruns ? &c->runs[0] : NULL;
    *cur = (struct value_counts_cursor){.at = r ? r->bytes : NULL,
                                        .end = r ? r->bytes + r->len : NULL};
}

int value_counts_next(struct value_counts_cursor *cur, double *v, uint64_t *times)
{
    if (cur->at == cur->end) return 0;
    cur->at = run_next(cur->at, &cur->key, times);
    *v = value_of(cur->key);
    return 1;
}

#define QUANTILES 6
static const double quantile[QUANTILES] = {0.25, 0.50, 0.75, 0.90, 0.95, 0.99};

void value_counts_summarise(const struct value_counts *c, struct summary *s)
{
    memset(s, 0, sizeof *s);
    uint64_t n = c->n;
    s->n = (size_t)n;
    if (!n) return;
    /* percentile_sorted's order statistics: rank lo and, when it interpolates, lo + 1 */
    uint64_t rank[2 * QUANTILES];
    double at[2 * QUANTILES], h[QUANTILES];
    for (int q = 0; q < QUANTILES; q++) {
        h[q] = (double)(n - 1) * quantile[q];
        uint64_t lo = (uint64_t)h[q];
        rank[2 * q] = lo < n ? lo : n - 1;
        rank[2 * q + 1] = lo + 1 < n ? lo + 1 : n - 1;
    }
    struct value_counts_cursor cur;
    value_counts_cursor_start(&cur, c);
    double v, sum = 0;
    uint64_t times, below = 0;
    int first = 1;
    while (value_counts_next(&cur, &v, &times)) {
        if (first) s->min = v;
        first = 0;
        s->max = v;
        for (int r = 0; r < 2 * QUANTILES; r++)
            if (rank[r] >= below && rank[r] < below + times) at[r] = v;
        below += times;
        for (; times; times--) sum += v;
    }
    s->mean = sum / (double)n;
    double *out[QUANTILES] = {&s->p25, &s->p50, &s->p75, &s->p90, &s->p95, &s->p99};
    for (int q = 0; q < QUANTILES; q++) {
        uint64_t lo = (uint64_t)h[q];
        double a = at[2 * q], b = at[2 * q + 1];
        if (lo + 1 >= n || h[q] == (double)lo || b == a) /* == also keeps ∞ from NaN */
            *out[q] = a;
        else
            *out[q] = a + (h[q] - (double)lo) * (b - a);
    }
}

/* The values summed one by one in ascending order, as summarise() sums its sorted array. */
static double ascending_sum(const struct value_counts *c)
{
    struct value_counts_cursor cur;
    value_counts_cursor_start(&cur, c);
    double v, sum = 0;
    uint64_t times;
    while (value_counts_next(&cur, &v, &times))
        for (; times; times--) sum += v;
    return sum;
}

double value_counts_cv(const struct value_counts *c)
{
    if (c->n < 2) return 0;
    double mean = ascending_sum(c) / (double)c->n, var = 0, v;
    uint64_t times;
    struct value_counts_cursor cur;
    value_counts_cursor_start(&cur, c);
    while (value_counts_next(&cur, &v, &times))
        for (; times; times--) var += (v - mean) * (v - mean);
    return mean > 0 ? sqrt(var / (double)(c->n - 1)) / mean : 0;
}

void value_counts_free(struct value_counts *c)
{
    free_hash(c);
    for (size_t i = 0; i < c->nruns; i++) free(c->runs[i].bytes);
    free(c->runs);
    memset(c, 0, sizeof *c);
}
