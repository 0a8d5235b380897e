#include "tap_join.h"

#include "read_file.h"
#include "tap_record.h"
#include "ts_convert.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

struct flow {
    uint32_t hash;
    uint32_t isn;
    int has_isn;
    struct tap_record *r; /* its data records, in arrival order */
    size_t n, cap;
};

struct tap_join {
    struct flow *flows;
    size_t cap; /* open addressing on hash */
    uint32_t server_ip;
    uint16_t server_port;
    struct ts_converter clock;
    /* why the clock's fit cannot be vouched for (tap_clock.csv missing, unreadable, empty or
     * garbled), "" when it can */
    char clock_note[600];
    size_t records, lost;
};

static struct flow *flow_slot(struct tap_join *j, uint32_t hash, int insert)
{
    size_t i = (hash * 2654435761u) & (j->cap - 1);
    while (j->flows[i].r || j->flows[i].has_isn) {
        if (j->flows[i].hash == hash) return &j->flows[i];
        i = (i + 1) & (j->cap - 1);
    }
    if (!insert) return NULL;
    j->flows[i].hash = hash;
    return &j->flows[i];
}

/* The server's address and port from the header: resolved_address and the URL's port. */
static int server_of(const char *header_json, uint32_t *ip, uint16_t *port)
{
    cJSON *h = cJSON_Parse(header_json);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(h, "config");
    const cJSON *addr = cJSON_GetObjectItemCaseSensitive(cfg, "resolved_address");
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(cfg, "url");
    struct in_addr a;
    int ok = cJSON_IsString(addr) && inet_pton(AF_INET, addr->valuestring, &a) == 1 &&
             cJSON_IsString(url);
    if (ok) {
        *ip = ntohl(a.s_addr);
        const char *u = url->valuestring, *hostport = strstr(u, "://");
        hostport = hostport ? hostport + 3 : u;
        const char *colon = strchr(hostport, ':'), *slash = strchr(hostport, '/');
        *port = colon && (!slash || colon < slash) ? (uint16_t)atoi(colon + 1)
                                                   : (uint16_t)(!strncmp(u, "https", 5) ? 443 : 80);
    }
    cJSON_Delete(h);
    return ok ? 0 : -1;
}

/* One line of tap_clock.csv (len bytes, a NUL among them included): "tap_ns,host_ns" and
 * nothing else but the line's end. */
static int parse_pair(const char *line, size_t len, long long *tap_ns, long long *host_ns)
{
    char *end;
    errno = 0;
    *tap_ns = strtoll(line, &end, 10);
    if (end == line || *end != ',' || errno) return -1;
    const char *second = end + 1;
    *host_ns = strtoll(second, &end, 10);
    if (end == second || errno) return -1;
    while (*end == ' ' || *end == '\r' || *end == '\n') end++;
    return end == line + len ? 0 : -1;
}

/* The tap's clock against the host's, from the cross-timestamps in tap_clock.csv. A file that
 * is missing, unreadable, empty or garbled does not stop the analysis (the tap's records are
 * still good), but it is not taken for a perfect clock either: the pairs that parse (else the
 * tap's time as it is) map the records, and the drift and uncertainty are unknown, with a note
 * saying why (tap_join_clock_note). */
static void read_clock(struct tap_join *j, const char *dir)
{
    char path[4096], why[512] = "", *line = NULL;
    size_t cap = 0;
    ssize_t len;
    snprintf(path, sizeof path, "%s/tap_clock.csv", dir);
    ts_conv_init(&j->clock, 1e9);
    FILE *c = fopen(path, "r");
    size_t lineno = 0;
    long long tap_ns, host_ns;
    while (c && (len = getline(&line, &cap, c)) >= 0) {
        lineno++;
        if (parse_pair(line, (size_t)len, &tap_ns, &host_ns) == 0)
            ts_conv_add(&j->clock, tap_ns, host_ns);
        else if (!why[0])
            snprintf(why, sizeof why, "%.400s line %zu is not tap_ns,host_ns", path, lineno);
    }
    if (!c || ferror(c))
        snprintf(why, sizeof why, "cannot read %.400s: %s", path, strerror(errno));
    else if (!lineno)
        snprintf(why, sizeof why, "%.400s holds no cross-timestamps", path);
    if (c) fclose(c);
    free(line);
    if (!j->clock.n) ts_conv_add(&j->clock, 0, 0); /* no pairs: the tap's time as it is */
    if (!why[0]) return;
    snprintf(j->clock_note, sizeof j->clock_note,
             "%s: the tap's clock is not checked against CLOCK_REALTIME, so its drift and "
             "uncertainty are unknown (null); write the file again with strobe tap",
             why);
    fprintf(stderr, "strobe: warning: %s.\n", j->clock_note);
}

struct tap_join *tap_join_open(const char *dir, const char *header_json, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tap_records.bin", dir);
    size_t len;
    uint8_t *raw = (uint8_t *)read_file(path, &len);
    if (!raw) {
        /* no file: no tap (err stays empty); one that cannot be read is an error */
        if (errno != ENOENT)
            snprintf(err, errlen, "cannot read %s: %s; remove it or write it again with strobe tap",
                     path, strerror(errno));
        return NULL;
    }
    struct tap_join *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errlen, "out of memory reading %s: analyse it on a machine with more memory",
                 path);
        free(raw);
        return NULL;
    }
    if (server_of(header_json, &j->server_ip, &j->server_port)) {
        snprintf(err, errlen, "tap records need an IPv4 server address in the run header");
        free(raw);
        free(j);
        return NULL;
    }
    j->cap = 1024;
    while (j->cap < len / 32 + 2) j->cap <<= 1;
    j->flows = calloc(j->cap, sizeof *j->flows);
    if (!j->flows) {
        snprintf(err, errlen, "out of memory reading %s: analyse it on a machine with more memory",
                 path);
        free(raw);
        free(j);
        return NULL;
    }
    int64_t next_seq = -1;
    for (size_t off = 0; off + 32 <= len; off += 32) {
        struct tap_record r;
        if (tap_record_decode(raw + off, &r)) {
            snprintf(err, errlen, "%s: record %zu has no magic: not a tap record file", path,
                     off / 32);
            free(raw);
            tap_join_close(j);
            return NULL;
        }
        if (next_seq >= 0 && r.rec_seq != (uint32_t)next_seq)
            j->lost += (uint32_t)(r.rec_seq - (uint32_t)next_seq);
        next_seq = (int64_t)r.rec_seq + 1;
        j->records++;
        /* only the server's direction carries the stream strobe timed */
        if (!(r.info & TAP_INFO_TCP) || r.sport != j->server_port) continue;
        struct flow *f = flow_slot(j, r.flow_hash, 1);
        if ((r.flags & (TAP_FLAG_SYN | TAP_FLAG_ACK)) == (TAP_FLAG_SYN | TAP_FLAG_ACK)) {
            f->isn = r.seq;
            f->has_isn = 1;
        } else if (r.payload_len) {
            if (f->n == f->cap) {
                size_t cap = f->cap ? f->cap * 2 : 64;
                struct tap_record *grown = realloc(f->r, cap * sizeof *grown);
                if (!grown) {
                    snprintf(err, errlen,
                             "out of memory reading %s: analyse it on a machine with more memory",
                             path);
                    free(raw);
                    tap_join_close(j);
                    return NULL;
                }
                f->r = grown;
                f->cap = cap;
            }
            f->r[f->n++] = r;
        }
    }
    free(raw);
    read_clock(j, dir);
    return j;
}

int tap_join_lookup(struct tap_join *j, int64_t last_byte, int64_t local, int64_t *t_ns)
{
    if (!j || last_byte < 0 || !local) return 0;
    uint32_t local_ip = (uint32_t)((uint64_t)local >> 16);
    uint16_t local_port = (uint16_t)(local & 0xFFFF);
    struct flow *f =
        flow_slot(j, tap_flow_hash(j->server_ip, local_ip, j->server_port, local_port), 0);
    if (!f || !f->has_isn) return 0;
    /* the first record that holds the byte: a retransmission carries it again, later */
    for (size_t i = 0; i < f->n; i++) {
        uint32_t start = f->r[i].seq - f->isn - 1;
        if ((uint32_t)last_byte - start < f->r[i].payload_len) {
            *t_ns = ts_conv_to_ns(&j->clock, f->r[i].t_tap);
            return 1;
        }
    }
    return 0;
}

void tap_join_stats(const struct tap_join *j, size_t *records, size_t *lost, double *drift_ppm,
                    double *uncertainty_ns)
{
    *records = j->records;
    *lost = j->lost;
    /* NaN: unknown, which results.json writes as null */
    *drift_ppm = j->clock_note[0] ? NAN : ts_conv_drift_ppm(&j->clock);
    *uncertainty_ns = j->clock_note[0] ? NAN : ts_conv_uncertainty_ns(&j->clock);
}

const char *tap_join_clock_note(const struct tap_join *j)
{
    return j->clock_note[0] ? j->clock_note : NULL;
}

void tap_join_close(struct tap_join *j)
{
    if (!j) return;
    for (size_t i = 0; i < j->cap; i++) free(j->flows[i].r);
    free(j->flows);
    free(j);
}
