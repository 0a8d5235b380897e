#include "chunk_scan.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define MAX_DEPTH  32
#define MAX_NUMBER 40 /* cJSON reads at most 63 characters of a number */

struct scan {
    const unsigned char *p, *end;
    struct chunk_reader *rd;
    struct chunk_facts *cf;
    int want;                  /* texts asked for */
    const unsigned char *base; /* the event's first byte, for the holes' places */
    struct chunk_holes *holes; /* where the scalars read are noted, or NULL */
};

/* Notes the scalar token just read (from `from` to s->p) as a hole of the event's shape. */
static void note(struct scan *s, const unsigned char *from, enum chunk_hole_role role,
                 struct chunk_hole how)
{
    struct chunk_holes *h = s->holes;
    if (h->n == h->cap || s->p - s->base > UINT16_MAX) {
        h->overflow = 1; /* a shape too big to keep: the event is still read */
        return;
    }
    how.at = (uint16_t)(from - s->base);
    how.len = (uint16_t)(s->p - from);
    how.role = (uint8_t)role;
    h->h[h->n++] = how;
}

/* Bytes that end the plain run of a string: the quote, an escape, a control character. */
static const unsigned char string_stop[256] = {
    [0 ... 0x1f] = 1,
    ['"'] = 1,
    ['\\'] = 1,
};

/* Inlined: called between every two tokens of every event. */
#define HOT static inline __attribute__((always_inline))

/* The first byte at or after p that ends a string's plain run, or end. Sixteen bytes at a
 * time where the data has them (SSE2 is in the x86-64 baseline): byte by byte, the loop was
 * the scanner's largest cost. Never reads at or past end. */
HOT const unsigned char *plain_run(const unsigned char *p, const unsigned char *end)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'),
                  last_control = _mm_set1_epi8(0x1f);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)p);
        /* unsigned x <= 0x1f exactly when max(x, 0x1f) == 0x1f */
        __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(x, last_control), last_control);
        __m128i stop = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)), control);
        unsigned mask = (unsigned)_mm_movemask_epi8(stop);
        if (mask) return p + __builtin_ctz(mask);
        p += 16;
    }
#endif
    while (p < end && !string_stop[*p]) p++;
    return p;
}

HOT void ws(struct scan *s)
{
    /* servers rarely put spaces between tokens: one test for the common case */
    while (s->p < s->end && *s->p <= ' ' &&
           (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* The next non-space byte, consumed when it is c. */
HOT int take(struct scan *s, unsigned char c)
{
    if (s->p < s->end && *s->p == c) { /* compact JSON: no space to skip */
        s->p++;
        return 1;
    }
    ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

static int hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return 0;
        v = v << 4 | d;
    }
    *out = v;
    return 1;
}

/* One escape after its backslash into out (NULL: only measured); its decoded length, or 0
 * to fall back. */
static size_t escape(struct scan *s, unsigned char *out)
{
    if (s->p >= s->end) return 0;
    unsigned char c = *s->p++;
    static const char plain_from[] = "\"\\/bfnrt", plain_to[] = "\"\\/\b\f\n\r\t";
    const char *k = c ? strchr(plain_from, c) : NULL;
    if (k) {
        if (out) *out = (unsigned char)plain_to[k - plain_from];
        return 1;
    }
    if (c != 'u' || s->end - s->p < 4) return 0;
    unsigned cp, lo;
    if (!hex4(s->p, &cp) || cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) return 0;
    s->p += 4;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || !hex4(s->p + 2, &lo) ||
            lo < 0xDC00 || lo > 0xDFFF)
            return 0;
        s->p += 6;
        cp = 0x10000 + ((cp & 0x3FF) << 10 | (lo & 0x3FF));
    }
    size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (out) {
        static const unsigned char lead[5] = {0, 0, 0xC0, 0xE0, 0xF0};
        for (size_t i = n - 1; i > 0; i--, cp >>= 6) out[i] = (unsigned char)(0x80 | (cp & 0x3F));
        out[0] = (unsigned char)(n == 1 ? cp : (lead[n] | cp));
    }
    return n;
}

/* string() past its plain run from start, at a byte that is no quote. */
static int escaped_string(struct scan *s, const unsigned char *start, int keep, const char **ptr,
                          size_t *buf_off, size_t *len)
{
    if (s->p >= s->end || *s->p < 0x20) return 0;
    /* escapes: the decoded string can only be shorter than the rest of the data */
    size_t at = keep ? chunk_reader_reserve(s->rd, (size_t)(s->p - start)) : 0, n = 0;
    if (keep && s->p > start) memcpy(s->rd->buf + at, start, (size_t)(s->p - start));
    n = (size_t)(s->p - start);
    for (;;) {
        if (s->p >= s->end || *s->p < 0x20) return 0;
        if (*s->p == '"') break;
        if (*s->p == '\\') {
            s->p++;
            unsigned char out[4];
            size_t k = escape(s, keep ? out : NULL);
            if (!k) return 0;
            if (keep) {
                size_t at_k = chunk_reader_reserve(s->rd, k); /* before buf: it may move */
                memcpy(s->rd->buf + at_k, out, k);
            }
            n += k;
        } else {
            const unsigned char *run = s->p;
            s->p = plain_run(s->p, s->end);
            if (keep) {
                size_t at_run = chunk_reader_reserve(s->rd, (size_t)(s->p - run));
                memcpy(s->rd->buf + at_run, run, (size_t)(s->p - run));
            }
            n += (size_t)(s->p - run);
        }
    }
    s->p++;
    *ptr = NULL;
    *buf_off = at;
    *len = n;
    return 1;
}

/* A string after its opening quote. With keep, its decoded bytes: *ptr into the data when it
 * has no escape, else NULL with the bytes at *buf_off in the reader's buffer. *len: decoded
 * length either way. 0 to fall back. Inlined up to its plain run's end (a text, an id: most
 * strings have no escape), the rest out of line. */
HOT int string(struct scan *s, int keep, const char **ptr, size_t *buf_off, size_t *len)
{
    const unsigned char *start = s->p;
    s->p = plain_run(s->p, s->end);
    if (s->p < s->end && *s->p == '"') {
        *ptr = (const char *)start;
        *len = (size_t)(s->p - start);
        s->p++;
        return 1;
    }
    return escaped_string(s, start, keep, ptr, buf_off, len);
}

/* A string whose value nothing reads, after its opening quote. */
static int skip_string(struct scan *s)
{
    const unsigned char *from = s->p;
    const char *ptr;
    size_t off, len;
    if (!string(s, 0, &ptr, &off, &len)) return 0;
    if (s->holes) note(s, from, HOLE_STRING, (struct chunk_hole){0});
    return 1;
}

/* Eight bytes at p, loaded whatever p's alignment. */
HOT uint64_t load8(const unsigned char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

/* Whether all eight bytes of x are ASCII digits: each byte's high nibble is 3, and adding 6
 * to it does not carry out of its low nibble (it would for ':' and above). */
HOT int eight_digits(uint64_t x)
{
    const uint64_t high = 0xF0F0F0F0F0F0F0F0u, six = 0x0606060606060606u;
    return ((x & high) | (((x + six) & high) >> 4)) == 0x3333333333333333u;
}

/* The value of eight ASCII digits, the first byte the most significant: adjacent bytes, then
 * 16-bit lanes, then 32-bit lanes folded into pairs, each step fitting its lane. */
HOT uint64_t eight_digit_value(uint64_t x)
{
    x -= 0x3030303030303030u;
    x = (x * 10 + (x >> 8)) & 0x00FF00FF00FF00FFu;
    x = (x * 100 + (x >> 16)) & 0x0000FFFF0000FFFFu;
    return (x * 10000 + (x >> 32)) & 0xFFFFFFFFu;
}

HOT const unsigned char *digits(const unsigned char *p, const unsigned char *end)
{
    /* the emulator's stamps have 19 digits: eight at a time first */
    while (end - p >= 8 && eight_digits(load8(p))) p += 8;
    while (p < end && (unsigned)(*p - '0') < 10) p++;
    return p;
}

/* How many of the eight bytes of x, from the first, are ASCII digits before any other byte:
 * each byte is tested as in eight_digits (a carry out of a byte can only follow a non-digit,
 * so it cannot hide the first one), then the first non-zero byte of the test is found. */
HOT unsigned digit_run(uint64_t x)
{
    const uint64_t high = 0xF0F0F0F0F0F0F0F0u, six = 0x0606060606060606u,
                   threes = 0x3333333333333333u, low7 = 0x7F7F7F7F7F7F7F7Fu;
    uint64_t t = (((x & high) | (((x + six) & high) >> 4)) ^ threes);
    uint64_t nonzero = (((t & low7) + low7) | t) & ~low7;
    return nonzero ? (unsigned)__builtin_ctzll(nonzero) / 8 : 8;
}

/* The digits of an integer part from p (the first 1 to 9) and their value in *mag, eight at a
 * time, the last ones by a shifted load; NULL when they are more than 19 (no integer for
 * json_int64: int_token falls back). */
HOT const unsigned char *int_digits(const unsigned char *p, const unsigned char *end, uint64_t *mag)
{
    static const uint64_t pow10[9] = {1,      10,      100,      1000,     10000,
                                      100000, 1000000, 10000000, 100000000};
    const unsigned char *d0 = p;
    uint64_t m = 0;
    while (end - p >= 8) {
        uint64_t x = load8(p);
        unsigned n = digit_run(x);
        if (n == 8) {
            m = m * 100000000u + eight_digit_value(x);
            p += 8;
            if (p - d0 > 19) return NULL;
            continue;
        }
        if (n) { /* the n digits moved to the value's low places, '0's before them */
            uint64_t zeros = 0x3030303030303030u >> (8 * n);
            m = m * pow10[n] + eight_digit_value((x << (64 - 8 * n)) | zeros);
            p += n;
        }
        *mag = m;
        return p - d0 > 19 ? NULL : p;
    }
    for (; p < end && (unsigned)(*p - '0') < 10; p++) m = m * 10 + (uint64_t)(*p - '0');
    *mag = m;
    return p - d0 > 19 ? NULL : p;
}

/* A number by strict JSON grammar; *is_int when it had neither fraction nor exponent. */
static int number(struct scan *s, int *is_int, int *neg, size_t *ndigits)
{
    const unsigned char *start = s->p;
    *neg = s->p < s->end && *s->p == '-';
    if (*neg) s->p++;
    const unsigned char *d0 = s->p;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (s->p < s->end && *s->p >= '1' && *s->p <= '9')
        s->p = digits(s->p + 1, s->end);
    else
        return 0;
    *ndigits = (size_t)(s->p - d0);
    *is_int = 1;
    if (s->p < s->end && *s->p == '.') {
        *is_int = 0;
        const unsigned char *f = s->p + 1;
        s->p = digits(f, s->end);
        if (s->p == f) return 0;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        *is_int = 0;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        const unsigned char *e = s->p;
        s->p = digits(e, s->end);
        if (s->p == e) return 0;
    }
    return s->p - start <= MAX_NUMBER;
}

/* A number whose value nothing reads. */
static int skip_number(struct scan *s)
{
    const unsigned char *from = s->p;
    int is_int, neg;
    size_t ndigits;
    if (!number(s, &is_int, &neg, &ndigits)) return 0;
    if (s->holes) note(s, from, HOLE_NUMBER, (struct chunk_hole){0});
    return 1;
}

static int literal(struct scan *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n)) return 0;
    s->p += n;
    return 1;
}

static int skip_value(struct scan *s, int depth);

/* An object's or array's members after its opening bracket, each handed to member(). */
typedef int (*member_fn)(struct scan *s, const unsigned char *key, size_t klen, void *ctx,
                         int depth);

static int key(struct scan *s, const unsigned char **k, size_t *klen)
{
    if (!take(s, '"')) return 0;
    *k = s->p;
    s->p = plain_run(s->p, s->end);
    if (s->p >= s->end || *s->p != '"') return 0; /* escaped keys fall back */
    *klen = (size_t)(s->p - *k);
    s->p++;
    return take(s, ':');
}

static int object(struct scan *s, member_fn member, void *ctx, int depth)
{
    if (depth > MAX_DEPTH) return 0;
    if (take(s, '}')) return 1;
    for (;;) {
        const unsigned char *k;
        size_t klen;
        /* every member reader skips the space before its value itself */
        if (!key(s, &k, &klen) || !member(s, k, klen, ctx, depth)) return 0;
        ws(s); /* one look for either separator: this loop runs for every member */
        if (s->p >= s->end) return 0;
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        if (*s->p == '}') {
            s->p++;
            return 1;
        }
        return 0;
    }
}

static int skip_member(struct scan *s, const unsigned char *k, size_t klen, void *ctx, int depth)
{
    (void)k, (void)klen, (void)ctx;
    return skip_value(s, depth + 1);
}

static int skip_value(struct scan *s, int depth)
{
    ws(s);
    if (s->p >= s->end) return 0;
    switch (*s->p) {
    case '"': s->p++; return skip_string(s);
    case '{': s->p++; return object(s, skip_member, NULL, depth);
    case '[':
        s->p++;
        if (depth > MAX_DEPTH) return 0;
        if (take(s, ']')) return 1;
        do {
            if (!skip_value(s, depth + 1)) return 0;
        } while (take(s, ','));
        return take(s, ']');
    case 't': return literal(s, "true", 4);
    case 'f': return literal(s, "false", 5);
    case 'n': return literal(s, "null", 4);
    default: return skip_number(s);
    }
}

/* The value json_int64 gives an integer token of magnitude mag: strtod rounds the decimal to
 * the nearest double, and so does converting the exact integer; *has when it is within
 * +-2^62. */
HOT void int_result(uint64_t mag, int neg, int *has, int64_t *out)
{
    double d = (double)mag;
    if (neg) d = -d;
    *has = 0;
    if (d >= -4611686018427387904.0 && d <= 4611686018427387904.0) {
        *has = 1;
        *out = (int64_t)d;
    }
}

/* A number read as json_int64 reads it (int_result), the exact magnitude of its digits in
 * *mag; has and out lie in s->cf. */
static int int_token(struct scan *s, int *has, int64_t *out, uint64_t *mag)
{
    /* number()'s grammar where it matters: anything but an integer of at most 19 digits falls
     * back, so a fraction or an exponent need not be read (in locals: this runs for every
     * stamp of every event) */
    const unsigned char *from = s->p, *p = s->p, *end = s->end;
    *has = 0;
    int neg = p < end && *p == '-';
    p += neg;
    *mag = 0;
    if (p < end && *p == '0')
        p++;
    else if (p < end && (unsigned)(*p - '1') < 9)
        p = int_digits(p, end, mag);
    else
        return 0;
    if (!p || (p < end && (*p == '.' || (*p | 0x20) == 'e'))) return 0;
    s->p = p;
    int_result(*mag, neg, has, out);
    if (s->holes)
        note(s, from, HOLE_INT,
             (struct chunk_hole){.has = (uint16_t)((char *)has - (char *)s->cf),
                                 .value = (uint16_t)((char *)out - (char *)s->cf),
                                 .magnitude = *mag});
    return 1;
}

/* A value read as json_int64 reads it (int_token), or skipped when it is no number. */
static int int_value(struct scan *s, int *has, int64_t *out, int depth)
{
    *has = 0;
    ws(s);
    if (s->p >= s->end) return 0;
    if (*s->p != '-' && (*s->p < '0' || *s->p > '9')) return skip_value(s, depth);
    uint64_t mag;
    return int_token(s, has, out, &mag);
}

/* A text field's string after its opening quote (inlined: for an emulator event's one short
 * text read by its shape, the call itself cost about 40 instructions). */
HOT int text_token(struct scan *s, enum chunk_field field, uint32_t call)
{
    const unsigned char *from = s->p;
    const char *ptr;
    size_t off = 0, len;
    if (!string(s, s->want, &ptr, &off, &len)) return 0;
    s->cf->visible_bytes += len;
    if (field != FIELD_REASONING_CONTENT && field != FIELD_REASONING) s->cf->answer_bytes += len;
    if (s->want) chunk_reader_add_text(s->rd, field, call, ptr, off, len);
    if (s->holes)
        note(s, from, HOLE_TEXT, (struct chunk_hole){.field = (uint8_t)field, .call = call});
    return 1;
}

/* A value read as a text field: a string counts, anything else is skipped. */
static int text_value(struct scan *s, enum chunk_field field, uint32_t call, int depth)
{
    ws(s);
    if (s->p >= s->end || *s->p != '"') return skip_value(s, depth);
    s->p++;
    return text_token(s, field, call);
}

/* Keys the scanner reads, each at most once per object (cJSON keeps the first). */
static int once(unsigned *seen, unsigned bit)
{
    if (*seen & bit) return 0;
    *seen |= bit;
    return 1;
}

#define IS(lit) (klen == sizeof lit - 1 && !memcmp(k, lit, sizeof lit - 1))

struct details_ctx {
    unsigned seen;
    const char *name;
    int *has;
    int64_t *v;
};

static int details_member(struct scan *s, const unsigned char *k, size_t klen, void *ctx, int depth)
{
    struct details_ctx *c = ctx;
    if (klen == strlen(c->name) && !memcmp(k, c->name, klen))
        return once(&c->seen, 1) && int_value(s, c->has, c->v, depth + 1);
    return skip_value(s, depth + 1);
}

/* usage.prompt_tokens_details.cached_tokens and the like: an object, else nothing. */
static int details(struct scan *s, const char *name, int *has, int64_t *v, int depth)
{
    struct details_ctx c = {.name = name, .has = has, .v = v};
    if (!take(s, '{')) return skip_value(s, depth);
    return object(s, details_member, &c, depth + 1);
}

static int usage_member(struct scan *s, const unsigned char *k, size_t klen, void *ctx, int depth)
{
    unsigned *seen = ctx;
    struct chunk_facts *cf = s->cf;
    if (IS("completion_tokens"))
        return once(seen, 1) && int_value(s, &cf->has_usage, &cf->completion_tokens, depth + 1);
    if (IS("prompt_tokens"))
        return once(seen, 2) && int_value(s, &cf->has_prompt_tokens, &cf->prompt_tokens, depth + 1);
    if (IS("prompt_tokens_details"))
        return once(seen, 4) &&
               details(s, "cached_tokens", &cf->has_cached_tokens, &cf->cached_tokens, depth + 1);
    if (IS("completion_tokens_details"))
        return once(seen, 8) && details(s, "reasoning_tokens", &cf->has_reasoning_tokens,
                                        &cf->reasoning_tokens, depth + 1);
    return skip_value(s, depth + 1);
}

/* usage's numbers go straight into the facts; chunk_scan_end drops the others when
 * completion_tokens was not among them. */
static int usage(struct scan *s, int depth)
{
    unsigned seen = 0;
    if (!take(s, '{')) return skip_value(s, depth);
    return object(s, usage_member, &seen, depth + 1);
}

struct call_ctx {
    unsigned seen;
    uint32_t call;
};

static int function_member(struct scan *s, const unsigned char *k, size_t klen, void *ctx,
                           int depth)
{
    struct call_ctx *c = ctx;
    if (IS("name")) return once(&c->seen, 2) && text_value(s, FIELD_TOOL_NAME, c->call, depth + 1);
    if (IS("arguments"))
        return once(&c->seen, 4) && text_value(s, FIELD_TOOL_ARGUMENTS, c->call, depth + 1);
    return skip_value(s, depth + 1);
}

static int call_member(struct scan *s, const unsigned char *k, size_t klen, void *ctx, int depth)
{
    struct call_ctx *c = ctx;
    if (!IS("function")) return skip_value(s, depth + 1);
    if (!once(&c->seen, 1)) return 0;
    if (!take(s, '{')) return skip_value(s, depth + 1);
    struct call_ctx fn = {.call = c->call};
    return object(s, function_member, &fn, depth + 2);
}

static int tool_calls(struct scan *s, int depth)
{
    ws(s);
    if (s->p < s->end && *s->p == '{') return 0; /* cJSON would walk an object's members */
    if (!take(s, '[')) return skip_value(s, depth);
    if (take(s, ']')) return 1;
    uint32_t call = 0;
    do {
        struct call_ctx c = {.call = call++};
        if (take(s, '{')) {
            if (!object(s, call_member, &c, depth + 2)) return 0;
        } else if (!skip_value(s, depth + 1)) {
            return 0;
        }
    } while (take(s, ','));
    return take(s, ']');
}

static int delta_member(struct scan *s, const unsigned char *k, size_t klen, void *ctx, int depth)
{
    unsigned *seen = ctx;
    if (IS("content")) return once(seen, 1) && text_value(s, FIELD_CONTENT, 0, depth + 1);
    if (IS("reasoning_content"))
        return once(seen, 2) && text_value(s, FIELD_REASONING_CONTENT, 0, depth + 1);
    if (IS("reasoning")) return once(seen, 4) && text_value(s, FIELD_REASONING, 0, depth + 1);
    if (IS("tool_calls")) return once(seen, 8) && tool_calls(s, depth + 1);
    return skip_value(s, depth + 1);
}

/* finish_reason's string after its opening quote. */
static int finish_token(struct scan *s)
{
    const unsigned char *from = s->p;
    const char *ptr;
    size_t off = 0, len;
    if (!string(s, 1, &ptr, &off, &len)) return 0;
    s->cf->finish_reason = chunk_finish_intern(ptr ? ptr : s->rd->buf + off, len);
    if (s->holes) note(s, from, HOLE_FINISH, (struct chunk_hole){0});
    return 1;
}

static int finish_reason(struct scan *s, int depth)
{
    ws(s);
    if (s->p >= s->end || *s->p != '"') return skip_value(s, depth);
    s->p++;
    return finish_token(s);
}

static int choice_member(struct scan *s, const unsigned char *k, size_t klen, void *ctx, int depth)
{
    unsigned *seen = ctx;
    if (IS("delta")) {
        if (!once(seen, 1)) return 0;
        if (!take(s, '{')) return skip_value(s, depth + 1);
        unsigned delta_seen = 0;
        return object(s, delta_member, &delta_seen, depth + 2);
    }
    if (IS("text")) return once(seen, 2) && text_value(s, FIELD_TEXT, 0, depth + 1);
    if (IS("finish_reason")) return once(seen, 4) && finish_reason(s, depth + 1);
    return skip_value(s, depth + 1);
}

static int choices(struct scan *s, int depth)
{
    ws(s);
    if (s->p < s->end && *s->p == '{') return 0; /* cJSON's item 0 of an object: its first member */
    if (!take(s, '[')) return skip_value(s, depth);
    if (take(s, ']')) return 1;
    if (take(s, '{')) {
        unsigned seen = 0;
        if (!object(s, choice_member, &seen, depth + 2)) return 0;
    } else if (!skip_value(s, depth + 1)) {
        return 0;
    }
    return take(s, ']'); /* several choices fall back */
}

static int top_member(struct scan *s, const unsigned char *k, size_t klen, void *ctx, int depth)
{
    unsigned *seen = ctx;
    struct chunk_facts *cf = s->cf;
    if (IS("choices")) return once(seen, 1) && choices(s, depth + 1);
    if (IS("usage")) return once(seen, 2) && usage(s, depth + 1);
    if (IS("x_emu_sent_ns"))
        return once(seen, 4) && int_value(s, &cf->has_sent_ns, &cf->sent_ns, depth + 1);
    if (IS("x_emu_sched_ns"))
        return once(seen, 8) && int_value(s, &cf->has_sched_ns, &cf->sched_ns, depth + 1);
    if (IS("x_emu_tokens"))
        return once(seen, 16) && int_value(s, &cf->has_emu_tokens, &cf->emu_tokens, depth + 1);
    if (IS("error")) return 0; /* rare: cJSON reads its message */
    return skip_value(s, depth + 1);
}

void chunk_scan_end(struct chunk_reader *rd, struct chunk_facts *cf)
{
    if (!cf->has_usage) /* usage without completion_tokens is no usage at all */
        cf->has_prompt_tokens = cf->has_cached_tokens = cf->has_reasoning_tokens = 0;
    cf->is_object = 1;
    chunk_reader_end(rd, cf);
}

int chunk_scan_shape(const char *data, size_t len, int want_texts, struct chunk_reader *rd,
                     struct chunk_facts *cf, struct chunk_holes *holes)
{
    chunk_reader_begin(rd, cf);
    struct scan s = {.p = (const unsigned char *)data,
                     .end = (const unsigned char *)data + len,
                     .rd = rd,
                     .cf = cf,
                     .want = want_texts,
                     .base = (const unsigned char *)data,
                     .holes = holes};
    unsigned seen = 0;
    if (!take(&s, '{') || !object(&s, top_member, &seen, 1)) return 0;
    ws(&s);
    if (s.p != s.end) return 0;
    chunk_scan_end(rd, cf);
    return 1;
}

int chunk_scan(const char *data, size_t len, int want_texts, struct chunk_reader *rd,
               struct chunk_facts *cf)
{
    return chunk_scan_shape(data, len, want_texts, rd, cf, NULL);
}

/* Where the n bytes at p first differ from those at tok, or n: eight at a time, the last eight
 * overlapping (byte by byte below eight). */
HOT size_t first_difference(const unsigned char *p, const unsigned char *tok, size_t n)
{
    if (n < 8) {
        size_t i = 0;
        while (i < n && p[i] == tok[i]) i++;
        return i;
    }
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x = load8(p + i) ^ load8(tok + i);
        if (x) return i + (size_t)__builtin_ctzll(x) / 8;
    }
    if (i == n) return n;
    uint64_t x = load8(p + n - 8) ^ load8(tok + n - 8);
    return x ? n - 8 + (size_t)__builtin_ctzll(x) / 8 : n;
}

/* x's first k bytes (k < 8) made '0', so that eight_digit_value reads only the others. */
HOT uint64_t zero_first(uint64_t x, size_t k)
{
    uint64_t first = k ? ~(uint64_t)0 >> (64 - 8 * k) : 0;
    return (x & ~first) | (0x3030303030303030u & first);
}

/* Makes the integer token of n bytes at tok (magnitude *mag) the one at p, whose first `same`
 * bytes are tok's, its first digit among them, and *mag its magnitude: tok's less the value of
 * tok's digits from `same`, plus the value of p's. Exact: the sum is taken mod 2^64 and the
 * result, of at most 19 digits, is below 2^64. 0 (tok unchanged) when one of p's bytes from
 * `same` is no digit. Eight digits at a time from the last (a word holding bytes before `same`
 * copies them too: they are the same); byte by byte below eight. Reads only the n bytes. */
HOT int take_suffix(unsigned char *tok, const unsigned char *p, size_t n, size_t same,
                    uint64_t *mag)
{
    uint64_t m = *mag;
    if (n < 8) {
        uint64_t was = 0, is = 0;
        for (size_t i = same; i < n; i++) {
            if ((unsigned)(p[i] - '0') >= 10) return 0;
            was = was * 10 + (uint64_t)(tok[i] - '0');
            is = is * 10 + (uint64_t)(p[i] - '0');
        }
        memcpy(tok + same, p + same, n - same);
        *mag = m - was + is;
        return 1;
    }
    static const uint64_t group_weight[3] = {1, 100000000u, 10000000000000000u};
    uint64_t words[3];
    size_t g = 0;
    for (size_t e = n; e > same; e = e > 8 ? e - 8 : 0, g++) {
        /* the eight bytes ending at e; at the token's start, its first eight moved to end at e */
        size_t base = e >= 8 ? e - 8 : 0, shift = e >= 8 ? 0 : 8 * (8 - e);
        size_t keep_from = e - same >= 8 ? 0 : same + 8 - e; /* in the moved word */
        words[g] = load8(p + base);
        uint64_t x = zero_first(words[g] << shift, keep_from),
                 y = zero_first(load8(tok + base) << shift, keep_from);
        if (!eight_digits(x)) return 0;
        m += (eight_digit_value(x) - eight_digit_value(y)) * group_weight[g];
    }
    /* after every digit was checked: tok stays whole when one is not (overlaps are p's bytes) */
    for (size_t e = n, i = 0; i < g; e -= 8, i++) memcpy(tok + (e >= 8 ? e - 8 : 0), &words[i], 8);
    *mag = m;
    return 1;
}

/* take_suffix's common case, a stamp: a token of 10 to 24 bytes whose bytes but the last eight
 * are tok's (its sign and first digit among them); those eight are its last eight digits, so
 * its magnitude is tok's with its last eight digits' value replaced by theirs. 0 when it is
 * not that case, or one of them is no digit (tok unchanged). */
HOT int take_last_word(unsigned char *tok, const unsigned char *p, size_t n, uint64_t *mag)
{
    if (n < 10 || n > 24 || load8(p) != load8(tok) ||
        (n > 16 && load8(p + n - 16) != load8(tok + n - 16)))
        return 0;
    uint64_t x = load8(p + n - 8);
    if (!eight_digits(x)) return 0;
    *mag = *mag / 100000000u * 100000000u + eight_digit_value(x);
    memcpy(tok + n - 8, &x, 8);
    return 1;
}

/* An integer hole's token at s->p, tok the shape's token for it. When data's has tok's length,
 * sign and first digit, and is followed by the byte that follows tok (the shape's literal,
 * where the scanner ended tok: no digit, '.' nor exponent), its magnitude is tok's changed
 * where their digits differ; else the scanner reads it. Either way, a token of tok's length becomes
 * tok (its magnitude the hole's), and with relearn any token's magnitude becomes the hole's. */
HOT int int_hole(struct scan *s, struct chunk_hole *h, unsigned char *tok, int relearn)
{
    int *has = (int *)(void *)((char *)s->cf + h->has);
    int64_t *out = (int64_t *)(void *)((char *)s->cf + h->value);
    size_t n = h->len;
    uint64_t mag = h->magnitude;
    if ((size_t)(s->end - s->p) > n && s->p[n] == tok[n]) {
        size_t same;
        if (take_last_word(tok, s->p, n, &mag) || (same = first_difference(s->p, tok, n)) == n ||
            (same > (size_t)(tok[0] == '-') && take_suffix(tok, s->p, n, same, &mag))) {
            h->magnitude = mag;
            s->p += n;
            int_result(mag, tok[0] == '-', has, out);
            return 1;
        }
    }
    const unsigned char *from = s->p;
    if (!int_token(s, has, out, &mag)) return 0;
    if ((size_t)(s->p - from) == n) {
        memcpy(tok, from, n);
        h->magnitude = mag;
    } else if (relearn) {
        h->magnitude = mag;
    }
    return 1;
}

/* The token at s->p read as the scanner read hole h's (int_hole for an integer, its token in
 * the shape at shape + h->at). */
HOT int hole(struct scan *s, struct chunk_hole *h, unsigned char *shape, int relearn)
{
    switch ((enum chunk_hole_role)h->role) {
    case HOLE_STRING: return skip_string(s);
    case HOLE_NUMBER: return skip_number(s);
    case HOLE_INT: return int_hole(s, h, shape + h->at, relearn);
    case HOLE_TEXT: return text_token(s, (enum chunk_field)h->field, h->call);
    case HOLE_FINISH: return finish_token(s);
    }
    return 0;
}

/* Whether the n bytes at p (before end) are the n bytes at lit, which has 16 readable bytes
 * past them: sixteen at a time, the last sixteen overlapping, with no call (the literal runs
 * between two values are mostly short). */
HOT int same_bytes(const unsigned char *p, const unsigned char *end, const unsigned char *lit,
                   size_t n)
{
    if ((size_t)(end - p) < n) return 0;
#ifdef __SSE2__
    if (n >= 16 || end - p >= 16) {
        size_t i = 0;
        for (; i + 16 < n; i += 16) {
            __m128i eq = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + i)),
                                        _mm_loadu_si128((const __m128i *)(const void *)(lit + i)));
            if (_mm_movemask_epi8(eq) != 0xFFFF) return 0;
        }
        /* the last (up to) sixteen: from n - 16 when the run is long, else from i with a mask */
        size_t from = n >= 16 ? n - 16 : i;
        unsigned need = n >= 16 ? 0xFFFFu : (1u << n) - 1;
        __m128i eq = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + from)),
                                    _mm_loadu_si128((const __m128i *)(const void *)(lit + from)));
        return ((unsigned)_mm_movemask_epi8(eq) & need) == need;
    }
#endif
    for (size_t i = 0; i < n; i++)
        if (p[i] != lit[i]) return 0;
    return 1;
}

int chunk_scan_holes(const char *data, size_t len, unsigned char *shape, size_t shape_len,
                     struct chunk_hole *holes, const uint8_t *which, size_t n, int want_texts,
                     struct chunk_reader *rd, struct chunk_facts *cf, uint16_t *ends)
{
    chunk_reader_begin(rd, cf);
    struct scan s = {.p = (const unsigned char *)data,
                     .end = (const unsigned char *)data + len,
                     .rd = rd,
                     .cf = cf,
                     .want = want_texts};
    size_t prev = 0; /* where the literal run before the next hole begins, in the shape */
    for (size_t i = 0; i < n; i++) {
        struct chunk_hole *h = &holes[which ? which[i] : i];
        size_t lit = h->at - prev;
        if (!same_bytes(s.p, s.end, shape + prev, lit)) return 0;
        s.p += lit;
        if (!hole(&s, h, shape, ends != NULL)) return 0;
        if (ends) ends[i] = (uint16_t)(s.p - (const unsigned char *)data);
        prev = (size_t)h->at + h->len;
    }
    size_t rest = shape_len - prev;
    if ((size_t)(s.end - s.p) != rest || !same_bytes(s.p, s.end, shape + prev, rest)) return 0;
    chunk_scan_end(rd, cf);
    return 1;
}
