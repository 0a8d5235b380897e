/* Reading an event by the shape of the one before it: consecutive events of a stream are the
 * same bytes but for a few values (the text, the stamps, usage numbers). Each reader keeps a
 * small direct-mapped cache of shapes (chunk_scan.h's holes and the literal bytes between
 * them), one slot per key (the caller's request id, hashed). An event whose literal bytes are
 * the slot's and whose every hole holds a token the scanner reads the same way (a string ending
 * at its own quote, a number token of the same role) has the scanner's parse tree, so its facts
 * are read from its holes alone: exactly chunk_scan's (and so chunk_facts_parse's) facts,
 * texts included. The holes that make no fact (ids, "created", the model) are first compared
 * as bytes, as they rarely change within a stream; when they differ, every hole is read, the
 * shape takes the event's bytes, and the holes that differed are read one by one from then on.
 * Anything else falls back to the scanner, which learns the event's shape. Bounded: 256 slots of at
 * most 768-byte events and 32 holes each, allocated once per reader; no allocation per event. */
#ifndef STROBE_CHUNK_TEMPLATE_H
#define STROBE_CHUNK_TEMPLATE_H
#include "chunk_facts.h"

#include <stdint.h>

/* 1 with cf filled when data matched the shape in key's slot; 0 else (cf is then to be
 * refilled by another reader). */
int chunk_template_read(const char *data, size_t len, uint64_t key, int want_texts,
                        struct chunk_reader *rd, struct chunk_facts *cf);
/* chunk_scan, also keeping data's shape in key's slot when the scanner read it whole. */
int chunk_template_learn(const char *data, size_t len, uint64_t key, int want_texts,
                         struct chunk_reader *rd, struct chunk_facts *cf);

#endif
