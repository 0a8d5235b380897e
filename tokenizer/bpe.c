#include "bpe.h"

#include <errno.h> /* program_invocation_short_name: strobe or strobe-emu */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

static uint64_t hash_pair(uint64_t k) { return (k * 0x9e3779b97f4a7c15ULL) >> 17; }

void bpe_init(struct bpe *b, enum bpe_rule rule)
{
    memset(b, 0, sizeof *b);
    b->rule = rule;
    b->whole_piece_first = rule == BPE_BY_RANK;
    b->heap_from = BPE_HEAP_FROM;
}

void bpe_free(struct bpe *b)
{
    free(b->arena);
    free(b->off);
    free(b->len);
    free(b->by_bytes);
    free(b->pair_key);
    free(b->pair_rank);
    free(b->pair_result);
    memset(b, 0, sizeof *b);
}

static int grow_bytes_table(struct bpe *b)
{
    size_t cap = b->by_bytes_cap ? b->by_bytes_cap * 2 : 1024;
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t) return BPE_NO_MEMORY;
    for (size_t i = 0; i < b->by_bytes_cap; i++) {
        uint32_t v = b->by_bytes[i];
        if (!v) continue;
        size_t h = hash_bytes(b->arena + b->off[v - 1], b->len[v - 1]) & (cap - 1);
        while (t[h]) h = (h + 1) & (cap - 1);
        t[h] = v;
    }
    free(b->by_bytes);
    b->by_bytes = t;
    b->by_bytes_cap = cap;
    return 0;
}

int64_t bpe_lookup(const struct bpe *b, const uint8_t *bytes, size_t n)
{
    if (!b->by_bytes_cap || n == 0 || n > b->max_token_len) return -1;
    size_t h = hash_bytes(bytes, n) & (b->by_bytes_cap - 1);
    for (uint32_t v; (v = b->by_bytes[h]); h = (h + 1) & (b->by_bytes_cap - 1))
        if (b->len[v - 1] == n && !memcmp(b->arena + b->off[v - 1], bytes, n)) return v - 1;
    return -1;
}

/* Grows the per-id arrays to hold id (at most BPE_MAX_ID): 0, or BPE_NO_MEMORY with the
 * table as it was. */
static int grow_ids(struct bpe *b, uint32_t id)
{
    uint32_t nids = b->nids ? b->nids : 1024;
    while (nids <= id) nids *= 2; /* id <= BPE_MAX_ID < 2^31: no wrap */
    uint32_t *off = realloc(b->off, nids * sizeof *off);
    if (!off) return BPE_NO_MEMORY;
    b->off = off;
    uint32_t *len = realloc(b->len, nids * sizeof *len);
    if (!len) return BPE_NO_MEMORY;
    b->len = len;
    memset(b->len + b->nids, 0, (nids - b->nids) * sizeof *b->len);
    b->nids = nids;
    return 0;
}

int bpe_add_token(struct bpe *b, const uint8_t *bytes, size_t n, uint32_t id)
{
    if (id > BPE_MAX_ID) return BPE_ID_TOO_LARGE;
    if (n == 0 || bpe_lookup(b, bytes, n) >= 0) return -1;
    if (id >= b->nids && grow_ids(b, id)) return BPE_NO_MEMORY;
    if (b->len[id]) return -1;
    if (b->arena_len + n > b->arena_cap) {
        size_t cap = (b->arena_len + n) * 2;
        uint8_t *arena = realloc(b->arena, cap);
        if (!arena) return BPE_NO_MEMORY;
        b->arena = arena;
        b->arena_cap = cap;
    }
    if ((b->ntokens + 1) * 2 > b->by_bytes_cap && grow_bytes_table(b)) return BPE_NO_MEMORY;
    memcpy(b->arena + b->arena_len, bytes, n);
    b->off[id] = (uint32_t)b->arena_len;
    b->len[id] = (uint32_t)n;
    b->arena_len += n;
    if (n > b->max_token_len) b->max_token_len = n;
    size_t h = hash_bytes(bytes, n) & (b->by_bytes_cap - 1);
    while (b->by_bytes[h]) h = (h + 1) & (b->by_bytes_cap - 1);
    b->by_bytes[h] = id + 1;
    b->ntokens++;
    return 0;
}

static size_t pair_slot(const struct bpe *b, uint64_t key)
{
    size_t h = hash_pair(key) & (b->pair_cap - 1);
    while (b->pair_key[h] && b->pair_key[h] != key) h = (h + 1) & (b->pair_cap - 1);
    return h;
}

int bpe_add_merge(struct bpe *b, uint32_t left, uint32_t right, uint32_t rank)
{
    if (left >= b->nids || right >= b->nids || !b->len[left] || !b->len[right]) return -1;
    size_t n = (size_t)b->len[left] + b->len[right];
    uint8_t stackbuf[512];
    uint8_t *cat = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!cat) return BPE_NO_MEMORY;
    memcpy(cat, b->arena + b->off[left], b->len[left]);
    memcpy(cat + b->len[left], b->arena + b->off[right], b->len[right]);
    int64_t result = bpe_lookup(b, cat, n);
    if (cat != stackbuf) free(cat);
    if (result < 0) return -1;
    if ((b->npairs + 1) * 2 > b->pair_cap) {
        size_t old_cap = b->pair_cap, cap = old_cap ? old_cap * 2 : 1024;
        uint64_t *ok = b->pair_key, *key = calloc(cap, sizeof *key);
        uint32_t *orank = b->pair_rank, *ores = b->pair_result;
        uint32_t *rank_of = malloc(cap * sizeof *rank_of),
                 *result_of = malloc(cap * sizeof *result_of);
        if (!key || !rank_of || !result_of) {
            free(key);
            free(rank_of);
            free(result_of);
            return BPE_NO_MEMORY;
        }
        b->pair_cap = cap;
        b->pair_key = key;
        b->pair_rank = rank_of;
        b->pair_result = result_of;
        for (size_t i = 0; i < old_cap; i++) {
            if (!ok[i]) continue;
            size_t s = pair_slot(b, ok[i]);
            b->pair_key[s] = ok[i];
            b->pair_rank[s] = orank[i];
            b->pair_result[s] = ores[i];
        }
        free(ok);
        free(orank);
        free(ores);
    }
    uint64_t key = ((uint64_t)left + 1) << 32 | right;
    size_t s = pair_slot(b, key);
    if (b->pair_key[s]) return 0; /* listed twice: the earlier (lower) rank stands */
    b->pair_key[s] = key;
    b->pair_rank[s] = rank;
    b->pair_result[s] = (uint32_t)result;
    b->npairs++;
    return 0;
}

int bpe_seal(struct bpe *b)
{
    int missing = -1;
    for (int i = 0; i < 256; i++) {
        uint8_t byte = (uint8_t)i;
        b->byte_id[i] = bpe_lookup(b, &byte, 1);
        if (b->byte_id[i] < 0 && missing < 0) missing = i;
    }
    return missing;
}

#define NO_RANK UINT32_MAX
#define END     SIZE_MAX

/* Scratch for one piece: each symbol is a span of the piece, linked to its neighbours. */
struct symbols {
    size_t *start, *next, *prev;
    uint32_t *id, *rank, *result;
};

static size_t span_end(const struct symbols *s, size_t i, size_t n)
{
    return s->next[i] == END ? n : s->start[s->next[i]];
}

/* The rank of merging symbol i with its right neighbour, and what it makes. */
static void rank_at(const struct bpe *b, const uint8_t *p, size_t n, struct symbols *s, size_t i)
{
    s->rank[i] = NO_RANK;
    if (i == END || s->next[i] == END) return;
    size_t j = s->next[i];
    if (b->rule == BPE_BY_RANK) {
        int64_t id = bpe_lookup(b, p + s->start[i], span_end(s, j, n) - s->start[i]);
        if (id >= 0) s->rank[i] = s->result[i] = (uint32_t)id;
        return;
    }
    if (!b->pair_cap || s->id[i] == UINT32_MAX || s->id[j] == UINT32_MAX) return;
    uint64_t key = ((uint64_t)s->id[i] + 1) << 32 | s->id[j];
    size_t slot = pair_slot(b, key);
    if (b->pair_key[slot] == key) {
        s->rank[i] = b->pair_rank[slot];
        s->result[i] = b->pair_result[slot];
    }
}

/* A min-heap of (rank << 32 | symbol): the lowest rank first, the leftmost of equal ranks. */
static void heap_push(uint64_t *h, size_t *len, uint64_t key)
{
    size_t i = (*len)++;
    for (; i && h[(i - 1) / 2] > key; i = (i - 1) / 2) h[i] = h[(i - 1) / 2];
    h[i] = key;
}

static uint64_t heap_pop(uint64_t *h, size_t *len)
{
    uint64_t top = h[0], last = h[--*len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *len) break;
        if (c + 1 < *len && h[c + 1] < h[c]) c++;
        if (h[c] >= last) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

/* Merges symbol i with its right neighbour (whose rank is then NO_RANK: it is gone) and ranks
 * i and its left neighbour again. */
static void merge_at(const struct bpe *b, const uint8_t *p, size_t n, struct symbols *s, size_t i)
{
    size_t gone = s->next[i];
    s->id[i] = s->result[i];
    s->next[i] = s->next[gone];
    s->rank[gone] = NO_RANK;
    if (s->next[gone] != END) s->prev[s->next[gone]] = i;
    rank_at(b, p, n, s, i);
    if (s->prev[i] != END) rank_at(b, p, n, s, s->prev[i]);
}

/* The lowest-ranked pair found by a scan of the whole piece each time: n^2 / 2 steps, the
 * fastest for short pieces. */
static void merge_scanning(const struct bpe *b, const uint8_t *p, size_t n, struct symbols *s)
{
    for (;;) {
        size_t best = END;
        uint32_t best_rank = NO_RANK;
        for (size_t i = 0; i != END; i = s->next[i])
            if (s->rank[i] < best_rank) best_rank = s->rank[i], best = i;
        if (best == END) break;
        merge_at(b, p, n, s, best);
    }
}

/* The same merges in the same order, the lowest-ranked pair taken from a heap: n log n steps
 * (a 200,000-byte piece, a run of one character, took minutes by scanning). An entry whose
 * symbol's rank has changed since is skipped: every rank a symbol takes is pushed, so the
 * first entry that still matches is the lowest pair there is, the leftmost of equals. */
static void merge_by_heap(const struct bpe *b, const uint8_t *p, size_t n, struct symbols *s,
                          uint64_t *heap)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        if (s->rank[i] != NO_RANK) heap_push(heap, &len, (uint64_t)s->rank[i] << 32 | i);
    while (len) {
        uint64_t top = heap_pop(heap, &len);
        size_t i = (uint32_t)top;
        if (s->rank[i] != (uint32_t)(top >> 32)) continue;
        merge_at(b, p, n, s, i);
        if (s->rank[i] != NO_RANK) heap_push(heap, &len, (uint64_t)s->rank[i] << 32 | i);
        size_t left = s->prev[i];
        if (left != END && s->rank[left] != NO_RANK)
            heap_push(heap, &len, (uint64_t)s->rank[left] << 32 | left);
    }
}

void bpe_encode_piece(const struct bpe *b, const uint8_t *p, size_t n, struct id_sink *out)
{
    if (n == 0) return;
    if (b->whole_piece_first) {
        int64_t id = bpe_lookup(b, p, n);
        if (id >= 0) {
            id_sink_put(out, (uint32_t)id);
            return;
        }
    }
    enum { STACK_SYMBOLS = 256 };
    size_t st_start[STACK_SYMBOLS], st_next[STACK_SYMBOLS], st_prev[STACK_SYMBOLS];
    uint32_t st_id[STACK_SYMBOLS], st_rank[STACK_SYMBOLS], st_result[STACK_SYMBOLS];
    struct symbols s = {st_start, st_next, st_prev, st_id, st_rank, st_result};
    /* a heap entry names its symbol in 32 bits; a longer piece is scanned */
    int by_heap = n > b->heap_from && n > STACK_SYMBOLS && n <= UINT32_MAX;
    void *block = NULL;
    uint64_t *heap = NULL;
    if (n > STACK_SYMBOLS) {
        /* one block: the heap (at most n entries and two more per merge), three size_t and
         * three uint32_t arrays, the 8-byte ones first (aligned) */
        size_t each = (by_heap ? 3 * sizeof *heap : 0) + 3 * sizeof(size_t) + 3 * sizeof(uint32_t);
        block = n <= SIZE_MAX / each ? malloc(n * each) : NULL;
        if (!block) {
            /* no count is left to give: a token count must be exact or absent */
            fprintf(stderr,
                    "%s: out of memory while tokenizing a piece of %zu bytes: run on a "
                    "machine with more memory, or without the tokenizer (--tokenizer none)\n",
                    program_invocation_short_name, n);
            exit(1);
        }
        heap = by_heap ? block : NULL;
        s.start = by_heap ? (size_t *)(void *)(heap + 3 * n) : block;
        s.next = s.start + n;
        s.prev = s.next + n;
        s.id = (uint32_t *)(void *)(s.prev + n);
        s.rank = s.id + n;
        s.result = s.rank + n;
    }
    for (size_t i = 0; i < n; i++) {
        s.start[i] = i;
        s.next[i] = i + 1 < n ? i + 1 : END;
        s.prev[i] = i ? i - 1 : END;
        s.id[i] = b->byte_id[p[i]] >= 0 ? (uint32_t)b->byte_id[p[i]] : UINT32_MAX;
    }
    for (size_t i = 0; i < n; i++) rank_at(b, p, n, &s, i);
    if (by_heap)
        merge_by_heap(b, p, n, &s, heap);
    else
        merge_scanning(b, p, n, &s);
    for (size_t i = 0; i != END; i = s.next[i]) id_sink_put(out, s.id[i]);
    free(block);
}
