#include "chunk_template.h"

#include "chunk_scan.h"

#include <stdlib.h>
#include <string.h>

#define SLOT_BITS   8 /* 256 slots: more than the streams a run keeps open, mostly */
#define SHAPE_BYTES 768
#define SHAPE_HOLES 32

struct chunk_template {
    uint16_t len, nholes; /* len 0: an empty slot */
    uint16_t nread;       /* the holes read one by one (the others compared as bytes): */
    uint8_t read[SHAPE_HOLES];
    uint32_t varied; /* holes making no fact whose bytes have changed in this slot */
    struct chunk_hole holes[SHAPE_HOLES];
    unsigned char bytes[SHAPE_BYTES + 16]; /* + 16: compares load sixteen bytes at a time */
};

static struct chunk_template *slot(struct chunk_reader *rd, uint64_t key)
{
    /* request ids may share their low bits: a multiplicative hash spreads them. Not the
     * multiplier of facts.c's owner(): its top bits pick a request's thread, and would leave
     * each thread 256/nthreads of its slots */
    return &rd->templates[(key * 0xD6E8FEB86659FD93u) >> (64 - SLOT_BITS)];
}

/* The holes to read one by one: those that make facts, and those whose bytes have varied. */
static void choose_read(struct chunk_template *t)
{
    t->nread = 0;
    for (size_t i = 0; i < t->nholes; i++)
        if ((t->holes[i].role != HOLE_STRING && t->holes[i].role != HOLE_NUMBER) ||
            (t->varied >> i & 1))
            t->read[t->nread++] = (uint8_t)i;
}

int chunk_template_read(const char *data, size_t len, uint64_t key, int want_texts,
                        struct chunk_reader *rd, struct chunk_facts *cf)
{
    if (!rd->templates || len > SHAPE_BYTES) return 0;
    struct chunk_template *t = slot(rd, key);
    if (!t->len) return 0;
    /* a stream's ids, model, "created" stay: compared as bytes, they cost no reading */
    if (chunk_scan_holes(data, len, t->bytes, t->len, t->holes, t->read, t->nread, want_texts, rd,
                         cf, NULL))
        return 1;
    uint16_t ends[SHAPE_HOLES];
    if (!chunk_scan_holes(data, len, t->bytes, t->len, t->holes, NULL, t->nholes, want_texts, rd,
                          cf, ends)) {
        t->len = 0; /* its integer holes may hold data's magnitudes, not its tokens' */
        return 0;
    }
    /* the same shape with other values (another stream in the slot, or a number that counts,
     * such as vLLM's usage.total_tokens): its bytes become the literal ones, each hole where
     * data has it, and the holes that differed are read one by one from now on */
    size_t was = 0, is = 0; /* where the last hole ended, in the shape and in data */
    for (size_t i = 0; i < t->nholes; i++) {
        struct chunk_hole *h = &t->holes[i];
        size_t at = is + (h->at - was);
        if (ends[i] - at != h->len || memcmp(data + at, t->bytes + h->at, h->len))
            t->varied |= (uint32_t)1 << i;
        was = (size_t)h->at + h->len;
        h->at = (uint16_t)at;
        h->len = (uint16_t)(ends[i] - at);
        is = ends[i];
    }
    memcpy(t->bytes, data, len);
    t->len = (uint16_t)len;
    choose_read(t);
    return 1;
}

int chunk_template_learn(const char *data, size_t len, uint64_t key, int want_texts,
                         struct chunk_reader *rd, struct chunk_facts *cf)
{
    if (len > SHAPE_BYTES) return chunk_scan(data, len, want_texts, rd, cf);
    if (!rd->templates) {
        rd->templates = calloc((size_t)1 << SLOT_BITS, sizeof *rd->templates);
        if (!rd->templates) return chunk_scan(data, len, want_texts, rd, cf);
    }
    struct chunk_template *t = slot(rd, key);
    t->len = 0; /* the holes are overwritten as the scanner goes */
    struct chunk_holes holes = {.h = t->holes, .cap = SHAPE_HOLES};
    if (!chunk_scan_shape(data, len, want_texts, rd, cf, &holes)) return 0;
    if (!holes.overflow) {
        memcpy(t->bytes, data, len);
        t->len = (uint16_t)len;
        t->nholes = (uint16_t)holes.n;
        t->varied = 0;
        choose_read(t);
    }
    return 1;
}
