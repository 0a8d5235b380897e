#include "tap_record.h"

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

int tap_record_decode(const uint8_t raw[32], struct tap_record *r)
{
    if (le(raw + 30, 2) != 0x5354) return -1;
    r->t_tap = (int64_t)le(raw, 8);
    r->flow_hash = (uint32_t)le(raw + 8, 4);
    r->seq = (uint32_t)le(raw + 12, 4);
    r->payload_len = (uint16_t)le(raw + 16, 2);
    r->flags = raw[18];
    r->info = raw[19];
    r->sport = (uint16_t)le(raw + 20, 2);
    r->dport = (uint16_t)le(raw + 22, 2);
    r->frame_len = (uint16_t)le(raw + 24, 2);
    r->rec_seq = (uint32_t)le(raw + 26, 4);
    return 0;
}

uint32_t tap_flow_hash(uint32_t src_ip, uint32_t dst_ip, uint16_t sport, uint16_t dport)
{
    return src_ip ^ dst_ip ^ ((uint32_t)sport << 16 | dport);
}

static void put(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void tap_record_encode(const struct tap_record *r, uint8_t raw[32])
{
    put(raw, (uint64_t)r->t_tap, 8);
    put(raw + 8, r->flow_hash, 4);
    put(raw + 12, r->seq, 4);
    put(raw + 16, r->payload_len, 2);
    raw[18] = r->flags;
    raw[19] = r->info;
    put(raw + 20, r->sport, 2);
    put(raw + 22, r->dport, 2);
    put(raw + 24, r->frame_len, 2);
    put(raw + 26, r->rec_seq, 4);
    put(raw + 30, 0x5354, 2);
}
