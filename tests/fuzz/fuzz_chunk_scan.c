/* The chunk scanner against the full parse: for any event data the scanner either falls back
 * or gives exactly the facts cJSON gives (chunk_facts_equal), texts included; and so does the
 * reader by a learned shape (chunk_template.h): the input's shape is learned and the input read
 * by it, an input of two lines is read by the first line's shape, and the lines of an input read
 * as a stream (each by the shape the lines before left it, learned again where it does not
 * match), as analysis reads a request's events. An input where they differ aborts. */
#include "chunk_facts.h"
#include "chunk_scan.h"
#include "chunk_template.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct chunk_reader scan_rd, parse_rd, shape_rd;

static void agree(const struct chunk_facts *a, const char *data, size_t size, int want,
                  const char *who)
{
    struct chunk_facts b;
    chunk_facts_parse(data, size, want, &parse_rd, &b);
    char why[200];
    if (!chunk_facts_equal(a, &b, why, sizeof why)) {
        fprintf(stderr, "%s and cJSON differ (texts %s): %s\n", who, want ? "on" : "off", why);
        abort();
    }
}

/* learned's shape, then data read by it when it matches */
static void by_shape(const char *learned, size_t learned_len, const char *data, size_t size)
{
    struct chunk_facts a;
    if (!chunk_template_learn(learned, learned_len, 1, 0, &shape_rd, &a)) return;
    for (int want = 0; want < 2; want++) {
        if (!chunk_template_read(data, size, 1, want, &shape_rd, &a)) continue;
        agree(&a, data, size, want, "the learned shape");
        /* the shape took data's values where they differed: data must be its own shape now */
        if (!chunk_template_read(data, size, 1, want, &shape_rd, &a)) {
            fprintf(stderr, "an event read by a shape is not read by it again\n");
            abort();
        }
        agree(&a, data, size, want, "the shape moved onto the event");
    }
}

/* data's lines as one stream's events in one slot (key 2) */
static void stream(const char *d, size_t size)
{
    struct chunk_facts a;
    int learned = 0;
    for (const char *line = d, *end = d + size; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t len = (size_t)((nl ? nl : end) - line);
        /* each line in a buffer of its own size, so that a read past it is caught */
        char *own = malloc(len ? len : 1);
        if (!own) return;
        memcpy(own, line, len);
        int want = (int)(len & 1);
        if (learned && chunk_template_read(own, len, 2, want, &shape_rd, &a))
            agree(&a, own, len, want, "the shape of the stream's events before");
        else
            learned = chunk_template_learn(own, len, 2, want, &shape_rd, &a);
        free(own);
        line += len + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *d = (const char *)data;
    for (int want = 0; want < 2; want++) {
        struct chunk_facts a;
        if (chunk_scan(d, size, want, &scan_rd, &a)) agree(&a, d, size, want, "the scanner");
    }
    by_shape(d, size, d, size);
    const char *nl = memchr(d, '\n', size);
    if (nl) {
        /* the first line in a buffer of its own size, so that a read past it is caught */
        size_t first_len = (size_t)(nl - d);
        char *first = malloc(first_len ? first_len : 1);
        if (!first) return 0;
        memcpy(first, d, first_len);
        by_shape(first, first_len, nl + 1, size - first_len - 1);
        free(first);
        stream(d, size);
    }
    return 0;
}
