/* A JSON text read as exactly one value: cJSON_Parse stops at the end of the first value and
 * drops whatever follows ('{"a":1}{"b":2}' would silently lose its second object), so
 * configuration and command-line JSON is read through this. Needs cJSON (include it where
 * this is used). */
#ifndef STROBE_JSON_WHOLE_H
#define STROBE_JSON_WHOLE_H
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

/* text's one value, or NULL with *more 1 when a whole value parsed but more text follows it
 * (0 when the text is not valid JSON), and where set to a place for a one-line message:
 * "at byte offset 17 ('{"a":1}')" (up to 24 bytes, to the first control character) or "at
 * its end (byte offset 6)". */
static inline cJSON *json_parse_whole(const char *text, int *more, char *where, size_t wherelen)
{
    const char *end = text;
    cJSON *j = cJSON_ParseWithOpts(text, &end, 1);
    if (j) return j;
    size_t at = end && end >= text ? (size_t)(end - text) : 0, n = 0;
    while (n < 24 && text[at + n] && (unsigned char)text[at + n] >= 0x20) n++;
    if (n)
        snprintf(where, wherelen, "at byte offset %zu ('%.*s')", at, (int)n, text + at);
    else
        snprintf(where, wherelen, "at its end (byte offset %zu)", at);
    cJSON *first = cJSON_Parse(text);
    *more = first != NULL;
    cJSON_Delete(first);
    return NULL;
}

/* The length of the control character at c (C0, DEL, or C1 as UTF-8's C2 80..9F), else 0:
 * text from a file quoted in a message could send escape sequences to the terminal. */
static inline int json_control_at(const char *c)
{
    const unsigned char *u = (const unsigned char *)c;
    return *u && (*u < 0x20 || *u == 0x7f) ? 1 : *u == 0xc2 && u[1] >= 0x80 && u[1] <= 0x9f ? 2 : 0;
}

/* text's control characters made '?'. */
static inline void json_text_printable(char *text)
{
    for (char *c = text; *c; c++)
        for (int n = json_control_at(c); n > 0; n--) c[n - 1] = '?';
}

/* The first key that an object in v (v itself or any value inside it) holds twice: cJSON
 * keeps both of {"a":1,"a":2} and a lookup finds the first, which need not be what the file's
 * author meant. 1 with its path written to path ("prices[2].on_demand"; control characters
 * shown as '?'), else 0. */
static inline int json_key_twice(const cJSON *v, char *path, size_t pathlen)
{
    size_t len = strnlen(path, pathlen);
    int i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++) {
        if (cJSON_IsObject(v))
            for (const cJSON *b = v->child; b != it; b = b->next)
                if (!strcmp(b->string, it->string)) {
                    snprintf(path + len, pathlen - len, "%s%s", len ? "." : "", it->string);
                    json_text_printable(path);
                    return 1;
                }
        if (!it->child) continue;
        if (cJSON_IsObject(v))
            snprintf(path + len, pathlen - len, "%s%s", len ? "." : "", it->string);
        else
            snprintf(path + len, pathlen - len, "[%d]", i);
        if (json_key_twice(it, path, pathlen)) return 1;
        path[len] = 0;
    }
    return 0;
}

#endif
