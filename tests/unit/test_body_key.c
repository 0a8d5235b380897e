/* Keyed event bodies (body_key.h): every body put back together byte for byte from its key,
 * the difference found as small as it is,
 * a body far from its key made the next key, and damaged stored forms refused. Random bodies
 * over a small alphabet, so that long matches and near misses are common. */
#include "body_key.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

static size_t naive_prefix(const char *a, size_t na, const char *b, size_t nb)
{
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

static size_t naive_suffix(const char *a, size_t na, const char *b, size_t nb, size_t limit)
{
    size_t i = 0;
    while (i < limit && a[na - 1 - i] == b[nb - 1 - i]) i++;
    return i;
}

static void random_text(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = "ab\"{}"[rand() % 5];
}

int main(void)
{
    srand(7);
    size_t bad_join = 0, bad_bounds = 0, bad_key = 0, keyed = 0, trials = 200000;
    for (size_t t = 0; t < trials; t++) {
        struct body_key k = {0};
        char key[BODY_KEY_MAX], body[BODY_KEY_MAX], out[BODY_KEY_HEAD + BODY_KEY_MAX];
        size_t klen = 32 + (size_t)rand() % (BODY_KEY_MAX - 31);
        random_text(key, klen);
        size_t out_len;
        if (body_key_encode(&k, 9, key, klen, out, &out_len) != BODY_SETS_KEY) bad_key++;
        /* the body: the key with a stretch replaced by one of another length */
        size_t at = (size_t)rand() % klen, cut = (size_t)rand() % (klen - at + 1) % 24;
        size_t put = (size_t)rand() % 24, blen = klen - cut + put;
        if (blen > BODY_KEY_MAX) blen = BODY_KEY_MAX, put = blen - (klen - cut);
        memcpy(body, key, at);
        random_text(body + at, put);
        memcpy(body + at + put, key + at + cut, klen - at - cut);
        enum body_key_role role = body_key_encode(&k, 9, body, blen, out, &out_len);
        if (role == BODY_KEYED) {
            keyed++;
            struct body_keyed d;
            char back[BODY_KEY_MAX];
            if (body_key_parse(out, out_len, UINT64_MAX, &d) || d.key_len != klen) {
                bad_join++;
                continue;
            }
            size_t n = body_key_join(&d, key, back);
            if (n != blen || memcmp(back, body, blen)) bad_join++;
            size_t p = naive_prefix(key, klen, body, blen);
            size_t shorter = klen < blen ? klen : blen;
            size_t s = naive_suffix(key, klen, body, blen, shorter - p);
            if (d.prefix != p || d.suffix != s) bad_bounds++;
        } else if (role == BODY_SETS_KEY) {
            if (k.len != blen || memcmp(k.bytes, body, blen)) bad_key++;
        } else if (blen >= 2 * BODY_KEY_HEAD) {
            bad_key++; /* whole without becoming the key: only short bodies */
        }
    }
    CHECK(bad_join == 0, "every keyed body put back together: %zu of %zu differ", bad_join, keyed);
    CHECK(bad_bounds == 0, "prefix and suffix the longest: %zu wrong", bad_bounds);
    CHECK(bad_key == 0, "a body not keyed becomes the key: %zu wrong", bad_key);
    CHECK(keyed > trials / 2, "most near bodies keyed: %zu of %zu", keyed, trials);

    /* another request's body is never keyed against this one's key */
    struct body_key k = {0};
    char a[100], out[BODY_KEY_HEAD + BODY_KEY_MAX];
    size_t out_len;
    memset(a, 'x', sizeof a);
    body_key_encode(&k, 1, a, sizeof a, out, &out_len);
    CHECK(body_key_encode(&k, 2, a, sizeof a, out, &out_len) == BODY_SETS_KEY,
          "a new request's first body is its key");
    CHECK(body_key_encode(&k, 2, "[DONE]", 6, out, &out_len) == BODY_WHOLE,
          "a short body is stored whole");
    CHECK(body_key_encode(&k, 2, a, sizeof a, out, &out_len) == BODY_KEYED && out_len == 16,
          "the same body again: 16 bytes");

    /* damaged stored forms */
    struct body_keyed d;
    char stored[BODY_KEY_HEAD + 8] = {0};
    CHECK(body_key_parse(stored, 15, UINT64_MAX, &d) == -1, "shorter than the head: refused");
    CHECK(body_key_parse(stored, 16, UINT64_MAX, &d) == -1, "a key of 0 bytes: refused");
    stored[8] = 10;                 /* key_len 10 */
    stored[12] = 6, stored[14] = 5; /* prefix 6 + suffix 5 > 10 */
    CHECK(body_key_parse(stored, 16, UINT64_MAX, &d) == -1,
          "prefix and suffix past the key: refused");
    stored[9] = 3; /* key_len 778 > BODY_KEY_MAX */
    CHECK(body_key_parse(stored, 16, UINT64_MAX, &d) == -1, "a key over BODY_KEY_MAX: refused");
    stored[9] = 0, stored[14] = 4;
    CHECK(body_key_parse(stored, 24, UINT64_MAX, &d) == 0 && d.between_len == 8,
          "a sound one parses");
    return check_done("body_key");
}
