/* The tokenizer gives the reference implementations' ids: tests/data/tokenizer holds, per
 * tokenizer, texts (real trajectory strings and edge cases) with the ids that the
 * tokenizers' own published packages give (tests/tokenizer/make_vectors.mjs). Also: the
 * special tokens, counting, and the errors for files that are not tokenizers.
 * args: VECTORS_DIR TOKENIZERS_DIR */
#include "check.h"
#include "json_must.h"
#include "read_file.h"
#include "tokenizer.h"
#include "tokenizer_impl.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/wait.h>
#include <fcntl.h>

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
          "loading '%.200s' should fail naming '%s', got: %s", content, expect_in_error, err);
    tokenizer_free(t);
    unlink(path);
}

/* A tokenizer.json with a ByteLevel pre-tokenizer and `rest` (its other members). */
static void check_bad_hf(const char *rest, const char *expect_in_error)
{
    char content[1024];
    snprintf(content, sizeof content, "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, %s}", rest);
    check_bad_file(content, expect_in_error);
}

/* Fields of the wrong JSON type are refused naming the field: a vocab array crashed (its
 * elements have no keys), an id 1.5 was read as 1, an object of two strings passed for a
 * merge pair, and lists given as objects were walked member by member. */
static void check_wrong_types(void)
{
    const char *vocab = "\"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}";
    char model[512];
#define MODEL(...) (snprintf(model, sizeof model, __VA_ARGS__), model)
    check_bad_hf("\"model\": {\"type\": \"BPE\", \"vocab\": [1]}",
                 "model.vocab must be an object mapping each token to its id (it is an array)");
    check_bad_hf("\"model\": {\"type\": \"BPE\", \"vocab\": [{\"a\": 0}]}", "(it is an array)");
    check_bad_hf("\"model\": {\"type\": \"BPE\", \"vocab\": \"a\"}", "(it is a string)");
    check_bad_hf("\"model\": {\"type\": \"BPE\"}", "model.vocab must be an object");
    check_bad_hf("\"model\": [1]", "model must be an object with a \"type\" (it is an array)");
    check_bad_hf("\"model\": \"BPE\"", "(it is a string)");
    check_bad_hf("\"other\": 1", "model must be an object with a \"type\" (it is missing)");
    check_bad_hf("\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 1.5}}",
                 "model.vocab entry 'a' has id 1.5, and ids are whole numbers");
    check_bad_hf("\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}}", "entry 'a' has id -1,");
    check_bad_hf("\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"1\"}}",
                 "entry 'a' has an id that is a string, not a number");
    check_bad_hf("\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": null}}", "that is null");
    check_bad_hf("\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 2147483648}}",
                 "id 2147483648, above the largest strobe takes");
    check_bad_hf("\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 1e300}}",
                 "above the largest strobe takes");
    /* special tokens outside the byte alphabet are skipped by the vocabulary, not their ids */
    check_bad_hf("\"model\": {\"type\": \"BPE\", \"vocab\": {\"<\xe2\x80\x94>\": 0.5}}", "id 0.5");
    check_bad_hf(MODEL("\"model\": {\"type\": \"BPE\", %s, \"merges\": {\"a b\": 0}}", vocab),
                 "model.merges must be an array (it is an object)");
    check_bad_hf(MODEL("\"model\": {\"type\": \"BPE\", %s, \"merges\": \"a b\"}", vocab),
                 "model.merges must be an array (it is a string)");
    check_bad_hf(MODEL("\"model\": {\"type\": \"BPE\", %s, \"merges\": [\"a b\", 5]}", vocab),
                 "model.merges[1] must be a string \"LEFT RIGHT\" or a pair of strings (it is a "
                 "number)");
    check_bad_hf(
        MODEL("\"model\": {\"type\": \"BPE\", %s, \"merges\": [{\"l\": \"a\", \"r\": \"b\"}]}",
              vocab),
        "model.merges[0] must be a string \"LEFT RIGHT\" or a pair of strings (it is an object)");
    check_bad_hf(MODEL("\"model\": {\"type\": \"BPE\", %s, \"merges\": [[\"a\", 1]]}", vocab),
                 "(it is an array)");
    check_bad_hf(MODEL("\"model\": {\"type\": \"BPE\", %s, \"merges\": [\"ab\"]}", vocab),
                 "merge 0 is not two vocabulary tokens whose join is one");
    check_bad_hf(MODEL("\"model\": {\"type\": \"BPE\", %s, \"byte_fallback\": \"no\"}", vocab),
                 "model.byte_fallback must be true or false (it is a string)");
    check_bad_hf(MODEL("\"model\": {\"type\": \"BPE\", %s, \"ignore_merges\": 1}", vocab),
                 "model.ignore_merges must be true or false (it is a number)");
    check_bad_hf(
        MODEL("\"model\": {\"type\": \"BPE\", %s, \"continuing_subword_prefix\": 5}", vocab),
        "model.continuing_subword_prefix must be a string or null (it is a number)");
    check_bad_hf(MODEL("\"model\": {\"type\": \"BPE\", %s, \"end_of_word_suffix\": []}", vocab),
                 "model.end_of_word_suffix must be a string or null (it is an array)");
    check_bad_hf(MODEL("\"model\": {\"type\": \"BPE\", %s}, \"added_tokens\": {\"x\": 1}", vocab),
                 "added_tokens must be an array (it is an object)");
    check_bad_hf(MODEL("\"model\": {\"type\": \"BPE\", %s}, \"added_tokens\": [1]", vocab),
                 "added_tokens[0] must be an object with an id and a content (it is a number)");
    check_bad_hf(MODEL("\"model\": {\"type\": \"BPE\", %s}, \"added_tokens\": [{\"id\": 7, "
                       "\"content\": \"<x>\"}, {\"id\": 1.5, \"content\": \"<y>\"}]",
                       vocab),
                 "added_tokens[1] has id 1.5");
    check_bad_hf(MODEL("\"model\": {\"type\": \"BPE\", %s}, \"added_tokens\": [{\"id\": -3, "
                       "\"content\": \"<x>\"}]",
                       vocab),
                 "added_tokens[0] has id -3");
    check_bad_hf(
        MODEL("\"model\": {\"type\": \"BPE\", %s}, \"added_tokens\": [{\"content\": \"<x>\"}]",
              vocab),
        "added_tokens[0] has an id that is missing");
    check_bad_hf(
        MODEL("\"model\": {\"type\": \"BPE\", %s}, \"added_tokens\": [{\"id\": 3, \"content\": 5}]",
              vocab),
        "added_tokens[0].content must be a string that is not empty (it is a number)");
#undef MODEL
    check_bad_file("{\"pre_tokenizer\": \"ByteLevel\"}",
                   "pre_tokenizer must be an object with a \"type\" (it is a string)");
    check_bad_file("{\"pre_tokenizer\": [{\"type\": \"ByteLevel\"}]}", "(it is an array)");
    check_bad_file("{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": {\"x\": "
                   "{\"type\": \"ByteLevel\"}}}}",
                   "pre_tokenizer.pretokenizers must be an array of pre-tokenizers (it is an "
                   "object)");
    check_bad_file("{\"pre_tokenizer\": {\"type\": \"Sequence\"}}",
                   "pre_tokenizer.pretokenizers must be an array of pre-tokenizers (it is "
                   "missing)");
    check_bad_file("{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": "
                   "[{\"type\": \"ByteLevel\"}, 5]}}",
                   "pre_tokenizer.pretokenizers[1] must be an object");
    check_bad_file("{\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": \"no\"}}",
                   "pre_tokenizer.add_prefix_space must be true or false (it is a string)");
    check_bad_file("{\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": 1}}",
                   "pre_tokenizer.use_regex must be true or false");
    check_bad_file("{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, "
                   "\"behavior\": \"Isolated\", \"invert\": \"false\"}}",
                   "pre_tokenizer.invert must be true or false");
    check_bad_file("{\"normalizer\": 5}", "normalizer must be an object with a \"type\", or null "
                                          "(it is a number)");
    check_bad_file("{\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": {}}}",
                   "normalizer Sequence is not supported");
}

/* The forms the type checks must still take: every byte in GPT-2's alphabet, merges as
 * "A B" and as pairs, null and false where a tokenizer.json may have them, an added token. */
#ifdef __SANITIZE_ADDRESS__
/* Under ASan an allocation past its limit aborts unless told to fail as malloc does; the tests'
 * ASAN_OPTIONS set other keys, which merge with these. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }
#endif

/* The loader's own parse hooks (to tell running out of memory from bad JSON) once put
 * cJSON's plain malloc back, undoing the hooks strobe installs at start (json_must.h): in a
 * child, after a load, an allocation cJSON cannot get must still end the process saying so. */
static void hooks_survive_load(const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        json_must_init();
        char err[512];
        struct tokenizer *t = tokenizer_load(path, err, sizeof err);
        if (!t) _exit(3);
        tokenizer_free(t);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        void *p = cJSON_malloc((size_t)-1 / 2);
        _exit(p ? 0 : 2); /* reached only when the hooks were gone */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1,
          "cJSON's exit-on-out-of-memory hooks stay installed after a tokenizer.json load, got "
          "0x%x",
          status);
}

static void check_small_hf(void)
{
    cJSON *root = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddNullToObject(root, "normalizer");
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "ByteLevel");
    cJSON_AddFalseToObject(pre, "add_prefix_space");
    cJSON_AddTrueToObject(pre, "use_regex");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddFalseToObject(model, "byte_fallback");
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int b = 0, next = 256; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        unsigned cp = printable ? (unsigned)b : (unsigned)next++;
        char key[3] = {(char)cp, 0, 0};
        if (cp >= 0x80) key[0] = (char)(0xC0 | cp >> 6), key[1] = (char)(0x80 | (cp & 0x3F));
        cJSON_AddNumberToObject(vocab, key, b);
    }
    cJSON_AddNumberToObject(vocab, "ab", 256);
    cJSON_AddNumberToObject(vocab, "abc", 257);
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    cJSON_AddItemToArray(merges, cJSON_CreateString("a b"));
    const char *pair[] = {"ab", "c"};
    cJSON_AddItemToArray(merges, cJSON_CreateStringArray(pair, 2));
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON *x = cJSON_CreateObject();
    cJSON_AddNumberToObject(x, "id", 300);
    cJSON_AddStringToObject(x, "content", "<x>");
    cJSON_AddItemToArray(added, x);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    char path[] = "/tmp/strobe-tok-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write temp file");
    close(fd);
    free(text);
    char err[512] = "";
    struct tokenizer *t = tokenizer_load(path, err, sizeof err);
    CHECK(t != NULL, "a small valid tokenizer.json loads: %s", err);
    hooks_survive_load(path);
    unlink(path);
    if (!t) return;
    const uint32_t want[] = {257, 300, 256};
    check_ids(t, "abc<x>ab", 1, want, 3);
    tokenizer_free(t);
}

/* A device given as the tokenizer file was read to its end, /dev/zero until memory ran out
 * (a pipe is read: test_tokens.py feeds one). */
static void check_special_files(void)
{
    char err[512] = "";
    struct tokenizer *t = tokenizer_load("/dev/zero", err, sizeof err);
    CHECK(!t && strstr(err, "/dev/zero is a character device, not a regular file"),
          "/dev/zero is refused: %s", err);
    tokenizer_free(t);
    char dir[] = "/tmp/strobe-tok-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "temp dir");
    err[0] = 0;
    t = tokenizer_load(dir, err, sizeof err);
    CHECK(!t && strstr(err, "Is a directory"), "a directory is refused: %s", err);
    tokenizer_free(t);
    rmdir(dir);
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
    check_wrong_types();
    check_small_hf();
    check_special_files();
    check_bad_file("", "is empty");
    check_bad_file(" \n", "is empty");
    char err[512] = "";
    CHECK(!tokenizer_load("/nonexistent/tok.json", err, sizeof err) && strstr(err, "cannot read"),
          "a missing file is named: %s", err);
    tokenizer_free(o200k);
    tokenizer_free(ds);
    return check_done("tokenizer");
}
