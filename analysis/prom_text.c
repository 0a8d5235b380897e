#include "prom_text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRATCH 8192 /* unescaped label values of one line */

int prom_str_is(struct prom_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && memcmp(s.p, c, n) == 0;
}

const struct prom_str *prom_label(const struct prom_sample *s, const char *name)
{
    for (int i = 0; i < s->nlabels; i++)
        if (prom_str_is(s->label_name[i], name)) return &s->label_value[i];
    return NULL;
}

static int is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static int is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* A cursor over one line, [p, end). */
struct cursor {
    const char *p, *end;
};

static void skip_blanks(struct cursor *c)
{
    while (c->p < c->end && is_blank(*c->p)) c->p++;
}

/* A metric name (colons allowed) or, with metric 0, a label name. */
static int take_name(struct cursor *c, int metric, struct prom_str *out)
{
    const char *s = c->p;
    if (c->p >= c->end || !is_name_start(*c->p) || (!metric && *c->p == ':')) return -1;
    while (c->p < c->end && is_name_char(*c->p) && (metric || *c->p != ':')) c->p++;
    *out = (struct prom_str){s, (size_t)(c->p - s)};
    return 0;
}

/* The token up to the next blank or the line's end. */
static struct prom_str take_token(struct cursor *c)
{
    const char *s = c->p;
    while (c->p < c->end && !is_blank(*c->p)) c->p++;
    return (struct prom_str){s, (size_t)(c->p - s)};
}

/* A quoted label value; unescaped into scratch only when it holds a backslash. */
static const char *take_value(struct cursor *c, char *scratch, size_t *used, struct prom_str *out)
{
    if (c->p >= c->end || *c->p != '"') return "a label value must be in double quotes";
    const char *s = ++c->p;
    int escaped = 0;
    while (c->p < c->end && *c->p != '"') {
        if (*c->p == '\\') {
            escaped = 1;
            if (++c->p >= c->end) break;
        }
        c->p++;
    }
    if (c->p >= c->end) return "a label value has no closing quote";
    const char *e = c->p++;
    if (!escaped) {
        *out = (struct prom_str){s, (size_t)(e - s)};
        return NULL;
    }
    if (*used + (size_t)(e - s) > SCRATCH) return "the label values of one line exceed 8 KiB";
    char *d = scratch + *used, *d0 = d;
    for (const char *q = s; q < e; q++) {
        if (*q == '\\' && q + 1 < e) {
            q++;
            *d++ = *q == 'n' ? '\n' : *q; /* \\ and \" stand for themselves */
        } else {
            *d++ = *q;
        }
    }
    *out = (struct prom_str){d0, (size_t)(d - d0)};
    *used += (size_t)(d - d0);
    return NULL;
}

static const char *take_labels(struct cursor *c, struct prom_sample *s, char *scratch)
{
    size_t used = 0;
    c->p++; /* '{' */
    for (;;) {
        skip_blanks(c);
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            return NULL;
        }
        if (s->nlabels == PROM_MAX_LABELS) return "more than 16 labels";
        if (take_name(c, 0, &s->label_name[s->nlabels])) return "a label name is malformed";
        skip_blanks(c);
        if (c->p >= c->end || *c->p != '=') return "a label has no '='";
        c->p++;
        skip_blanks(c);
        const char *why = take_value(c, scratch, &used, &s->label_value[s->nlabels]);
        if (why) return why;
        s->nlabels++;
        skip_blanks(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
        } else if (c->p >= c->end || *c->p != '}') {
            return "labels must be separated by ',' and closed by '}'";
        }
    }
}

/* A token as a C string for strtod/strtoll (the text is not NUL-terminated); 0 when it is
 * empty or longer than any number. */
static int token_cstr(struct prom_str t, char *buf, size_t cap)
{
    if (t.len == 0 || t.len >= cap) return 0;
    memcpy(buf, t.p, t.len);
    buf[t.len] = 0;
    return 1;
}

static int parse_double(struct prom_str t, double *out)
{
    char buf[64], *end;
    if (!token_cstr(t, buf, sizeof buf)) return -1;
    *out = strtod(buf, &end);
    return *end ? -1 : 0;
}

static int parse_int64(struct prom_str t, int64_t *out)
{
    char buf[32], *end;
    if (!token_cstr(t, buf, sizeof buf)) return -1;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (*end || errno) return -1;
    *out = v;
    return 0;
}

struct family {
    struct prom_str name;
    enum prom_type type;
};

static enum prom_type type_named(struct prom_str t)
{
    if (prom_str_is(t, "counter")) return PROM_COUNTER;
    if (prom_str_is(t, "gauge")) return PROM_GAUGE;
    if (prom_str_is(t, "histogram") || prom_str_is(t, "gaugehistogram")) return PROM_HISTOGRAM;
    if (prom_str_is(t, "summary")) return PROM_SUMMARY;
    return PROM_UNTYPED;
}

/* `# TYPE name type`: the family that the next samples belong to. Other comments: nothing. */
static void take_comment(struct cursor *c, struct family *fam)
{
    c->p++; /* '#' */
    skip_blanks(c);
    struct prom_str word = take_token(c);
    if (!prom_str_is(word, "TYPE")) return;
    skip_blanks(c);
    struct prom_str name;
    if (take_name(c, 1, &name)) return;
    skip_blanks(c);
    fam->name = name;
    fam->type = type_named(take_token(c));
}

static int has_suffix_of(struct prom_str name, struct prom_str family)
{
    static const char *const suffixes[] = {"", "_bucket", "_sum", "_count", "_total", "_created"};
    if (name.len < family.len || memcmp(name.p, family.p, family.len)) return 0;
    struct prom_str rest = {name.p + family.len, name.len - family.len};
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++)
        if (prom_str_is(rest, suffixes[i])) return 1;
    return 0;
}

static const char *take_sample(struct cursor *c, const struct family *fam, char *scratch,
                               struct prom_sample *s)
{
    memset(s, 0, sizeof *s);
    if (take_name(c, 1, &s->name)) return "a sample line must start with a metric name";
    if (c->p < c->end && *c->p == '{') {
        const char *why = take_labels(c, s, scratch);
        if (why) return why;
    }
    if (c->p >= c->end || !is_blank(*c->p)) return "a sample needs a blank before its value";
    skip_blanks(c);
    if (parse_double(take_token(c), &s->value)) return "the value is not a number";
    skip_blanks(c);
    if (c->p < c->end && *c->p != '#') { /* an OpenMetrics exemplar follows " # " */
        if (parse_int64(take_token(c), &s->timestamp_ms)) return "the timestamp is not an integer";
        s->has_timestamp = 1;
        skip_blanks(c);
        if (c->p < c->end && *c->p != '#') return "text after the timestamp";
    }
    if (fam->name.len && has_suffix_of(s->name, fam->name)) {
        s->family = fam->name;
        s->type = fam->type;
    } else {
        s->family = s->name;
        s->type = PROM_UNTYPED;
    }
    return NULL;
}

struct prom_stats prom_parse(const char *text, size_t len, prom_sample_fn fn, void *arg)
{
    struct prom_stats st = {0};
    struct family fam = {{NULL, 0}, PROM_UNTYPED};
    char scratch[SCRATCH];
    struct prom_sample s;
    const char *p = text, *end = text + len;
    for (size_t line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        struct cursor c = {p, le > p && le[-1] == '\r' ? le - 1 : le};
        p = nl ? nl + 1 : end;
        skip_blanks(&c);
        if (c.p == c.end) continue;
        if (*c.p == '#') {
            take_comment(&c, &fam);
            continue;
        }
        const char *why = take_sample(&c, &fam, scratch, &s);
        if (why) {
            if (!st.malformed++) {
                st.first_bad_line = line;
                snprintf(st.first_error, sizeof st.first_error, "%s", why);
            }
            continue;
        }
        st.samples++;
        if (fn) fn(&s, arg);
    }
    return st;
}
