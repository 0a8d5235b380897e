/* The scanner for the hot shape of streamed OpenAI events (chunk_facts.h says what it reads):
 * one pass over the bytes, no tree, no allocation once the reader's buffers have grown.
 * Returns 1 with cf filled exactly as chunk_facts_parse would fill it, or 0 ("fall back to
 * cJSON") for anything it does not fully recognise: input strict JSON forbids (cJSON accepts
 * some of it), a top level that is not an object, trailing bytes, an "error" member, the same
 * key twice where it reads keys, escaped keys, several choices, choices or tool_calls given as
 * an object, \u0000, unpaired surrogates, bad \u hex, nesting deeper than 32, numbers longer
 * than 40 characters, and numbers it reads that are not integers of at most 19 digits. */
#ifndef STROBE_CHUNK_SCAN_H
#define STROBE_CHUNK_SCAN_H
#include "chunk_facts.h"

int chunk_scan(const char *data, size_t len, int want_texts, struct chunk_reader *rd,
               struct chunk_facts *cf);

#endif
