/* tiktoken's rank format: one "base64(token bytes) SP rank" per line. The file does not
 * carry its split pattern or special tokens; both come from the encoding, which is known
 * from the number of ranks. */
#include "tokenizer_impl.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The encodings' definitions, as tiktoken publishes them (openai_public.py). */
static const char O200K_PATTERN[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char CL100K_PATTERN[] = "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}{"
                                     "1,3}| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*"
                                     "|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";

#define O200K_RANKS  199998
#define CL100K_RANKS 100256

static void add_special(struct tokenizer *t, const char *s, uint32_t id)
{
    tokenizer_add_special(t, s, strlen(s), id);
}

/* o200k_harmony, the encoding of gpt-oss: o200k_base plus these. */
static void harmony_specials(struct tokenizer *t)
{
    static const struct {
        const char *text;
        uint32_t id;
    } named[] = {
        {"<|startoftext|>", 199998}, {"<|endoftext|>", 199999}, {"<|return|>", 200002},
        {"<|constrain|>", 200003},   {"<|channel|>", 200005},   {"<|start|>", 200006},
        {"<|end|>", 200007},         {"<|message|>", 200008},   {"<|call|>", 200012},
    };
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        add_special(t, named[i].text, named[i].id);
    static const uint32_t reserved_low[] = {200000, 200001, 200004, 200009, 200010, 200011};
    char buf[40];
    for (size_t i = 0; i < sizeof reserved_low / sizeof reserved_low[0]; i++) {
        snprintf(buf, sizeof buf, "<|reserved_%u|>", reserved_low[i]);
        add_special(t, buf, reserved_low[i]);
    }
    for (uint32_t id = 200013; id < 201088; id++) {
        snprintf(buf, sizeof buf, "<|reserved_%u|>", id);
        add_special(t, buf, id);
    }
}

static void cl100k_specials(struct tokenizer *t)
{
    add_special(t, "<|endoftext|>", 100257);
    add_special(t, "<|fim_prefix|>", 100258);
    add_special(t, "<|fim_middle|>", 100259);
    add_special(t, "<|fim_suffix|>", 100260);
    add_special(t, "<|endofprompt|>", 100276);
}

int tokenizer_load_tiktoken(struct tokenizer *t, const char *data, size_t len, char *err,
                            size_t errlen)
{
    bpe_init(&t->bpe, BPE_BY_RANK);
    uint8_t bytes[1024];
    size_t line = 0, ranks = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(data + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - data) : len;
        line++;
        const char *s = data + at, *sp = memchr(s, ' ', end - at);
        at = end + 1;
        if (end == (size_t)(s - data)) continue; /* blank line */
        size_t b64 = sp ? (size_t)(sp - s) : 0;
        char *endp;
        unsigned long rank = sp ? strtoul(sp + 1, &endp, 10) : 0;
        if (!sp || b64 == 0 || b64 % 4 || b64 / 4 * 3 > sizeof bytes || endp == sp + 1 ||
            rank >= UINT32_MAX) {
            snprintf(err, errlen, "line %zu is not 'BASE64 RANK'; this is not a tiktoken rank file",
                     line);
            return -1;
        }
        int n = EVP_DecodeBlock(bytes, (const unsigned char *)s, (int)b64);
        if (n < 0) {
            snprintf(err, errlen, "line %zu: the token is not valid base64", line);
            return -1;
        }
        n -= (s[b64 - 1] == '=') + (s[b64 - 2] == '='); /* DecodeBlock counts padding as bytes */
        int added = bpe_add_token(&t->bpe, bytes, (size_t)n, (uint32_t)rank);
        if (added == BPE_NO_MEMORY) return tokenizer_no_memory(err, errlen, "the ranks");
        if (added == BPE_ID_TOO_LARGE) {
            snprintf(err, errlen, "line %zu: rank %lu is above the largest strobe takes (%u)", line,
                     rank, BPE_MAX_ID);
            return -1;
        }
        if (added) {
            snprintf(err, errlen, "line %zu: rank %lu or its bytes appear twice", line, rank);
            return -1;
        }
        ranks++;
    }
    const char *pattern;
    if (ranks == O200K_RANKS) {
        pattern = O200K_PATTERN;
        snprintf(t->name, sizeof t->name, "o200k_harmony");
        harmony_specials(t);
    } else if (ranks == CL100K_RANKS) {
        pattern = CL100K_PATTERN;
        snprintf(t->name, sizeof t->name, "cl100k_base");
        cl100k_specials(t);
    } else {
        snprintf(err, errlen,
                 "a tiktoken file with %zu ranks is no encoding strobe knows "
                 "(o200k_base has %d, cl100k_base %d), and the file itself does not say how to "
                 "split text; use o200k_base.tiktoken or a tokenizer.json",
                 ranks, O200K_RANKS, CL100K_RANKS);
        return -1;
    }
    t->specials_default = 0;
    if (pretok_add(&t->pre, pattern, strlen(pattern), 0, err, errlen)) return -1;
    return tokenizer_build_specials(t, err, errlen);
}
