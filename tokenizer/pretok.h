/* Pre-tokenisation: a pipeline of regular-expression splits (PCRE2, UTF + Unicode
 * properties, JIT). Each stage splits every piece of the stage before into matches and the
 * text between them, both kept ("Isolated" in Hugging Face terms; tiktoken's patterns match
 * every character, so keeping the gaps changes nothing there). Invalid UTF-8 never matches
 * and so ends up in gaps, byte for byte. One pretok serves one thread at a time. */
#ifndef STROBE_PRETOK_H
#define STROBE_PRETOK_H
#include <stddef.h>

#define PRETOK_MAX_STAGES 8

struct pretok {
    void *re[PRETOK_MAX_STAGES]; /* pcre2_code_8 */
    void *md[PRETOK_MAX_STAGES]; /* pcre2_match_data_8, one per stage: stages nest */
    int n;
};

/* Adds a stage; literal: the pattern is a plain string. 0, or -1 with err naming the
 * pattern's error and where it is. */
int pretok_add(struct pretok *p, const char *pattern, size_t len, int literal, char *err,
               size_t errlen);
void pretok_free(struct pretok *p);

typedef void (*pretok_piece_fn)(void *ctx, const char *s, size_t n);
/* Calls fn for every final piece of s[0..n), in order; with no stages, s itself. */
void pretok_split(struct pretok *p, const char *s, size_t n, pretok_piece_fn fn, void *ctx);

/* Finds the leftmost match of stage 0 only, at or after `from`: 1 with [*ms, *me), or 0. */
int pretok_find(struct pretok *p, const char *s, size_t n, size_t from, size_t *ms, size_t *me);

#endif
