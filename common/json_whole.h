/* A JSON text read as exactly one value: cJSON_Parse stops at the end of the first value and
 * drops whatever follows ('{"a":1}{"b":2}' would silently lose its second object), so
 * configuration and command-line JSON is read through this. Needs cJSON (include it where
 * this is used). */
#ifndef STROBE_JSON_WHOLE_H
#define STROBE_JSON_WHOLE_H
#include <cjson/cJSON.h>
#include <stdio.h>

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

#endif
