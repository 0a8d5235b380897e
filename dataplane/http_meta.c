#include "http_meta.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

void http_meta_reset(struct http_meta *m) { memset(m, 0, sizeof *m); }

static void append(char *dst, size_t cap, size_t *len, const char *at, size_t n)
{
    size_t room = cap - 1 - *len;
    if (n > room) n = room;
    memcpy(dst + *len, at, n);
    *len += n;
    dst[*len] = 0;
}

void http_meta_field(struct http_meta *m, const char *at, size_t n)
{
    if (m->in_value) { /* a new header begins */
        m->field_len = 0;
        m->in_value = 0;
    }
    /* a name longer than the buffer is not one of ours: keep it too long to match */
    if (m->field_len + n >= sizeof m->field)
        m->field_len = sizeof m->field;
    else {
        memcpy(m->field + m->field_len, at, n);
        m->field_len += n;
    }
}

void http_meta_value(struct http_meta *m, const char *at, size_t n)
{
    if (!m->in_value) {
        m->in_value = 1;
        m->which = 0;
        if (m->field_len == 12 && !strncasecmp(m->field, "content-type", 12)) {
            m->which = 1;
            m->type_len = 0;
        } else if (m->field_len == 16 && !strncasecmp(m->field, "content-encoding", 16)) {
            m->which = 2;
            m->encoding_len = 0;
        }
    }
    if (m->which == 1)
        append(m->type, sizeof m->type, &m->type_len, at, n);
    else if (m->which == 2)
        append(m->encoding, sizeof m->encoding, &m->encoding_len, at, n);
}

/* Leading and trailing blanks and tabs off, as HTTP allows around a value. */
static void trimmed(const char *s, size_t len, const char **out, size_t *out_len)
{
    while (len && (*s == ' ' || *s == '\t')) s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    *out = s;
    *out_len = len;
}

int http_meta_not_sse(const struct http_meta *m, char *why, size_t n)
{
    const char *v;
    size_t l;
    trimmed(m->encoding, m->encoding_len, &v, &l);
    if (l && !(l == 8 && !strncasecmp(v, "identity", 8))) {
        snprintf(why, n,
                 "the body is %.*s-compressed (Content-Encoding: %.*s); strobe asks for "
                 "identity: turn compression off on the server or proxy",
                 (int)l, v, (int)l, v);
        return 1;
    }
    trimmed(m->type, m->type_len, &v, &l);
    /* a parameter may follow: text/event-stream; charset=utf-8 */
    if (l && !(l >= 17 && !strncasecmp(v, "text/event-stream", 17) &&
               (l == 17 || v[17] == ';' || v[17] == ' ' || v[17] == '\t'))) {
        snprintf(why, n,
                 "the server sent Content-Type %.*s, not text/event-stream: it did not "
                 "stream the answer",
                 (int)l, v);
        return 1;
    }
    return 0;
}
