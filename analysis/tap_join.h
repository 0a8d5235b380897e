/* The FPGA tap's records joined to the run's SSE events, offline (nothing on the hot path):
 * RUN_DIR/tap_records.bin (raw 32-byte records, in order) and RUN_DIR/tap_clock.csv
 * ("tap_ns,host_ns" cross-timestamps) are written by `strobe tap`. A flow's records are
 * found by the hash the tap computes (server address and port to strobe's local address and
 * port); its SYN-ACK gives the server's initial sequence number, so each data record covers
 * a byte range of the server's stream; an event takes the tap time of the record holding its
 * last byte (REC_EVENT.b), mapped to CLOCK_REALTIME through the cross-timestamps (offset and
 * drift fitted, ts_convert.h). Events with no covering record (records lost, TLS, IPv6) keep
 * their own stamp and source and are counted. */
#ifndef STROBE_TAP_JOIN_H
#define STROBE_TAP_JOIN_H
#include <stdint.h>
#include <stddef.h>

struct tap_join;

/* NULL when the run has no tap records (not an error); err set on a broken file. */
struct tap_join *tap_join_open(const char *dir, const char *header_json, char *err, size_t errlen);
/* The tap's time of the byte at stream offset `last_byte` of the connection from
 * local_ip:local_port (REC_EVENT.b and .c); 1 with *t_ns (CLOCK_REALTIME), or 0. */
int tap_join_lookup(struct tap_join *j, int64_t last_byte, int64_t local, int64_t *t_ns);
/* The drift and uncertainty are NaN (unknown) when tap_join_clock_note says why. */
void tap_join_stats(const struct tap_join *j, size_t *records, size_t *lost, double *drift_ppm,
                    double *uncertainty_ns);
/* Why the tap's clock could not be checked against CLOCK_REALTIME (its tap_clock.csv missing,
 * unreadable, empty or garbled), one sentence for the results' notes; NULL when it was.
 * The analysis goes on either way, and tap_join_open has said it on stderr. */
const char *tap_join_clock_note(const struct tap_join *j);
void tap_join_close(struct tap_join *j);

#endif
