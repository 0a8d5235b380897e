/* The analysis of server output: the fuzz input, cut at newlines, becomes the SSE events of
 * one streamed request (OpenAI chunk JSON, usage, errors, anything) in a real event log (a
 * line led by byte 1: the stored bytes of a keyed body, body_key.h, against any earlier one);
 * results_compute must accept or reject it without crashing, and keep sent = ok + failed. */
#include "eventlog.h"
#include "fuzz_util.h"
#include "results.h"

#include <stdint.h>

static void put(FILE *f, const struct log_record *r) { fwrite(r, sizeof *r, 1, f); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/bodies.bin", dir);
    FILE *bodies = fopen(path, "wb");
    snprintf(path, sizeof path, "%s/events.bin", dir);
    FILE *ev = fopen(path, "wb");
    static const char header[] = "{\"kind\":\"slt\",\"config\":{\"url\":\"http://127.0.0.1:1\"}}";
    uint32_t version = LOG_VERSION, hl = sizeof header - 1;
    fwrite(LOG_MAGIC, 8, 1, ev);
    fwrite(&version, 4, 1, ev);
    fwrite(&hl, 4, 1, ev);
    fwrite(header, hl, 1, ev);
    const int64_t S = 1000000000LL;
    put(ev,
        &(struct log_record){
            .type = REC_PHASE, .a = 0, .b = 1, .t = 0, .t2 = 0, .c = 100 * S, .req_id = 100 * S});
    put(ev, &(struct log_record){.type = REC_REQUEST_SENT, .req_id = 1, .t = S, .t2 = S});
    uint64_t off = 0;
    int64_t t = 2 * S;
    int k = 0;
    for (size_t i = 0; i <= size;) {
        const uint8_t *nl = memchr(data + i, '\n', size - i);
        size_t len = nl ? (size_t)(nl - (data + i)) : size - i;
        int keyed = len && data[i] == 1;
        fwrite(data + i + keyed, 1, len - (size_t)keyed, bodies);
        put(ev, &(struct log_record){.type = REC_EVENT,
                                     .ts_source = 2,
                                     .req_id = 1,
                                     .t = t,
                                     .t2 = t,
                                     .off = off,
                                     .len = (uint32_t)(len - (size_t)keyed),
                                     .a = k++,
                                     .b = -1,
                                     .c = keyed ? (int64_t)REC_EVENT_BODY_KEYED : 0});
        off += len - (size_t)keyed;
        t += 1000000;
        i += len + 1;
    }
    put(ev,
        &(struct log_record){.type = REC_REQUEST_END, .req_id = 1, .t = t, .t2 = 2 * S, .a = 200});
    put(ev, &(struct log_record){.type = REC_MARK, .a = MARK_RUN_END, .t = t});
    fclose(ev);
    fclose(bodies);
    struct run_results res;
    char err[512];
    if (results_compute(dir, "none", &res, err, sizeof err) == 0) {
        if (res.nphases &&
            res.phases[0].sent_all != res.phases[0].succeeded_all + res.phases[0].failed_all)
            abort();
        results_free(&res);
    }
    return 0;
}
