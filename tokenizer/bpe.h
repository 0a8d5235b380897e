/* Byte-pair encoding over bytes: the token table (bytes <-> id) and the merge loop that
 * turns one pre-tokenised piece into ids. Two merge rules, one loop:
 *  - BPE_BY_RANK (tiktoken): the adjacent pair whose concatenation is the lowest-ranked
 *    token merges first; the rank is the token's id;
 *  - BPE_BY_MERGES (Hugging Face): only pairs listed in `merges` merge, the earliest listed
 *    first; the result is the token of the concatenated bytes.
 * Ties go to the leftmost pair, as both reference implementations do. Not thread-safe to
 * build; encoding only reads the tables. */
#ifndef STROBE_BPE_H
#define STROBE_BPE_H
#include <stddef.h>
#include <stdint.h>

enum bpe_rule { BPE_BY_RANK, BPE_BY_MERGES };

struct bpe {
    enum bpe_rule rule;
    int whole_piece_first; /* a piece that is itself a token is one token (tiktoken, ignore_merges)
                            */
    uint8_t *arena;
    size_t arena_len, arena_cap;
    uint32_t *off, *len; /* per id; len 0: no bytes (an id the table skips) */
    uint32_t nids;
    uint32_t *by_bytes; /* open addressing: id + 1, 0 empty */
    size_t by_bytes_cap, ntokens;
    uint64_t *pair_key; /* (left + 1) << 32 | right, 0 empty */
    uint32_t *pair_rank, *pair_result;
    size_t pair_cap, npairs;
    int64_t byte_id[256]; /* the token of each single byte, or -1 */
    size_t max_token_len;
    /* pieces longer than this and than 256 bytes merge by a heap, shorter ones by scanning
     * (the same ids; tests set it to SIZE_MAX to compare the two) */
    size_t heap_from;
};

#define BPE_HEAP_FROM 256

void bpe_init(struct bpe *b, enum bpe_rule rule);
void bpe_free(struct bpe *b);
/* What the adds return when memory ran out (the table stays as it was before the add). */
#define BPE_NO_MEMORY (-2)
/* The largest token id taken (the per-id arrays are sized by it: 128 MiB at this limit; the
 * largest vocabularies hold a few hundred thousand), and what an add of a larger one returns. */
#define BPE_MAX_ID       ((1u << 24) - 1)
#define BPE_ID_TOO_LARGE (-3)
/* 0, -1 when the id or the bytes are already taken (a broken vocabulary), BPE_ID_TOO_LARGE,
 * or BPE_NO_MEMORY. */
int bpe_add_token(struct bpe *b, const uint8_t *bytes, size_t n, uint32_t id);
/* BPE_BY_MERGES only: 0, -1 when left, right or their concatenation is not a token, or
 * BPE_NO_MEMORY. */
int bpe_add_merge(struct bpe *b, uint32_t left, uint32_t right, uint32_t rank);
/* Call once after the last add: the first byte with no token of its own (a byte-level BPE
 * cannot encode it), or -1 when every byte has one. */
int bpe_seal(struct bpe *b);
/* The id of exactly these bytes, or -1. */
int64_t bpe_lookup(const struct bpe *b, const uint8_t *bytes, size_t n);

/* Where encoded ids go: the first `cap` are stored, all are counted. */
struct id_sink {
    uint32_t *ids;
    size_t cap, n;
};
static inline void id_sink_put(struct id_sink *s, uint32_t id)
{
    if (s->n < s->cap) s->ids[s->n] = id;
    s->n++;
}

/* Encodes one piece. A byte with no token of its own (never in byte-level vocabularies)
 * is counted as one token with id UINT32_MAX. A piece over 256 bytes needs 60 bytes of
 * memory a byte (36 when scanned): without them the process exits (status 1) saying so. */
void bpe_encode_piece(const struct bpe *b, const uint8_t *p, size_t n, struct id_sink *out);

#endif
