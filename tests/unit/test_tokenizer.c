/* The tokenizer gives the reference implementations' ids: tests/data/tokenizer holds, per
 * tokenizer, texts (real trajectory strings and edge cases) with the ids that the
 * tokenizers' own published packages give (tests/tokenizer/make_vectors.mjs). Also: the
 * special tokens, counting, and the errors for files that are not tokenizers.
 * args: VECTORS_DIR TOKENIZERS_DIR */
#include "check.h"
#include "read_file.h"
#include "tokenizer.h"
#include "tokenizer_impl.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *vectors_dir, *tokenizers_dir;

static struct tokenizer *load(const char *rel)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s", tokenizers_dir, rel);
    struct tokenizer *t = tokenizer_load(path, err, sizeof err);
    CHECK(t != NULL, "%s should load (run scripts/fetch_tokenizers.sh): %s", path, err);
    return t;
}

static void check_vectors(struct tokenizer *t, const char *file)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", vectors_dir, file);
    size_t len;
    char *data = read_file(path, &len);
    CHECK(data != NULL, "cannot read %s", path);
    if (!data || !t) return;
    size_t n = 0, exact = 0, ids_total = 0;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        const char *text = cJSON_GetObjectItemCaseSensitive(j, "text")->valuestring;
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(j, "ids");
        size_t nwant = (size_t)cJSON_GetArraySize(want);
        uint32_t got[4096];
        size_t ngot = tokenizer_encode(t, text, strlen(text), 0, got, 4096);
        int same = ngot == nwant;
        for (size_t i = 0; same && i < nwant; i++)
            same = got[i] == (uint32_t)cJSON_GetArrayItem(want, (int)i)->valuedouble;
        CHECK(same, "%s vector %zu (%.60s...): %zu ids, %zu expected", file, n, text, ngot, nwant);
        CHECK(tokenizer_count(t, text, strlen(text)) == ngot, "count equals the encoding's length");
        exact += same;
        ids_total += nwant;
        n++;
        cJSON_Delete(j);
    }
    printf("%s: %zu of %zu texts exact (%zu tokens)\n", file, exact, n, ids_total);
    CHECK(n >= 300, "%s holds %zu vectors, expected 300 or more", file, n);
    free(data);
}

static void check_ids(struct tokenizer *t, const char *text, int specials, const uint32_t *want,
                      size_t nwant)
{
    uint32_t got[64];
    size_t n = tokenizer_encode(t, text, strlen(text), specials, got, 64);
    int same = n == nwant;
    for (size_t i = 0; same && i < n; i++) same = got[i] == want[i];
    CHECK(same, "'%s' (specials %d): %zu ids [%u,%u,...], expected %zu [%u,%u,...]", text, specials,
          n, n ? got[0] : 0, n > 1 ? got[1] : 0, nwant, want[0], nwant > 1 ? want[1] : 0);
}

static void check_bad_file(const char *content, const char *expect_in_error)
{
    char path[] = "/tmp/strobe-tok-XXXXXX";
    int fd = mkstemp(path);
    CHECK(write(fd, content, strlen(content)) == (ssize_t)strlen(content), "write temp file");
    close(fd);
    char err[512] = "";
    struct tokenizer *t = tokenizer_load(path, err, sizeof err);
    CHECK(t == NULL && strstr(err, expect_in_error),
          "loading '%.30s' should fail naming '%s', got: %s", content, expect_in_error, err);
    tokenizer_free(t);
    unlink(path);
}

/* Long pieces merge by a heap: the same ids as the scan over the whole piece, on pieces of
 * 257 to 3,000 bytes drawn from a few characters (one pre-tokenizer piece each: a letter run,
 * a run of spaces, a run of punctuation) and on a 200,000-byte run, which the scan took
 * minutes over. */
static void check_heap_merges(struct tokenizer *t, const char *name)
{
    static const char *const alphabets[] = {"ab", "abc", "aeiou", "xyz", " ", "=-", "#*"};
    static uint32_t by_heap[4096], by_scan[4096];
    unsigned seed = 12345;
    size_t same = 0, tries = 0;
    char text[3001];
    for (size_t a = 0; a < sizeof alphabets / sizeof *alphabets; a++) {
        size_t k = strlen(alphabets[a]);
        for (int round = 0; round < 12; round++, tries++) {
            seed = seed * 1103515245u + 12345u;
            size_t n = 257 + (seed >> 8) % 2744;
            for (size_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                text[i] = alphabets[a][(seed >> 16) % k];
            }
            size_t nh = tokenizer_encode(t, text, n, 0, by_heap, 4096);
            t->bpe.heap_from = SIZE_MAX;
            size_t ns = tokenizer_encode(t, text, n, 0, by_scan, 4096);
            t->bpe.heap_from = BPE_HEAP_FROM;
            int ok = nh == ns && nh <= 4096 && !memcmp(by_heap, by_scan, nh * sizeof *by_heap);
            CHECK(ok, "%s: %zu bytes of '%s': %zu ids by heap, %zu by scan", name, n, alphabets[a],
                  nh, ns);
            same += ok;
        }
    }
    printf("%s: heap and scan agree on %zu of %zu long pieces\n", name, same, tries);
    size_t n = 200000;
    char *run = malloc(n);
    CHECK(run != NULL, "memory for the long run");
    if (!run) return;
    memset(run, 'a', n);
    size_t ids = tokenizer_count(t, run, n);
    CHECK(ids > n / 64 && ids < n, "%s: 200,000 'a' give %zu tokens", name, ids);
    free(run);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_tokenizer VECTORS_DIR TOKENIZERS_DIR\n");
        return 2;
    }
    vectors_dir = argv[1];
    tokenizers_dir = argv[2];

    struct tokenizer *o200k = load("o200k_base.tiktoken");
    struct tokenizer *ds = load("deepseek_v3/tokenizer.json");
    if (o200k) {
        CHECK(!strcmp(tokenizer_name(o200k), "o200k_harmony"), "name %s", tokenizer_name(o200k));
        check_vectors(o200k, "o200k_base.jsonl");
        /* the data README's reference vector */
        const uint32_t ref[] = {13225, 11, 2375, 0,   1056, 30551, 4061, 1883, 271, 622,
                                1215,  9,  17,   220, 1069, 220,   7633, 2548, 198};
        check_ids(o200k, "Hello, world! def foo(x):\n    return x*2  # 12345\n", 0, ref, 19);
        /* harmony special tokens: ids with specials on, plain text with them off */
        const uint32_t harmony[] = {200006, 173781, 200005, 17196, 200008, 12194, 200007};
        check_ids(o200k, "<|start|>assistant<|channel|>final<|message|>Hi<|end|>", 1, harmony, 7);
        uint32_t plain[64];
        size_t np = tokenizer_encode(o200k, "<|end|>", 7, 0, plain, 64);
        CHECK(np > 1 && plain[0] != 200007, "without specials <|end|> is text (%zu ids)", np);
        CHECK(tokenizer_count(o200k, "<|reserved_201087|>", 19) == 1,
              "the last reserved token is one token");
    }
    if (ds) {
        CHECK(!strcmp(tokenizer_name(ds), "deepseek_v3"), "name %s", tokenizer_name(ds));
        check_vectors(ds, "deepseek_v3.jsonl");
        const uint32_t added[] = {6366, 223, 128814, 223, 525, 10541, 4596, 223, 6895, 18009};
        check_ids(ds,
                  "hi <\xef\xbd\x9ctool\xe2\x96\x81sep\xef\xbd\x9c> \xe4\xb8\xad\xe6\x96\x87"
                  "\xe5\xad\x97\xe7\xac\xa6 123456",
                  1, added, 10);
    }
    if (o200k) check_heap_merges(o200k, "o200k");
    if (ds) check_heap_merges(ds, "deepseek_v3");
    /* invalid UTF-8 is encoded byte for byte, never dropped */
    if (o200k)
        CHECK(tokenizer_count(o200k,
                              "a\xff\xfe"
                              "b",
                              4) >= 3,
              "invalid UTF-8 keeps its bytes");

    check_bad_file("@@@@ 0\n", "not valid base64");
    check_bad_file("just words\n", "not a tiktoken rank file");
    check_bad_file("YQ== 0\nYg== 1\n", "2 ranks");
    /* ids that would size the tables past reason (2^31 and up once looped forever) */
    check_bad_file("YQ== 0\nYg== 3000000000\n", "above the largest strobe takes");
    check_bad_file("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 4000000000}, "
                   "\"merges\": []}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}",
                   "above the largest strobe takes");
    check_bad_file(
        "{\"model\": {\"type\": \"WordPiece\"}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}",
        "WordPiece");
    check_bad_file("{\"pre_tokenizer\": {\"type\": \"Whitespace\"}}", "Whitespace");
    check_bad_file("{\"model\": 1", "not valid JSON");
    /* a byte-level vocabulary without a token for every byte could not encode all text: ids
     * of 4294967295 came out */
    check_bad_file("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, "
                   "\"merges\": []}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}",
                   "no token for the byte 0x00");
    check_bad_file("", "is empty");
    check_bad_file(" \n", "is empty");
    char err[512] = "";
    CHECK(!tokenizer_load("/nonexistent/tok.json", err, sizeof err) && strstr(err, "cannot read"),
          "a missing file is named: %s", err);
    tokenizer_free(o200k);
    tokenizer_free(ds);
    return check_done("tokenizer");
}
