#define PCRE2_CODE_UNIT_WIDTH 8
#include "pretok.h"

#include <pcre2.h>
#include <stdio.h>

int pretok_add(struct pretok *p, const char *pattern, size_t len, int literal, char *err,
               size_t errlen)
{
    if (p->n == PRETOK_MAX_STAGES) {
        snprintf(err, errlen, "more than %d pre-tokenisation stages", PRETOK_MAX_STAGES);
        return -1;
    }
    int code;
    PCRE2_SIZE at;
    uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | (literal ? PCRE2_LITERAL : 0);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &code, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        snprintf(err, errlen, "pre-tokenisation pattern '%.80s' does not compile at offset %zu: %s",
                 pattern, (size_t)at, (char *)msg);
        return -1;
    }
    /* JIT is a speed-up only: a platform without it still matches, just slower */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    p->re[p->n] = re;
    p->md[p->n] = pcre2_match_data_create_from_pattern(re, NULL);
    p->n++;
    return 0;
}

void pretok_free(struct pretok *p)
{
    for (int i = 0; i < p->n; i++) {
        pcre2_match_data_free(p->md[i]);
        pcre2_code_free(p->re[i]);
    }
    p->n = 0;
}

static int find_at(struct pretok *p, int stage, const char *s, size_t n, size_t from, size_t *ms,
                   size_t *me)
{
    while (from < n) {
        int rc = pcre2_match(p->re[stage], (PCRE2_SPTR)s, n, from, 0, p->md[stage], NULL);
        if (rc < 0) return 0;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(p->md[stage]);
        if (ov[1] > ov[0]) {
            *ms = ov[0];
            *me = ov[1];
            return 1;
        }
        /* an empty match splits nothing: look again one character on */
        from = ov[0] + 1;
        while (from < n && ((unsigned char)s[from] & 0xC0) == 0x80) from++;
    }
    return 0;
}

int pretok_find(struct pretok *p, const char *s, size_t n, size_t from, size_t *ms, size_t *me)
{
    return p->n ? find_at(p, 0, s, n, from, ms, me) : 0;
}

static void split_stage(struct pretok *p, int stage, const char *s, size_t n, pretok_piece_fn fn,
                        void *ctx)
{
    if (n == 0) return;
    if (stage == p->n) {
        fn(ctx, s, n);
        return;
    }
    size_t pos = 0, ms, me;
    while (find_at(p, stage, s, n, pos, &ms, &me)) {
        split_stage(p, stage + 1, s + pos, ms - pos, fn, ctx);
        split_stage(p, stage + 1, s + ms, me - ms, fn, ctx);
        pos = me;
    }
    split_stage(p, stage + 1, s + pos, n - pos, fn, ctx);
}

void pretok_split(struct pretok *p, const char *s, size_t n, pretok_piece_fn fn, void *ctx)
{
    split_stage(p, 0, s, n, fn, ctx);
}
