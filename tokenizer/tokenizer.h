/* Byte-level BPE tokenizers, off the hot path: tiktoken rank files (o200k_base with the
 * o200k_harmony special tokens of gpt-oss, cl100k_base) and Hugging Face tokenizer.json
 * byte-level BPE (DeepSeek V3, Llama 3, Qwen 2 style). Ids equal the reference
 * implementations' (tests/data/tokenizer holds vectors from their published packages).
 * Encoding adds no BOS/EOS. A tokenizer is used by one thread at a time. */
#ifndef STROBE_TOKENIZER_H
#define STROBE_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>

struct tokenizer;

/* Loads FILE (format from its content: '{' starts a tokenizer.json). NULL with err set to
 * a sentence naming what is wrong and what to do. */
struct tokenizer *tokenizer_load(const char *path, char *err, size_t errlen);
void tokenizer_free(struct tokenizer *t);

/* "o200k_harmony", "cl100k_base", "deepseek_v3", or "tokenizer.json" for one not known by
 * its sha256 */
const char *tokenizer_name(const struct tokenizer *t);
const char *tokenizer_sha256(const struct tokenizer *t); /* of the file, 64 hex digits */

/* Encodes text; special tokens written in the text (e.g. "<|end|>") become their ids when
 * `specials` is set, else they are encoded as plain text. Stores the first `cap` ids and
 * returns how many there are. */
size_t tokenizer_encode(struct tokenizer *t, const char *text, size_t len, int specials,
                        uint32_t *ids, size_t cap);
/* Token count of text, special tokens recognised. */
size_t tokenizer_count(struct tokenizer *t, const char *text, size_t len);

/* The default for `strobe tokenize`: Hugging Face splits on added tokens, tiktoken's
 * encode_ordinary does not. */
int tokenizer_specials_by_default(const struct tokenizer *t);

#endif
