#include "body_key.h"

#include <string.h>

#include "byte_scan.h"

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
        size_t prefix = scan_common_prefix(k->bytes, body, shorter);
        size_t suffix = scan_common_suffix(k->bytes + k->len, body + len, shorter - prefix);
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
