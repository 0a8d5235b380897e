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

#include <stdint.h>

int chunk_scan(const char *data, size_t len, int want_texts, struct chunk_reader *rd,
               struct chunk_facts *cf);

/* An event's shape for chunk_template.h: every scalar value the scanner read is a hole (a
 * string from after its opening quote to after its closing one, a number token), and what the
 * scanner did with it; the bytes between the holes are the shape's literal part. */
enum chunk_hole_role {
    HOLE_STRING, /* a string nothing reads */
    HOLE_NUMBER, /* a number nothing reads */
    HOLE_INT,    /* an integer of the facts (usage, the emulator's stamps) */
    HOLE_TEXT,   /* a text field */
    HOLE_FINISH, /* finish_reason */
};
struct chunk_hole {
    uint16_t at, len;    /* the token's place in the event the shape was learned from */
    uint8_t role, field; /* enum chunk_hole_role; HOLE_TEXT: enum chunk_field */
    uint16_t has, value; /* HOLE_INT: offsets in struct chunk_facts of its flag and value */
    uint32_t call;       /* HOLE_TEXT: the tool call */
    uint64_t magnitude;  /* HOLE_INT: the exact value of the token's digits (chunk_scan_holes) */
};
struct chunk_holes {
    struct chunk_hole *h;
    size_t n, cap;
    int overflow; /* more than cap holes, or past 64 KiB: the shape is not whole */
};

/* chunk_scan noting the event's holes in holes (when not NULL). */
int chunk_scan_shape(const char *data, size_t len, int want_texts, struct chunk_reader *rd,
                     struct chunk_facts *cf, struct chunk_holes *holes);
/* Reads data by a shape: shape_len bytes at shape (16 more readable) with holes[which[0..n))
 * (which NULL: holes[0..n)); 1 with cf exactly as chunk_scan fills it when data's bytes outside
 * those holes are the shape's and each hole holds a token the scanner reads the same way,
 * with where each hole ends in data in ends (when not NULL); 0 else. An integer hole's token
 * of the shape's length is read from the digits where it differs from the shape's (the next
 * event's stamps mostly differ in their last digits only) and then becomes the shape's token,
 * its magnitude with it; with ends, every integer hole's magnitude becomes data's, whose bytes
 * the caller must then make the shape's, or drop the shape (chunk_template.c does). */
int chunk_scan_holes(const char *data, size_t len, unsigned char *shape, size_t shape_len,
                     struct chunk_hole *holes, const uint8_t *which, size_t n, int want_texts,
                     struct chunk_reader *rd, struct chunk_facts *cf, uint16_t *ends);
/* Ends an event as chunk_scan ends one. */
void chunk_scan_end(struct chunk_reader *rd, struct chunk_facts *cf);

#endif
