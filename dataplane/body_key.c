#include "body_key.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

static uint64_t load64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Bytes equal at the start of a and b (n at most): sixteen at a time where SSE2 is (every
 * x86-64), else eight. Called per event: a byte loop took a sixth of the worker's time. */
static size_t common_prefix(const char *a, const char *b, size_t n)
{
    size_t i = 0;
#ifdef __SSE2__
    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(a + i));
        __m128i y = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
        unsigned differ = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) ^ 0xffffu;
        if (differ) return i + (size_t)__builtin_ctz(differ);
    }
#endif
    for (; i + 8 <= n; i += 8) {
        uint64_t x = load64(a + i) ^ load64(b + i);
        if (x) return i + (size_t)__builtin_ctzll(x) / 8;
    }
    while (i < n && a[i] == b[i]) i++;
    return i;
}

/* Bytes equal at the ends of a[0, na) and b[0, nb) (n at most). */
static size_t common_suffix(const char *a, size_t na, const char *b, size_t nb, size_t n)
{
    size_t i = 0;
#ifdef __SSE2__
    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(a + na - i - 16));
        __m128i y = _mm_loadu_si128((const __m128i *)(const void *)(b + nb - i - 16));
        unsigned differ = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) ^ 0xffffu;
        /* the highest differing byte is the one nearest the end */
        if (differ) return i + (size_t)__builtin_clz(differ) - 16;
    }
#endif
    for (; i + 8 <= n; i += 8) {
        uint64_t x = load64(a + na - i - 8) ^ load64(b + nb - i - 8);
        if (x) return i + (size_t)__builtin_clzll(x) / 8;
    }
    while (i < n && a[na - i - 1] == b[nb - i - 1]) i++;
    return i;
}

static void put_le(char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) p[i] = (char)(v >> (8 * i));
}

static uint64_t get_le(const char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)(unsigned char)p[i] << (8 * i);
    return v;
}

enum body_key_role body_key_encode(struct body_key *k, uint64_t req_id, const char *body,
                                   size_t len, char *out, size_t *out_len)
{
    /* short bodies ([DONE]) gain nothing, and would make a poor key */
    if (len > BODY_KEY_MAX || len < 2 * BODY_KEY_HEAD) return BODY_WHOLE;
    if (k->req_id == req_id && req_id) {
        size_t shorter = len < k->len ? len : k->len;
        size_t prefix = common_prefix(k->bytes, body, shorter);
        size_t suffix = common_suffix(k->bytes, k->len, body, len, shorter - prefix);
        size_t between = len - prefix - suffix;
        /* worth it: else this body, far from the key, becomes the next one */
        if (BODY_KEY_HEAD + between < len / 2) {
            put_le(out, 0, 8); /* the key's offset: the log's collector knows it */
            put_le(out + 8, k->len, 4);
            put_le(out + 12, prefix, 2);
            put_le(out + 14, suffix, 2);
            memcpy(out + BODY_KEY_HEAD, body + prefix, between);
            *out_len = BODY_KEY_HEAD + between;
            return BODY_KEYED;
        }
    }
    k->req_id = req_id;
    k->len = (uint32_t)len;
    memcpy(k->bytes, body, len);
    return BODY_SETS_KEY;
}

int body_key_parse(const char *stored, size_t len, uint64_t bodies_len, struct body_keyed *k)
{
    if (!stored || len < BODY_KEY_HEAD) return -1;
    k->key_off = get_le(stored, 8);
    k->key_len = (uint32_t)get_le(stored + 8, 4);
    k->prefix = (uint16_t)get_le(stored + 12, 2);
    k->suffix = (uint16_t)get_le(stored + 14, 2);
    k->between = stored + BODY_KEY_HEAD;
    k->between_len = len - BODY_KEY_HEAD;
    if (!k->key_len || k->key_len > BODY_KEY_MAX || (size_t)k->prefix + k->suffix > k->key_len ||
        k->between_len > BODY_KEY_MAX - (size_t)k->prefix - k->suffix || k->key_off > bodies_len ||
        k->key_len > bodies_len - k->key_off)
        return -1;
    return 0;
}

size_t body_key_join(const struct body_keyed *k, const char *key, char *out)
{
    memcpy(out, key, k->prefix);
    memcpy(out + k->prefix, k->between, k->between_len);
    memcpy(out + k->prefix + k->between_len, key + k->key_len - k->suffix, k->suffix);
    return k->prefix + k->between_len + k->suffix;
}
