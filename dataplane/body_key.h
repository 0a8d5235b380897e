/* Keyed event bodies: an SSE event's body stored in the event log as its difference from an
 * earlier, whole body of the same request (its key), and put back together by readers.
 * A server's chunks differ from one another in their content alone (the id, the model, the
 * time and the JSON around the content repeat), so a chunk of ~180 bytes is stored in ~20:
 * the log per event shrinks about threefold, and with it the collector's copy and the disk's
 * share of a fast run.
 *
 * Stored form (bodies.bin at the record's off, its len bytes; the record says it is keyed,
 * log_records.h), little-endian:
 *   u64 key_off | u32 key_len | u16 prefix | u16 suffix | the bytes between
 * Decoded: key[0, prefix) | the bytes between | key[key_len - suffix, key_len), where the key
 * is a whole (not keyed) body at key_off in bodies.bin. Both the key and the decoded body are
 * at most BODY_KEY_MAX bytes. */
#ifndef STROBE_BODY_KEY_H
#define STROBE_BODY_KEY_H
#include <stddef.h>
#include <stdint.h>

#define BODY_KEY_MAX  512
#define BODY_KEY_HEAD 16

/* ---------- producer (a worker, per event: no allocation) ---------- */

/* A session's key: the last whole body it stored for its request in flight. */
struct body_key {
    uint64_t req_id; /* 0: none */
    uint32_t len;
    char bytes[BODY_KEY_MAX];
};

/* What body_key_encode decided. */
enum body_key_role {
    BODY_WHOLE,    /* store the body as it is */
    BODY_SETS_KEY, /* store it as it is; it is the key of the bodies that follow */
    BODY_KEYED,    /* store out's bytes: the body keyed against the key (key_off left 0) */
};

/* Codes body, of request req_id, against k. BODY_KEYED: out (len + BODY_KEY_HEAD bytes at
 * least) holds the stored form, *out_len its length. (A body that holds the API key must be
 * stored whole, and never become a key: the log's writer redacts the bytes it writes, and a
 * keyed body's bytes between may hold part of an occurrence whose rest is in its key.) */
enum body_key_role body_key_encode(struct body_key *k, uint64_t req_id, const char *body,
                                   size_t len, char *out, size_t *out_len);

/* ---------- reader ---------- */

struct body_keyed {
    uint64_t key_off;
    uint32_t key_len;
    uint16_t prefix, suffix;
    const char *between;
    size_t between_len;
};

/* Parses a keyed body's stored bytes: 0, or -1 when they cannot be one (too short, the
 * lengths beyond BODY_KEY_MAX or each other, or the key not within bodies.bin's bodies_len
 * bytes). */
int body_key_parse(const char *stored, size_t len, uint64_t bodies_len, struct body_keyed *k);
/* The decoded body, in out (BODY_KEY_MAX bytes); key: the key's key_len bytes. Returns its
 * length. */
size_t body_key_join(const struct body_keyed *k, const char *key, char *out);

#endif
