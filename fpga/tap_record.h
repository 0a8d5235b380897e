/* The tap's 256-bit record (hw/README.md, "Record format"), decoded, and the flow hash the
 * host computes to find its own connections' records. */
#ifndef STROBE_TAP_RECORD_H
#define STROBE_TAP_RECORD_H
#include <stdint.h>

#define TAP_INFO_TCP   1u
#define TAP_INFO_IPV6  2u
#define TAP_INFO_VLAN  4u
#define TAP_INFO_ERROR 8u
#define TAP_FLAG_SYN   0x02u
#define TAP_FLAG_ACK   0x10u

struct tap_record {
    int64_t t_tap; /* ns on the tap's clock: when the frame's first beat passed */
    uint32_t flow_hash, seq, rec_seq;
    uint16_t payload_len, sport, dport, frame_len;
    uint8_t flags, info;
};

/* 0, or -1 when the magic is wrong (not a record). */
int tap_record_decode(const uint8_t raw[32], struct tap_record *r);
/* The inverse of decode: the 32 bytes the tap would have written. */
void tap_record_encode(const struct tap_record *r, uint8_t raw[32]);
/* IPv4 addresses and ports in host order, as the tap computes it for a frame from src to dst. */
uint32_t tap_flow_hash(uint32_t src_ip, uint32_t dst_ip, uint16_t sport, uint16_t dport);

#endif
