/* The emulator's prefix (KV) cache: LRU over fixed-size blocks of the rendered prompt.
 * A block's key hashes its bytes and every block before it, so only a shared prefix hits.
 * Capacity is in tokens; a block holds PREFIX_BLOCK_TOKENS tokens (4 bytes per token). */
#ifndef PREFIX_CACHE_H
#define PREFIX_CACHE_H
#include <stddef.h>
#include <stdint.h>

#define PREFIX_BLOCK_TOKENS    16
#define PREFIX_BYTES_PER_TOKEN 4
#define PREFIX_BLOCK_BYTES     (PREFIX_BLOCK_TOKENS * PREFIX_BYTES_PER_TOKEN)

struct prefix_cache;

struct prefix_cache *prefix_cache_new(int64_t capacity_tokens);
void prefix_cache_free(struct prefix_cache *c);
/* Looks the prompt's full blocks up, counts the leading run that hits, then inserts or
 * refreshes every full block. Returns the cached token count (leading hits × block size). */
int64_t prefix_cache_lookup_insert(struct prefix_cache *c, const char *prompt, size_t len);

#endif
