/* What the loaders fill in (tokenizer.c owns the struct and the encoding). */
#ifndef STROBE_TOKENIZER_IMPL_H
#define STROBE_TOKENIZER_IMPL_H
#include "bpe.h"
#include "pretok.h"
#include "tokenizer.h"

#include <stdio.h>

/* A loader's out-of-memory sentence for what it was loading ("the ranks"); returns -1. */
static inline int tokenizer_no_memory(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "out of memory while loading %s: free memory and run again", what);
    return -1;
}

struct special_token {
    char *text;
    size_t len;
    uint32_t id;
};

struct tokenizer {
    char name[64], sha256[65];
    struct bpe bpe;
    struct pretok pre;
    struct pretok specials_re; /* one stage: every special token, longest first */
    struct special_token *specials;
    size_t nspecials;
    int specials_default;
};

/* 0, or -1 with err set; both take the file's bytes. */
int tokenizer_load_tiktoken(struct tokenizer *t, const char *data, size_t len, char *err,
                            size_t errlen);
int tokenizer_load_hf(struct tokenizer *t, const char *data, size_t len, char *err, size_t errlen);
/* Registers a special token (copied); call tokenizer_build_specials once after the last. */
void tokenizer_add_special(struct tokenizer *t, const char *text, size_t len, uint32_t id);
int tokenizer_build_specials(struct tokenizer *t, char *err, size_t errlen);

#endif
