#include "prefix_cache.h"

#include <stdlib.h>

struct block {
    uint64_t key;
    int32_t prev, next; /* LRU list, -1 = none */
    int32_t hnext;      /* hash chain */
    int used;
};

struct prefix_cache {
    int64_t nblocks;
    struct block *blocks;
    int32_t *heads; /* hash buckets */
    int64_t nbuckets;
    int32_t lru_head, lru_tail; /* head = most recent */
    int64_t used;
};

struct prefix_cache *prefix_cache_new(int64_t capacity_tokens)
{
    struct prefix_cache *c = calloc(1, sizeof *c);
    c->nblocks = capacity_tokens / PREFIX_BLOCK_TOKENS;
    c->nbuckets = 1;
    while (c->nbuckets < 2 * c->nblocks + 1) c->nbuckets <<= 1;
    c->blocks = calloc((size_t)(c->nblocks ? c->nblocks : 1), sizeof *c->blocks);
    c->heads = malloc((size_t)c->nbuckets * sizeof *c->heads);
    for (int64_t i = 0; i < c->nbuckets; i++) c->heads[i] = -1;
    c->lru_head = c->lru_tail = -1;
    return c;
}

void prefix_cache_free(struct prefix_cache *c)
{
    if (!c) return;
    free(c->blocks);
    free(c->heads);
    free(c);
}

static uint64_t chain_hash(uint64_t h, const char *p, size_t n)
{
    h ^= 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
    return h;
}

static void lru_unlink(struct prefix_cache *c, int32_t i)
{
    struct block *b = &c->blocks[i];
    if (b->prev >= 0)
        c->blocks[b->prev].next = b->next;
    else
        c->lru_head = b->next;
    if (b->next >= 0)
        c->blocks[b->next].prev = b->prev;
    else
        c->lru_tail = b->prev;
}

static void lru_push_front(struct prefix_cache *c, int32_t i)
{
    struct block *b = &c->blocks[i];
    b->prev = -1;
    b->next = c->lru_head;
    if (c->lru_head >= 0) c->blocks[c->lru_head].prev = i;
    c->lru_head = i;
    if (c->lru_tail < 0) c->lru_tail = i;
}

static int32_t find(struct prefix_cache *c, uint64_t key)
{
    for (int32_t i = c->heads[key & (uint64_t)(c->nbuckets - 1)]; i >= 0; i = c->blocks[i].hnext)
        if (c->blocks[i].key == key) return i;
    return -1;
}

static void hash_remove(struct prefix_cache *c, int32_t i)
{
    int32_t *link = &c->heads[c->blocks[i].key & (uint64_t)(c->nbuckets - 1)];
    while (*link != i) link = &c->blocks[*link].hnext;
    *link = c->blocks[i].hnext;
}

static void insert(struct prefix_cache *c, uint64_t key)
{
    int32_t i;
    if (c->used < c->nblocks) {
        i = (int32_t)c->used++;
    } else {
        i = c->lru_tail; /* evict the least recently used block */
        lru_unlink(c, i);
        hash_remove(c, i);
    }
    struct block *b = &c->blocks[i];
    b->key = key;
    b->used = 1;
    int64_t bucket = (int64_t)(key & (uint64_t)(c->nbuckets - 1));
    b->hnext = c->heads[bucket];
    c->heads[bucket] = i;
    lru_push_front(c, i);
}

int64_t prefix_cache_lookup_insert(struct prefix_cache *c, const char *prompt, size_t len)
{
    if (c->nblocks == 0) return 0;
    size_t nfull = len / PREFIX_BLOCK_BYTES;
    uint64_t h = 1469598103934665603ULL;
    int64_t hits = 0;
    int leading = 1;
    for (size_t k = 0; k < nfull; k++) {
        h = chain_hash(h, prompt + k * PREFIX_BLOCK_BYTES, PREFIX_BLOCK_BYTES);
        int32_t i = find(c, h);
        if (i >= 0) {
            if (leading) hits++;
            lru_unlink(c, i);
            lru_push_front(c, i);
        } else {
            leading = 0;
            insert(c, h);
        }
    }
    return hits * PREFIX_BLOCK_TOKENS;
}
