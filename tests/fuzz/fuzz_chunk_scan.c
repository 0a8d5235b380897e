/* The chunk scanner against the full parse: for any event data the scanner either falls back
 * or gives exactly the facts cJSON gives, texts included (chunk_facts_equal); an input where
 * they differ aborts. */
#include "chunk_facts.h"
#include "chunk_scan.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct chunk_reader scan_rd, parse_rd;
    for (int want = 0; want < 2; want++) {
        struct chunk_facts a, b;
        if (!chunk_scan((const char *)data, size, want, &scan_rd, &a)) continue;
        chunk_facts_parse((const char *)data, size, want, &parse_rd, &b);
        char why[200];
        if (!chunk_facts_equal(&a, &b, why, sizeof why)) {
            fprintf(stderr, "scanner and cJSON differ (texts %s): %s\n", want ? "on" : "off", why);
            abort();
        }
    }
    return 0;
}
