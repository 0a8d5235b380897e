/* Hugging Face tokenizer.json, byte-level BPE only: vocabulary keys and merges are written
 * in GPT-2's byte-to-character alphabet, mapped back to bytes here so that one BPE core
 * serves both formats. What is not supported is refused by name, never guessed. */
#include "tokenizer_impl.h"

#include "json_num.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* GPT-2's alphabet: printable Latin-1 bytes stand for themselves, the other 68 bytes for
 * U+0100.. in byte order. char_to_byte[cp] = byte + 1, 0 when cp is not in the alphabet. */
static void byte_alphabet(int char_to_byte[324])
{
    memset(char_to_byte, 0, 324 * sizeof *char_to_byte);
    int next = 256;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        char_to_byte[printable ? b : next++] = b + 1;
    }
}

/* Decodes a vocabulary key to bytes; -1 when it holds a character outside the alphabet
 * (special tokens kept in the vocabulary: they are added tokens too). */
static int key_bytes(const char *key, const int char_to_byte[324], uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)key; *p;) {
        unsigned cp;
        if (*p < 0x80)
            cp = *p++;
        else if ((*p & 0xE0) == 0xC0 && (p[1] & 0xC0) == 0x80)
            cp = (unsigned)(*p & 0x1F) << 6 | (p[1] & 0x3F), p += 2;
        else
            return -1;
        if (cp >= 324 || !char_to_byte[cp] || n == cap) return -1;
        out[n++] = (uint8_t)(char_to_byte[cp] - 1);
    }
    return (int)n;
}

static const char *type_of(const cJSON *o)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(t) ? t->valuestring : "(no type)";
}

static int is_true(const cJSON *o, const char *k)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* Flattens the pre-tokenizer into regex stages; sets *byte_level when a ByteLevel is seen. */
static int add_pre(struct tokenizer *t, const cJSON *pre, int *byte_level, char *err, size_t errlen)
{
    if (!pre || cJSON_IsNull(pre)) return 0;
    const char *type = type_of(pre);
    if (!strcmp(type, "Sequence")) {
        const cJSON *each;
        cJSON_ArrayForEach (each, cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers"))
            if (add_pre(t, each, byte_level, err, errlen)) return -1;
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) {
        *byte_level = 1;
        if (is_true(pre, "add_prefix_space")) {
            snprintf(err, errlen, "ByteLevel pre-tokenizer with add_prefix_space is not supported");
            return -1;
        }
        return is_true(pre, "use_regex")
                   ? pretok_add(&t->pre, GPT2_PATTERN, strlen(GPT2_PATTERN), 0, err, errlen)
                   : 0;
    }
    if (!strcmp(type, "Split")) {
        const cJSON *behavior = cJSON_GetObjectItemCaseSensitive(pre, "behavior");
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(pre, "pattern");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *str = cJSON_GetObjectItemCaseSensitive(pat, "String");
        if (!cJSON_IsString(behavior) || strcmp(behavior->valuestring, "Isolated") ||
            is_true(pre, "invert") || (!cJSON_IsString(re) && !cJSON_IsString(str))) {
            snprintf(err, errlen,
                     "Split pre-tokenizer other than behavior Isolated with a Regex "
                     "or String pattern, not inverted, is not supported");
            return -1;
        }
        const char *p = cJSON_IsString(re) ? re->valuestring : str->valuestring;
        return pretok_add(&t->pre, p, strlen(p), !cJSON_IsString(re), err, errlen);
    }
    snprintf(err, errlen, "pre-tokenizer type %s is not supported (Sequence, Split, ByteLevel are)",
             type);
    return -1;
}

static int check_normalizer(const cJSON *n, char *err, size_t errlen)
{
    if (!n || cJSON_IsNull(n)) return 0;
    if (!strcmp(type_of(n), "Sequence") &&
        cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(n, "normalizers")) == 0)
        return 0;
    snprintf(err, errlen, "normalizer %s is not supported (only none)", type_of(n));
    return -1;
}

/* 1 with *id set when j is a number from 0 to 2^32-1. */
static int token_id(const cJSON *j, uint32_t *id)
{
    int64_t n;
    if (!json_int64(j, &n) || n < 0 || n > UINT32_MAX) return 0;
    *id = (uint32_t)n;
    return 1;
}

static int load_model(struct tokenizer *t, const cJSON *model, char *err, size_t errlen)
{
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix");
    const cJSON *suffix = cJSON_GetObjectItemCaseSensitive(model, "end_of_word_suffix");
    if (strcmp(type_of(model), "BPE") || is_true(model, "byte_fallback") ||
        (cJSON_IsString(prefix) && prefix->valuestring[0]) ||
        (cJSON_IsString(suffix) && suffix->valuestring[0])) {
        snprintf(err, errlen,
                 "model %s is not a plain byte-level BPE (no byte_fallback, no "
                 "subword prefix or suffix); only those are supported",
                 type_of(model));
        return -1;
    }
    bpe_init(&t->bpe, BPE_BY_MERGES);
    t->bpe.whole_piece_first = is_true(model, "ignore_merges");
    int alphabet[324];
    byte_alphabet(alphabet);
    uint8_t bytes[1024];
    const cJSON *v;
    cJSON_ArrayForEach (v, cJSON_GetObjectItemCaseSensitive(model, "vocab")) {
        int n = key_bytes(v->string, alphabet, bytes, sizeof bytes);
        if (n <= 0) continue;
        uint32_t id;
        int added = token_id(v, &id) ? bpe_add_token(&t->bpe, bytes, (size_t)n, id) : -1;
        if (added == BPE_NO_MEMORY) return tokenizer_no_memory(err, errlen, "the vocabulary");
        if (added == BPE_ID_TOO_LARGE) {
            snprintf(err, errlen,
                     "vocabulary entry '%.60s' has id %u, above the largest strobe "
                     "takes (%u)",
                     v->string, id, BPE_MAX_ID);
            return -1;
        }
        if (added) {
            snprintf(err, errlen, "vocabulary entry '%.60s' has a bad or repeated id", v->string);
            return -1;
        }
    }
    uint32_t rank = 0;
    const cJSON *m;
    cJSON_ArrayForEach (m, cJSON_GetObjectItemCaseSensitive(model, "merges")) {
        char left[512], right[512];
        if (cJSON_IsString(m)) {
            const char *sp = strchr(m->valuestring, ' ');
            if (!sp || (size_t)(sp - m->valuestring) >= sizeof left ||
                strlen(sp + 1) >= sizeof right)
                goto bad;
            snprintf(left, sizeof left, "%.*s", (int)(sp - m->valuestring), m->valuestring);
            snprintf(right, sizeof right, "%s", sp + 1);
        } else if (cJSON_GetArraySize(m) == 2 && cJSON_IsString(cJSON_GetArrayItem(m, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(m, 1))) {
            snprintf(left, sizeof left, "%s", cJSON_GetArrayItem(m, 0)->valuestring);
            snprintf(right, sizeof right, "%s", cJSON_GetArrayItem(m, 1)->valuestring);
        } else {
            goto bad;
        }
        uint8_t lb[512], rb[512];
        int ln = key_bytes(left, alphabet, lb, sizeof lb),
            rn = key_bytes(right, alphabet, rb, sizeof rb);
        int64_t li = ln > 0 ? bpe_lookup(&t->bpe, lb, (size_t)ln) : -1;
        int64_t ri = rn > 0 ? bpe_lookup(&t->bpe, rb, (size_t)rn) : -1;
        int added =
            li < 0 || ri < 0 ? -1 : bpe_add_merge(&t->bpe, (uint32_t)li, (uint32_t)ri, rank);
        if (added == BPE_NO_MEMORY) return tokenizer_no_memory(err, errlen, "the merges");
        if (added) goto bad;
        rank++;
        continue;
    bad:
        snprintf(err, errlen, "merge %u is not two vocabulary tokens whose join is one", rank);
        return -1;
    }
    return 0;
}

/* cJSON answers NULL both for bad JSON and for memory running out: its allocations go through
 * this while the file is parsed, so the two are told apart. cJSON's hooks are the process's:
 * tokenizers are loaded while no other thread uses cJSON (before the workers start, or after
 * they are joined). */
static _Thread_local int parse_out_of_memory;

static void *parse_malloc(size_t n)
{
    void *p = malloc(n);
    if (!p) parse_out_of_memory = 1;
    return p;
}

int tokenizer_load_hf(struct tokenizer *t, const char *data, size_t len, char *err, size_t errlen)
{
    parse_out_of_memory = 0;
    cJSON_InitHooks(&(cJSON_Hooks){.malloc_fn = parse_malloc, .free_fn = free});
    cJSON *root = cJSON_ParseWithLength(data, len);
    cJSON_InitHooks(NULL); /* malloc and free again */
    if (!root && parse_out_of_memory) return tokenizer_no_memory(err, errlen, "tokenizer.json");
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "not valid JSON; a tokenizer.json is one JSON object");
        cJSON_Delete(root);
        return -1;
    }
    int byte_level = 0, rc = -1;
    snprintf(t->name, sizeof t->name, "tokenizer.json");
    t->specials_default = 1;
    if (check_normalizer(cJSON_GetObjectItemCaseSensitive(root, "normalizer"), err, errlen) ||
        add_pre(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), &byte_level, err,
                errlen))
        goto out;
    if (!byte_level) {
        snprintf(err, errlen,
                 "no ByteLevel pre-tokenizer: only byte-level BPE tokenizers are supported");
        goto out;
    }
    if (load_model(t, cJSON_GetObjectItemCaseSensitive(root, "model"), err, errlen)) goto out;
    const cJSON *a;
    cJSON_ArrayForEach (a, cJSON_GetObjectItemCaseSensitive(root, "added_tokens")) {
        uint32_t id;
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        if (!token_id(cJSON_GetObjectItemCaseSensitive(a, "id"), &id) || !cJSON_IsString(content) ||
            !content->valuestring[0]) {
            snprintf(err, errlen,
                     "an added_tokens entry lacks a valid id (0 to 2^32-1) or content");
            goto out;
        }
        tokenizer_add_special(t, content->valuestring, strlen(content->valuestring), id);
    }
    rc = tokenizer_build_specials(t, err, errlen);
out:
    cJSON_Delete(root);
    return rc;
}
