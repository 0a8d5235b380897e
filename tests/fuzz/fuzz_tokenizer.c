/* The tokenizer on any text a server may send (invalid UTF-8 included), and both loaders on
 * any file: encoding counts what it stores, ids stay in the vocabulary, loaders refuse what
 * they cannot read with a sentence instead of crashing. STROBE_FUZZ_TOKENIZER names the
 * o200k file (default tokenizers/o200k_base.tiktoken). */
#include "fuzz_util.h"
#include "tokenizer.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tokenizer *o200k;
    if (!o200k) {
        char err[512];
        const char *path = getenv("STROBE_FUZZ_TOKENIZER");
        o200k = tokenizer_load(path ? path : "tokenizers/o200k_base.tiktoken", err, sizeof err);
        if (!o200k) {
            fprintf(stderr, "fuzz_tokenizer: %s\n", err);
            abort();
        }
    }
    uint32_t ids[4096];
    int specials = size && (data[0] & 1);
    size_t n = tokenizer_encode(o200k, (const char *)data, size, specials, ids, 4096);
    if (n > size + 1 && size) abort(); /* never more tokens than bytes */
    for (size_t i = 0; i < n && i < 4096; i++)
        if (ids[i] != UINT32_MAX && ids[i] > 201087) abort();
    if (tokenizer_count(o200k, (const char *)data, size) !=
        tokenizer_encode(o200k, (const char *)data, size, 1, NULL, 0))
        abort();
    /* the same bytes as a tokenizer file: tokenizer.json when it starts with '{' */
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/tok", fuzz_dir());
    fuzz_write(path, data, size);
    struct tokenizer *t = tokenizer_load(path, err, sizeof err);
    if (!t && !err[0]) abort(); /* a refusal must say why */
    if (t) {
        tokenizer_count(t, "hello world", 11);
        tokenizer_free(t);
    }
    return 0;
}
