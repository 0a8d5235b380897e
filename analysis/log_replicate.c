/* strobe-log-replicate SRC_RUN DST_RUN EVENTS [--share-bodies] [--phases K]: a large event log for
 * benchmarking the analysis (scripts/bench_analysis.sh), made of a real run's records: the
 * source's requests are written again and again, each copy with fresh request ids and its
 * times shifted past the previous copy's, until at least EVENTS events are written (whole
 * copies), as one phase whose window covers them all. The event bodies are the source's bytes,
 * copied (default) or, with --share-bodies, pointed at once (a small bodies.bin: for logs
 * larger than the disk allows). Copied bodies have the emulator's stamps (x_emu_sent_ns,
 * x_emu_sched_ns) shifted with the copy, so that each copy's lag (strobe's stamp - the
 * emulator's send) and pacing are the source's, as in one long real run; shared bodies cannot
 * be, so there the lag grows by the copy's shift from copy to copy (said on stdout). With --phases
 * K the copies are spread over K phases in turn (copy c in phase c * K / copies), each with its own
 * window: an agents search's iterations. Not installed: a tool for the benchmark. */
#include "eventlog.h"
#include "must_alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int die(const char *what, const char *path)
{
    fprintf(stderr, "strobe-log-replicate: %s %s: %s.\n", what, path, strerror(errno));
    return 1;
}

static int is_request_record(uint8_t type)
{
    return type == REC_REQUEST_SENT || type == REC_EVENT || type == REC_REQUEST_END ||
           type == REC_REQUEST_RETRY;
}

/* A stamp shifted by the copy's offset; 0 stays 0 (it means "never"). */
static int64_t shift(int64_t t, int64_t by) { return t ? t + by : 0; }

/* The room shift_emu_stamps needs for a body of len bytes. */
static size_t shifted_room(size_t len)
{
    /* each stamp comes after a key of at least 16 bytes and gains at most 18 digits */
    return len + 19 * (len / 16 + 1) + 1;
}

/* The body b (len bytes) into out (room for shifted_room(len) bytes) with the integer right
 * after each of the emulator's stamp keys shifted by `by` (>= 0) nanoseconds; its new length.
 * Only what the emulator writes is shifted: digits right after the key, at most 19 of them,
 * within int64 once shifted; anything else (a space, a sign, a longer number) is kept. */
static size_t shift_emu_stamps(const char *b, size_t len, int64_t by, char *out)
{
    static const char *const keys[] = {"\"x_emu_sent_ns\":", "\"x_emu_sched_ns\":"};
    size_t o = 0, at = 0;
    for (;;) {
        const char *next = NULL;
        size_t klen = 0;
        for (size_t k = 0; k < 2; k++) {
            const char *f = memmem(b + at, len - at, keys[k], strlen(keys[k]));
            if (f && (!next || f < next)) next = f, klen = strlen(keys[k]);
        }
        if (!next) break;
        size_t v = (size_t)(next - b) + klen, e = v;
        while (e < len && e - v < 19 && b[e] >= '0' && b[e] <= '9') e++;
        memcpy(out + o, b + at, v - at);
        o += v - at;
        char digits[24];
        memcpy(digits, b + v, e - v);
        digits[e - v] = 0;
        errno = 0;
        long long t = strtoll(digits, NULL, 10);
        if (e > v && (e == len || b[e] < '0' || b[e] > '9') && !errno && t <= INT64_MAX - by &&
            (b[v] != '0' || e == v + 1)) {
            o += (size_t)snprintf(out + o, shifted_room(len) - o, "%lld", t + by);
        } else {
            memcpy(out + o, b + v, e - v); /* not a stamp this tool can shift: kept */
            o += e - v;
        }
        at = e;
    }
    memcpy(out + o, b + at, len - at);
    return o + len - at;
}

int main(int argc, char **argv)
{
    int share = 0;
    long phases = 1;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--share-bodies"))
            share = 1;
        else if (!strcmp(argv[i], "--phases") && i + 1 < argc && atol(argv[i + 1]) > 0)
            phases = atol(argv[++i]);
        else
            argc = 0;
    }
    if (argc < 4) {
        fprintf(stderr, "usage: strobe-log-replicate SRC_RUN DST_RUN EVENTS [--share-bodies] "
                        "[--phases K]\n");
        return 2;
    }
    const char *src = argv[1], *dst = argv[2];
    char *end;
    unsigned long long want = strtoull(argv[3], &end, 10);
    if (*end || !want) {
        fprintf(stderr, "strobe-log-replicate: EVENTS %s is not a positive count; give one.\n",
                argv[3]);
        return 2;
    }
    char err[512], path[4200];
    struct eventlog_reader *lr = eventlog_open(src, err, sizeof err);
    if (!lr) {
        fprintf(stderr, "strobe-log-replicate: %s.\n", err);
        return 1;
    }
    /* dense request numbers, by their start, so that copies' ids never meet */
    size_t nreq = 0, events_per_copy = 0;
    int64_t t_min = INT64_MAX, t_max = INT64_MIN;
    int concurrency = 1;
    for (size_t i = 0; i < lr->nrecords; i++) {
        const struct log_record *r = &lr->records[i];
        nreq += r->type == REC_REQUEST_SENT;
        events_per_copy += r->type == REC_EVENT;
        if (r->type == REC_PHASE) concurrency = rec_phase_decode(r).concurrency;
        if (is_request_record(r->type) && r->t) {
            if (r->t < t_min) t_min = r->t;
            if (r->t > t_max) t_max = r->t;
        }
    }
    if (!events_per_copy || !nreq) {
        fprintf(stderr, "strobe-log-replicate: %s has no events to replicate; record a run.\n",
                src);
        return 1;
    }
    uint64_t *ids = must_calloc(nreq, sizeof *ids, "the source's request ids");
    size_t k = 0;
    for (size_t i = 0; i < lr->nrecords; i++)
        if (lr->records[i].type == REC_REQUEST_SENT) ids[k++] = lr->records[i].req_id;
    /* a table from id to dense number (ids are unique in a log) */
    size_t cap = 1024;
    while (cap < nreq * 2) cap <<= 1;
    uint64_t *keys = must_calloc(cap, sizeof *keys, "the request id table");
    uint32_t *vals = must_calloc(cap, sizeof *vals, "the request id table");
    for (size_t i = 0; i < nreq; i++) {
        size_t h = (size_t)((ids[i] * 0x9e3779b97f4a7c15ULL) >> 20) & (cap - 1);
        while (keys[h] && keys[h] != ids[i]) h = (h + 1) & (cap - 1);
        keys[h] = ids[i];
        vals[h] = (uint32_t)i;
    }
    int64_t span = t_max - t_min + 1000000; /* each copy starts 1 ms after the last ended */
    size_t copies = (size_t)((want + events_per_copy - 1) / events_per_copy);
    if (copies < (size_t)phases) copies = (size_t)phases;

    mkdir(dst, 0755);
    snprintf(path, sizeof path, "%s/events.bin", src);
    FILE *in = fopen(path, "rb");
    if (!in) return die("cannot read", path);
    size_t head = (size_t)((const char *)lr->records - (const char *)lr->map_events);
    char *hdr = must_malloc(head, "the log's header");
    if (fread(hdr, 1, head, in) != head) return die("cannot read the header of", path);
    fclose(in);
    snprintf(path, sizeof path, "%s/events.bin", dst);
    FILE *ev = fopen(path, "wb");
    if (!ev) return die("cannot write", path);
    snprintf(path, sizeof path, "%s/bodies.bin", dst);
    FILE *bodies = fopen(path, "wb");
    if (!bodies) return die("cannot write", path);
    setvbuf(ev, NULL, _IOFBF, 1 << 22);
    setvbuf(bodies, NULL, _IOFBF, 1 << 22);
    fwrite(hdr, 1, head, ev);
    if (share) fwrite(lr->bodies, 1, lr->bodies_len, bodies);
    uint64_t off = 0, written = 0;
    size_t room = 4096;
    char *shifted = must_malloc(room, "a shifted body");
    for (size_t c = 0; c < copies; c++) {
        int64_t by = (int64_t)c * span;
        size_t phase = c * (size_t)phases / copies;
        if (c == 0 || phase != (c - 1) * (size_t)phases / copies) {
            /* the phase's copies: from this one to the last with the same phase */
            size_t last_copy = c;
            while (last_copy + 1 < copies && (last_copy + 1) * (size_t)phases / copies == phase)
                last_copy++;
            int64_t from = t_min + by, to = t_max + (int64_t)last_copy * span + 1;
            struct log_record ph = rec_phase_encode(&(struct rec_phase){.index = (int)phase,
                                                                        .concurrency = concurrency,
                                                                        .t_start = from,
                                                                        .t_window_start = from,
                                                                        .t_window_end = to,
                                                                        .t_end = to,
                                                                        .flags = PHASE_GATES_MET});
            fwrite(&ph, sizeof ph, 1, ev);
        }
        for (size_t i = 0; i < lr->nrecords; i++) {
            struct log_record r = lr->records[i];
            if (!is_request_record(r.type)) continue;
            size_t h = (size_t)((r.req_id * 0x9e3779b97f4a7c15ULL) >> 20) & (cap - 1);
            while (keys[h] && keys[h] != r.req_id) h = (h + 1) & (cap - 1);
            if (!keys[h]) continue; /* a record of a request whose start is not in the log */
            r.req_id = (uint64_t)c * (nreq + 1) + vals[h] + 1;
            r.t = shift(r.t, by);
            r.t2 = shift(r.t2, by); /* t_written, t_read, t_first_byte: stamps all */
            if (r.type == REC_REQUEST_SENT) r.a = (int64_t)(c * (size_t)phases / copies);
            if (r.type == REC_EVENT) written++;
            if (r.len && r.type != REC_REQUEST_SENT) {
                char keyed[BODY_KEY_MAX];
                size_t len;
                const char *b = eventlog_body(lr, &lr->records[i], keyed, &len);
                if (!b) continue; /* torn in the source */
                if (!share) {
                    /* written whole: a keyed body's key lies elsewhere in the copy */
                    r.c = (int64_t)((uint64_t)r.c & ~REC_EVENT_BODY_KEYED);
                    r.len = (uint32_t)len;
                    if (r.type == REC_EVENT) {
                        if (room < shifted_room(r.len)) {
                            room = shifted_room(r.len);
                            shifted = must_realloc(shifted, room, "a shifted body");
                        }
                        r.len = (uint32_t)shift_emu_stamps(b, r.len, by, shifted);
                        b = shifted;
                    }
                    fwrite(b, 1, r.len, bodies);
                    r.off = off;
                    off += r.len;
                }
            }
            fwrite(&r, sizeof r, 1, ev);
        }
    }
    int64_t last = t_max + (int64_t)(copies - 1) * span;
    struct log_record mark = rec_mark_encode(&(struct rec_mark){.kind = MARK_RUN_END, .t = last});
    fwrite(&mark, sizeof mark, 1, ev);
    if (fclose(ev) || fclose(bodies)) return die("cannot finish writing", dst);
    printf("%s: %llu events, %zu requests (%zu copies of %s)%s\n", dst, (unsigned long long)written,
           nreq * copies, copies, src,
           share ? "; bodies shared, so the emulator's stamps are not shifted with the copies: "
                   "the lag grows copy by copy"
                 : "");
    free(shifted);
    free(hdr);
    free(ids);
    free(keys);
    free(vals);
    eventlog_reader_close(lr);
    return 0;
}
