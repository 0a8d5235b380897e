/* The analysis does not depend on its thread count: a log written with the event log's own
 * writer from the chunk captures (tests/data/chunks: every server shape, the emulator's
 * profiles), many requests over two phases, with failures, a retry and a request left without
 * its end, is analysed over 1, 2, 3 and 4 threads, with and without a tokenizer; results.json
 * must be the same bytes every time, and count every request written.
 * Arguments: the captures folder, then optionally a tokenizer file. */
#include "check.h"
#include "chunk_metrics.h"
#include "clock.h"
#include "eventlog.h"
#include "results.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COPIES 25
#define S      1000000000LL

struct stream {
    char **data;
    size_t *len, n;
};

static void read_stream(const char *path, struct stream *st)
{
    FILE *f = fopen(path, "rb");
    char line[65536];
    while (f && fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\n");
        if (n < 6 || memcmp(line, "data: ", 6)) continue;
        st->data = realloc(st->data, (st->n + 1) * sizeof *st->data);
        st->len = realloc(st->len, (st->n + 1) * sizeof *st->len);
        st->len[st->n] = n - 6;
        st->data[st->n] = malloc(n - 6 + 1);
        memcpy(st->data[st->n], line + 6, n - 6);
        st->n++;
    }
    if (f) fclose(f);
}

/* Writes the log; returns the number of requests. */
static size_t write_log(const char *dir, struct stream *streams, size_t nstreams)
{
    char err[256];
    struct eventlog *l =
        eventlog_create(dir, "{\"kind\":\"slt\",\"config\":{}}", 1, err, sizeof err);
    CHECK(l != NULL, "the log is created in %s: %s", dir, err);
    if (!l) return 0;
    size_t nreq = 0;
    int64_t t0 = 1764400000LL * S;
    for (int copy = 0; copy < COPIES; copy++)
        for (size_t s = 0; s < nstreams; s++, nreq++) {
            uint64_t id = (uint64_t)(copy % 3) << 48 | (nreq + 1);
            int64_t t = t0 + (int64_t)nreq * 3000000, step = 1000000 + (int64_t)(nreq % 7) * 1000;
            int phase = copy % 2;
            struct log_record r = rec_request_sent_encode(&(struct rec_request_sent){
                .req_id = id, .t_sched = t, .t_written = t + 1000, .phase = phase});
            eventlog_put(l, 0, &r, NULL, 0);
            if (nreq % 11 == 5) {
                r = rec_request_retry_encode(&(struct rec_request_retry){
                    .req_id = id, .t_failed = t + 2000, .t_written = t + 3000, .error = ERR_RESET});
                eventlog_put(l, 0, &r, "connection reset", 16);
            }
            int status = nreq % 13 == 4 ? 500 : 200;
            if (status == 200)
                for (size_t e = 0; e < streams[s].n; e++) {
                    t += step;
                    r = rec_event_encode(
                        &(struct rec_event){.req_id = id,
                                            .ts_source = e % 2 ? TS_KERNEL : TS_USERSPACE,
                                            .t_stamp = t,
                                            .t_read = t + 5000 + (int64_t)e,
                                            .index = (int64_t)e,
                                            .stream_offset = -1});
                    eventlog_put(l, 0, &r, streams[s].data[e], streams[s].len[e]);
                }
            if (nreq % 17 == 9) continue; /* no end record: the run stopped first */
            const char *body = status == 500 ? "{\"error\":{\"message\":\"boom\"}}" : NULL;
            r = rec_request_end_encode(&(struct rec_request_end){
                .req_id = id, .t_end = t + step, .t_first_byte = t0 + 1, .status = status});
            eventlog_put(l, 0, &r, body, body ? strlen(body) : 0);
        }
    int64_t end = t0 + (int64_t)nreq * 3000000 + S;
    for (int p = 0; p < 2; p++) {
        struct log_record r = rec_phase_encode(&(struct rec_phase){.index = p,
                                                                   .concurrency = 8,
                                                                   .t_start = t0,
                                                                   .t_window_start = t0 + S / 100,
                                                                   .t_window_end = end - S / 2,
                                                                   .t_end = end});
        eventlog_put(l, 0, &r, NULL, 0);
    }
    struct log_record m = rec_mark_encode(&(struct rec_mark){.kind = MARK_RUN_END, .t = end});
    eventlog_put(l, 0, &m, NULL, 0);
    CHECK(eventlog_close(l) == 0, "the log is written");
    return nreq;
}

static char *results_of(const char *dir, const char *tokenizer, unsigned threads, size_t nreq)
{
    struct run_results res;
    char err[512], path[4096];
    int rc = results_compute_threads(dir, tokenizer, threads, &res, err, sizeof err);
    CHECK(rc == 0, "analysis over %u threads succeeds: %s", threads, rc ? err : "");
    if (rc) return strdup("");
    size_t sent = 0;
    for (size_t p = 0; p < res.nphases; p++) sent += res.phases[p].sent_all;
    CHECK(sent == nreq, "every request is counted over %u threads: expected %zu, got %zu", threads,
          nreq, sent);
    CHECK(res.facts.chunks_scanned > 0 && res.facts.chunks_parsed > 0,
          "both readers served (scanner %llu, cJSON %llu): the error body's event falls back",
          (unsigned long long)res.facts.chunks_scanned,
          (unsigned long long)res.facts.chunks_parsed);
    CHECK(results_write(dir, &res, err, sizeof err) == 0, "results are written: %s", err);
    results_free(&res);
    snprintf(path, sizeof path, "%s/results.json", dir);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *text = calloc(1, (size_t)n + 1);
    CHECK(fread(text, 1, (size_t)n, f) == (size_t)n, "results.json reads back");
    fclose(f);
    return text;
}

/* Each phase's per-chunk pass in uneven slices (one empty, one of one request), added in
 * order: the one pass's figures to the bit (with a tokenizer: chunks of several tokens, the
 * usage and emulator comparisons, the ITL passes). */
static void slices_match(const char *dir, const char *tokenizer)
{
    struct run_results all;
    char err[512];
    CHECK(!results_compute_threads(dir, tokenizer, 1, &all, err, sizeof err), "whole log: %s", err);
    for (size_t k = 0; k < all.facts.nphases; k++) {
        const struct phase_info *ph = &all.facts.phases[k];
        struct chunk_metrics one, sliced;
        chunk_metrics_compute(&all.facts, ph, &one);
        size_t n = all.facts.nreqs, cut[5] = {0, n / 7, n / 7, n / 7 + 1, n};
        struct chunk_pass slice[4];
        for (int j = 0; j < 4; j++) chunk_pass_run(&all.facts, ph, cut[j], cut[j + 1], &slice[j]);
        for (int j = 1; j < 4; j++) chunk_pass_add(&slice[0], &slice[j]);
        chunk_metrics_finish(&all.facts, ph, &slice[0], &sliced);
        CHECK(one.chunks > 0 && !memcmp(&one, &sliced, sizeof one),
              "phase %d's per-chunk figures in four slices are one pass's (tokenizer %s: %zu "
              "chunks, %g of one token, interval p50 %g ms; sliced %zu, %g, %g)",
              ph->index, tokenizer, one.chunks, one.share_k[0], one.chunk_interval_ms.p50,
              sliced.chunks, sliced.share_k[0], sliced.chunk_interval_ms.p50);
    }
    results_free(&all);
}

/* One phase analysed alone (results_compute_iteration: the log index, then that phase's part
 * of the log) gives what the whole log's facts give for it; twice, the second time from the
 * index kept in this process, and also the per-phase SLT figures. */
static void phases_alone(const char *dir)
{
    struct run_results all;
    char err[512];
    /* two threads: the phases' SLT figures are then computed as tasks on both */
    CHECK(!results_compute_threads(dir, "none", 2, &all, err, sizeof err), "whole log: %s", err);
    CHECK(all.facts.nphases >= 2, "the log has %zu phases, 2 written", all.facts.nphases);
    for (int pass = 0; pass < 2; pass++)
        for (size_t k = 0; k < all.facts.nphases; k++) {
            const struct phase_info *ph = &all.facts.phases[k];
            struct iteration_metrics whole, alone;
            agent_iteration_metrics(&all.facts, ph, &whole);
            CHECK(!results_compute_iteration(dir, "none", ph->index, &alone, err, sizeof err),
                  "phase %d alone: %s", ph->index, err);
            CHECK(!memcmp(&whole, &alone, sizeof whole),
                  "phase %d analysed alone (pass %d) gives the whole log's iteration figures "
                  "(%zu requests, %zu alone)",
                  ph->index, pass, whole.requests, alone.requests);
            struct phase_metrics m;
            CHECK(!results_compute_phase(dir, "none", ph->index, &m, err, sizeof err),
                  "phase %d alone: %s", ph->index, err);
            /* the ITL summaries, taken from the chunk interval when every chunk carried one
             * token (always so here, without a tokenizer), are what a pass over the tokens
             * gives under each rule */
            struct summary zero, spread;
            chunk_metrics_itl(&all.facts, ph, 0, &zero);
            chunk_metrics_itl(&all.facts, ph, 1, &spread);
            CHECK(zero.n > 0 && !memcmp(&zero, &all.phases[k].chunks.itl_zero_ms, sizeof zero) &&
                      !memcmp(&spread, &all.phases[k].chunks.itl_spread_ms, sizeof spread),
                  "phase %d's ITL (%zu values, p50 %g ms) is a pass over its tokens' (%zu, %g; "
                  "spread p50 %g)",
                  ph->index, all.phases[k].chunks.itl_zero_ms.n,
                  all.phases[k].chunks.itl_zero_ms.p50, zero.n, zero.p50, spread.p50);
            CHECK(!memcmp(&m, &all.phases[k], sizeof m),
                  "phase %d's SLT figures alone (one thread) are the whole log's (two threads, "
                  "a task for its requests and slices of its chunks): sent %zu and %zu, ITL p50 "
                  "%g and %g ms",
                  ph->index, m.sent_all, all.phases[k].sent_all, m.chunks.itl_zero_ms.p50,
                  all.phases[k].chunks.itl_zero_ms.p50);
        }
    results_free(&all);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_analysis_threads CAPTURES_DIR [TOKENIZER]\n");
        return 2;
    }
    struct stream streams[64] = {0};
    size_t nstreams = 0;
    DIR *d = opendir(argv[1]);
    struct dirent *e;
    while (d && (e = readdir(d)) && nstreams < 63) {
        if (!strstr(e->d_name, ".sse")) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
        read_stream(path, &streams[nstreams++]);
    }
    if (d) closedir(d);
    /* an error event inside a stream, so that cJSON's path serves too */
    streams[nstreams].n = 0;
    read_stream(argv[1], &streams[nstreams]); /* a folder: no lines */
    static char error_event[] = "{\"error\":{\"message\":\"overloaded\"}}";
    streams[nstreams].data = malloc(sizeof *streams[nstreams].data);
    streams[nstreams].len = malloc(sizeof *streams[nstreams].len);
    streams[nstreams].data[0] = strdup(error_event);
    streams[nstreams].len[0] = strlen(error_event);
    streams[nstreams].n = 1;
    nstreams++;
    CHECK(nstreams > 3, "captures found in %s: %zu", argv[1], nstreams);
    char dir[] = "/tmp/strobe-threads-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "a temporary folder");
    size_t nreq = write_log(dir, streams, nstreams);
    phases_alone(dir);
    const char *tokenizers[] = {"none", argc > 2 && access(argv[2], R_OK) == 0 ? argv[2] : NULL};
    for (int k = 0; k < 2 && tokenizers[k]; k++) {
        slices_match(dir, tokenizers[k]);
        char *one = results_of(dir, tokenizers[k], 1, nreq);
        for (unsigned t = 2; t <= 4; t++) {
            char *other = results_of(dir, tokenizers[k], t, nreq);
            CHECK(!strcmp(one, other),
                  "results.json over %u threads is the bytes of 1 thread's (tokenizer %s)", t,
                  tokenizers[k]);
            free(other);
        }
        free(one);
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "the temporary folder is removed");
    for (size_t s = 0; s < nstreams; s++) {
        for (size_t i = 0; i < streams[s].n; i++) free(streams[s].data[i]);
        free(streams[s].data);
        free(streams[s].len);
    }
    return check_done("analysis over 1-4 threads gives the same results.json");
}
