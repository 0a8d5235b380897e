#include "tokenizer_impl.h"

#include "must_alloc.h"
#include "read_file.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Files strobe can name: the sha256 of the published file and what to call it. */
static const struct {
    const char *sha256, *name;
} known_files[] = {
    {"446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d", "o200k_harmony"},
    {"621ac2e32d0dba658404412318818aaa8ce8cda492e59830109d8da6b517fb41", "deepseek_v3"},
};

static void sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

struct tokenizer *tokenizer_load(const char *path, char *err, size_t errlen)
{
    /* read_file reads streams to their end: /dev/zero would fill memory, so a device or a
     * socket is refused; a pipe, as <(zcat ...) gives, is read once its writer has opened it
     * (a directory is read_file's EISDIR) */
    const char *special = read_file_special(path);
    if (special && strcmp(special, "a FIFO")) {
        snprintf(err, errlen,
                 "tokenizer file %s is %s, not a regular file; give a .tiktoken rank file or a "
                 "tokenizer.json saved as a file",
                 path, special);
        return NULL;
    }
    size_t len;
    char *data = read_file(path, &len);
    if (!data) {
        snprintf(err, errlen,
                 "cannot read tokenizer file %s: %s; give a .tiktoken rank file or a "
                 "tokenizer.json (scripts/setup.sh fetches both into tokenizers/)",
                 path, strerror(errno));
        return NULL;
    }
    struct tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        free(data);
        snprintf(err, errlen, "out of memory loading tokenizer file %s", path);
        return NULL;
    }
    sha256_hex(data, len, t->sha256);
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t'))
        i++;
    int rc = -1;
    if (i == len)
        snprintf(err, errlen, "the file is empty; give a .tiktoken rank file or a tokenizer.json");
    else
        rc = data[i] == '{' ? tokenizer_load_hf(t, data, len, err, errlen)
                            : tokenizer_load_tiktoken(t, data, len, err, errlen);
    free(data);
    int missing = rc ? -1 : bpe_seal(&t->bpe);
    if (missing >= 0) {
        snprintf(err, errlen,
                 "its vocabulary has no token for the byte 0x%02X, and a byte-level BPE needs one "
                 "for each of the 256 bytes to encode any text; give the model's complete file",
                 missing);
        rc = -1;
    }
    if (rc) {
        size_t l = strlen(err);
        snprintf(err + l, errlen - l, " (file %s)", path);
        tokenizer_free(t);
        return NULL;
    }
    for (size_t k = 0; k < sizeof known_files / sizeof known_files[0]; k++)
        if (!strcmp(t->sha256, known_files[k].sha256))
            snprintf(t->name, sizeof t->name, "%s", known_files[k].name);
    return t;
}

void tokenizer_free(struct tokenizer *t)
{
    if (!t) return;
    bpe_free(&t->bpe);
    pretok_free(&t->pre);
    pretok_free(&t->specials_re);
    for (size_t i = 0; i < t->nspecials; i++) free(t->specials[i].text);
    free(t->specials);
    free(t);
}

const char *tokenizer_name(const struct tokenizer *t) { return t->name; }
const char *tokenizer_sha256(const struct tokenizer *t) { return t->sha256; }
int tokenizer_specials_by_default(const struct tokenizer *t) { return t->specials_default; }

void tokenizer_add_special(struct tokenizer *t, const char *text, size_t len, uint32_t id)
{
    t->specials = must_realloc(t->specials, (t->nspecials + 1) * sizeof *t->specials,
                               "a tokenizer's special tokens");
    struct special_token *s = &t->specials[t->nspecials++];
    s->text = must_malloc(len + 1, "a tokenizer's special token");
    memcpy(s->text, text, len);
    s->text[len] = 0;
    s->len = len;
    s->id = id;
}

static int longer_first(const void *a, const void *b)
{
    const struct special_token *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? 1 : -1;
    return strcmp(x->text, y->text);
}

/* One alternation of every special token, longest first, so the leftmost match is also the
 * longest there (the rule of both reference implementations). ASCII punctuation is escaped;
 * other bytes are literal in PCRE2's UTF mode. */
int tokenizer_build_specials(struct tokenizer *t, char *err, size_t errlen)
{
    if (!t->nspecials) return 0;
    qsort(t->specials, t->nspecials, sizeof *t->specials, longer_first);
    size_t cap = 16;
    for (size_t i = 0; i < t->nspecials; i++) cap += t->specials[i].len * 2 + 1;
    char *re = must_malloc(cap, "a tokenizer's special-token pattern");
    size_t at = 0;
    for (size_t i = 0; i < t->nspecials; i++) {
        if (i) re[at++] = '|';
        for (size_t k = 0; k < t->specials[i].len; k++) {
            unsigned char c = (unsigned char)t->specials[i].text[k];
            int plain = c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                        (c >= 'A' && c <= 'Z') || c == '_';
            if (!plain) re[at++] = '\\';
            re[at++] = (char)c;
        }
    }
    int rc = pretok_add(&t->specials_re, re, at, 0, err, errlen);
    free(re);
    return rc;
}

static int64_t special_id(const struct tokenizer *t, const char *s, size_t n)
{
    for (size_t i = 0; i < t->nspecials; i++)
        if (t->specials[i].len == n && !memcmp(t->specials[i].text, s, n)) return t->specials[i].id;
    return -1;
}

struct encode_ctx {
    struct tokenizer *t;
    struct id_sink *out;
};

static void encode_piece(void *ctx, const char *s, size_t n)
{
    struct encode_ctx *c = ctx;
    bpe_encode_piece(&c->t->bpe, (const uint8_t *)s, n, c->out);
}

size_t tokenizer_encode(struct tokenizer *t, const char *text, size_t len, int specials,
                        uint32_t *ids, size_t cap)
{
    struct id_sink out = {ids, cap, 0};
    struct encode_ctx c = {t, &out};
    size_t pos = 0, ms, me;
    if (specials && t->nspecials) {
        while (pretok_find(&t->specials_re, text, len, pos, &ms, &me)) {
            pretok_split(&t->pre, text + pos, ms - pos, encode_piece, &c);
            int64_t id = special_id(t, text + ms, me - ms);
            id_sink_put(&out, id >= 0 ? (uint32_t)id : UINT32_MAX);
            pos = me;
        }
    }
    pretok_split(&t->pre, text + pos, len - pos, encode_piece, &c);
    return out.n;
}

size_t tokenizer_count(struct tokenizer *t, const char *text, size_t len)
{
    return tokenizer_encode(t, text, len, 1, NULL, 0);
}
