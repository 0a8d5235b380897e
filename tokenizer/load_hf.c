/* Hugging Face tokenizer.json, byte-level BPE only: vocabulary keys and merges are written
 * in GPT-2's byte-to-character alphabet, mapped back to bytes here so that one BPE core
 * serves both formats. What is not supported is refused by name, never guessed. */
#include "tokenizer_impl.h"
#include "json_must.h"

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

/* What a field holds, in words, for the sentences that refuse a field of the wrong type. */
static const char *json_kind(const cJSON *j)
{
    if (!j) return "missing";
    if (cJSON_IsObject(j)) return "an object";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "true or false";
    return "null";
}

/* Refuses `field` (a path: "model.vocab") for holding something other than `want`; -1. A
 * field of the wrong type was read as something else (an array's elements have no keys: a
 * vocab array crashed), so each is checked before use. */
static int wrong_type(const char *field, const cJSON *j, const char *want, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s must be %s (it is %s); give the model's tokenizer.json as published",
             field, want, json_kind(j));
    return -1;
}

/* 0 with *on set from o's boolean k (absent or null: false); -1 for anything else, which
 * was once read as false ("add_prefix_space": "yes" was ignored). */
static int flag(const cJSON *o, const char *k, const char *path, int *on, char *err, size_t errlen)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    *on = cJSON_IsTrue(j);
    if (!j || cJSON_IsNull(j) || cJSON_IsBool(j)) return 0;
    char field[160];
    snprintf(field, sizeof field, "%s.%s", path, k);
    return wrong_type(field, j, "true or false", err, errlen);
}

/* Flattens the pre-tokenizer at `path` into regex stages; sets *byte_level when a ByteLevel
 * is seen. */
static int add_pre(struct tokenizer *t, const cJSON *pre, const char *path, int *byte_level,
                   char *err, size_t errlen)
{
    if (!pre || cJSON_IsNull(pre)) return 0;
    if (!cJSON_IsObject(pre))
        return wrong_type(path, pre, "an object with a \"type\"", err, errlen);
    const char *type = type_of(pre);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
        char sub[160];
        snprintf(sub, sizeof sub, "%s.pretokenizers", path);
        if (!cJSON_IsArray(list))
            return wrong_type(sub, list, "an array of pre-tokenizers", err, errlen);
        int i = 0;
        const cJSON *each;
        cJSON_ArrayForEach (each, list) {
            snprintf(sub, sizeof sub, "%s.pretokenizers[%d]", path, i++);
            if (add_pre(t, each, sub, byte_level, err, errlen)) return -1;
        }
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) {
        int prefix_space, use_regex;
        if (flag(pre, "add_prefix_space", path, &prefix_space, err, errlen) ||
            flag(pre, "use_regex", path, &use_regex, err, errlen))
            return -1;
        *byte_level = 1;
        if (prefix_space) {
            snprintf(err, errlen, "ByteLevel pre-tokenizer with add_prefix_space is not supported");
            return -1;
        }
        return use_regex ? pretok_add(&t->pre, GPT2_PATTERN, strlen(GPT2_PATTERN), 0, err, errlen)
                         : 0;
    }
    if (!strcmp(type, "Split")) {
        const cJSON *behavior = cJSON_GetObjectItemCaseSensitive(pre, "behavior");
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(pre, "pattern");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *str = cJSON_GetObjectItemCaseSensitive(pat, "String");
        int invert;
        if (flag(pre, "invert", path, &invert, err, errlen)) return -1;
        if (!cJSON_IsString(behavior) || strcmp(behavior->valuestring, "Isolated") || invert ||
            !cJSON_IsObject(pat) || (!cJSON_IsString(re) && !cJSON_IsString(str))) {
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
    if (!cJSON_IsObject(n))
        return wrong_type("normalizer", n, "an object with a \"type\", or null", err, errlen);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
    if (!strcmp(type_of(n), "Sequence") && cJSON_IsArray(list) && cJSON_GetArraySize(list) == 0)
        return 0;
    snprintf(err, errlen, "normalizer %s is not supported (only none)", type_of(n));
    return -1;
}

/* 0 with *id set when j is a whole number from 0 to BPE_MAX_ID; else -1 with err naming
 * `what`. A fraction was once truncated (id 1.5 named token 1) and ids past the per-id
 * tables' limit are no vocabulary strobe can hold. */
static int token_id(const cJSON *j, const char *what, uint32_t *id, char *err, size_t errlen)
{
    double d = cJSON_IsNumber(j) ? j->valuedouble : -1;
    if (d >= 0 && d <= BPE_MAX_ID && d == (double)(uint32_t)d) {
        *id = (uint32_t)d;
        return 0;
    }
    if (!cJSON_IsNumber(j))
        snprintf(err, errlen,
                 "%s has an id that is %s, not a number; give the model's tokenizer.json as "
                 "published",
                 what, json_kind(j));
    else if (d > BPE_MAX_ID)
        snprintf(err, errlen,
                 "%s has id %.15g, above the largest strobe takes (%u); give a tokenizer with "
                 "a smaller vocabulary",
                 what, d, BPE_MAX_ID);
    else
        snprintf(err, errlen,
                 "%s has id %.15g, and ids are whole numbers from 0 to %u; give the model's "
                 "tokenizer.json as published",
                 what, d, BPE_MAX_ID);
    return -1;
}

/* The vocabulary: an object mapping each token (in GPT-2's alphabet) to its id. */
static int load_vocab(struct tokenizer *t, const cJSON *vocab, const int alphabet[324], char *err,
                      size_t errlen)
{
    if (!cJSON_IsObject(vocab))
        return wrong_type("model.vocab", vocab, "an object mapping each token to its id", err,
                          errlen);
    uint8_t bytes[1024];
    const cJSON *v;
    cJSON_ArrayForEach (v, vocab) {
        /* the entry's name for a message, made only for one (hundreds of thousands pass) */
        char what[96] = "";
        uint32_t id;
        if (token_id(v, what, &id, NULL, 0)) {
            snprintf(what, sizeof what, "model.vocab entry '%.60s'", v->string);
            return token_id(v, what, &id, err, errlen);
        }
        int n = key_bytes(v->string, alphabet, bytes, sizeof bytes);
        if (n <= 0) continue;
        int added = bpe_add_token(&t->bpe, bytes, (size_t)n, id);
        if (added == BPE_NO_MEMORY) return tokenizer_no_memory(err, errlen, "the vocabulary");
        if (added) {
            snprintf(err, errlen,
                     "model.vocab entry '%.60s' repeats an id or the bytes of another entry; give "
                     "the model's tokenizer.json as published",
                     v->string);
            return -1;
        }
    }
    return 0;
}

/* The merges, earliest first: each "LEFT RIGHT" or ["LEFT", "RIGHT"]. */
static int load_merges(struct tokenizer *t, const cJSON *merges, const int alphabet[324], char *err,
                       size_t errlen)
{
    if (!merges || cJSON_IsNull(merges)) return 0;
    if (!cJSON_IsArray(merges)) return wrong_type("model.merges", merges, "an array", err, errlen);
    uint32_t rank = 0;
    const cJSON *m;
    cJSON_ArrayForEach (m, merges) {
        char left[512], right[512];
        if (cJSON_IsString(m)) {
            const char *sp = strchr(m->valuestring, ' ');
            if (!sp || (size_t)(sp - m->valuestring) >= sizeof left ||
                strlen(sp + 1) >= sizeof right)
                goto bad;
            snprintf(left, sizeof left, "%.*s", (int)(sp - m->valuestring), m->valuestring);
            snprintf(right, sizeof right, "%s", sp + 1);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(m, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(m, 1))) {
            /* an object of two strings indexes like a pair: hence IsArray */
            snprintf(left, sizeof left, "%s", cJSON_GetArrayItem(m, 0)->valuestring);
            snprintf(right, sizeof right, "%s", cJSON_GetArrayItem(m, 1)->valuestring);
        } else {
            char field[48];
            snprintf(field, sizeof field, "model.merges[%u]", rank);
            return wrong_type(field, m, "a string \"LEFT RIGHT\" or a pair of strings", err,
                              errlen);
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
        snprintf(err, errlen,
                 "merge %u is not two vocabulary tokens whose join is one; give the model's "
                 "tokenizer.json as published",
                 rank);
        return -1;
    }
    return 0;
}

static int load_model(struct tokenizer *t, const cJSON *model, char *err, size_t errlen)
{
    if (!cJSON_IsObject(model))
        return wrong_type("model", model, "an object with a \"type\"", err, errlen);
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix");
    const cJSON *suffix = cJSON_GetObjectItemCaseSensitive(model, "end_of_word_suffix");
    if (prefix && !cJSON_IsNull(prefix) && !cJSON_IsString(prefix))
        return wrong_type("model.continuing_subword_prefix", prefix, "a string or null", err,
                          errlen);
    if (suffix && !cJSON_IsNull(suffix) && !cJSON_IsString(suffix))
        return wrong_type("model.end_of_word_suffix", suffix, "a string or null", err, errlen);
    int byte_fallback, ignore_merges;
    if (flag(model, "byte_fallback", "model", &byte_fallback, err, errlen) ||
        flag(model, "ignore_merges", "model", &ignore_merges, err, errlen))
        return -1;
    if (strcmp(type_of(model), "BPE") || byte_fallback ||
        (cJSON_IsString(prefix) && prefix->valuestring[0]) ||
        (cJSON_IsString(suffix) && suffix->valuestring[0])) {
        snprintf(err, errlen,
                 "model %s is not a plain byte-level BPE (no byte_fallback, no "
                 "subword prefix or suffix); only those are supported",
                 type_of(model));
        return -1;
    }
    bpe_init(&t->bpe, BPE_BY_MERGES);
    t->bpe.whole_piece_first = ignore_merges;
    int alphabet[324];
    byte_alphabet(alphabet);
    if (load_vocab(t, cJSON_GetObjectItemCaseSensitive(model, "vocab"), alphabet, err, errlen))
        return -1;
    return load_merges(t, cJSON_GetObjectItemCaseSensitive(model, "merges"), alphabet, err, errlen);
}

/* Tokens matched in the text before the pre-tokenizer: [{"id": N, "content": "..."}, ...]. */
static int load_added(struct tokenizer *t, const cJSON *added, char *err, size_t errlen)
{
    if (!added || cJSON_IsNull(added)) return 0;
    if (!cJSON_IsArray(added)) return wrong_type("added_tokens", added, "an array", err, errlen);
    int i = 0;
    const cJSON *a;
    cJSON_ArrayForEach (a, added) {
        char what[48];
        snprintf(what, sizeof what, "added_tokens[%d]", i++);
        if (!cJSON_IsObject(a))
            return wrong_type(what, a, "an object with an id and a content", err, errlen);
        uint32_t id;
        if (token_id(cJSON_GetObjectItemCaseSensitive(a, "id"), what, &id, err, errlen)) return -1;
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        if (!cJSON_IsString(content) || !content->valuestring[0]) {
            size_t l = strlen(what);
            snprintf(what + l, sizeof what - l, ".content");
            return wrong_type(what, content, "a string that is not empty", err, errlen);
        }
        tokenizer_add_special(t, content->valuestring, strlen(content->valuestring), id);
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
    json_hooks_restore(); /* the program's own again (json_must.h) */
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
        add_pre(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), "pre_tokenizer",
                &byte_level, err, errlen))
        goto out;
    if (!byte_level) {
        snprintf(err, errlen,
                 "no ByteLevel pre-tokenizer: only byte-level BPE tokenizers are supported");
        goto out;
    }
    if (load_model(t, cJSON_GetObjectItemCaseSensitive(root, "model"), err, errlen) ||
        load_added(t, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), err, errlen))
        goto out;
    rc = tokenizer_build_specials(t, err, errlen);
out:
    cJSON_Delete(root);
    return rc;
}
