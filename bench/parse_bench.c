/* A worker's user-space work per SSE event, without the network (a benchmark, never a test):
 * streamed responses like bench/sse_source's (one HTTP chunk per event, 300 events: about 60 KiB,
 * so that they stay in cache as a read does) are fed in reads of READ bytes through what the
 * worker runs per read and per event: the HTTP response parser, the SSE framer, the API-key
 * check, the body keying and the copy of a log record and its stored body. Prints nanoseconds
 * of thread CPU per event: the least of ROUNDS rounds of EVENTS events, as the least is the
 * one the machine disturbed least.
 * Usage: parse_bench [EVENTS [READ [ROUNDS [same|varied [SCAN]]]]]
 * (defaults 3000000, 65536, 7, varied: each event's content differs, as a model's tokens do;
 * same: sse_source's identical events; SCAN: the byte scans' path, byte_scan.h, default the
 * widest this CPU has). */
#include "body_key.h"
#include "byte_scan.h"
#include "http_response.h"
#include "redact.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sink {
    struct body_key key;
    uint64_t req_id;
    _Alignas(64) char log[1 << 16]; /* where records and bodies go, as into the log's ring */
    size_t at;
    uint64_t events, keyed;
};

static int on_event(void *arg, const char *data, size_t len, int truncated, int is_error)
{
    (void)truncated;
    (void)is_error;
    struct sink *s = arg;
    /* in place, as the worker writes into the ring: the record, then the stored body */
    if (s->at + 64 + BODY_KEY_HEAD + len > sizeof s->log) s->at = 0;
    char *stored = s->log + s->at + 64;
    size_t stored_len = len;
    enum body_key_role role = redact_holds(data, len) ? BODY_WHOLE
                                                      : body_key_encode(&s->key, s->req_id, data,
                                                                        len, stored, &stored_len);
    if (role != BODY_KEYED) memcpy(stored, data, len);
    memset(s->log + s->at, (int)s->events, 64); /* the record */
    s->at += (64 + stored_len + 7) & ~(size_t)7;
    s->events++;
    s->keyed += role == BODY_KEYED;
    return 0;
}

static double thread_cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* "LEN\r\ndata: JSON\n\n\r\n", as sse_source frames an event */
static size_t frame(char *out, size_t cap, const char *json)
{
    size_t n = strlen(json) + 8;
    return (size_t)snprintf(out, cap, "%zx\r\ndata: %s\n\n\r\n", n, json);
}

int main(int argc, char **argv)
{
    size_t events = argc > 1 ? strtoull(argv[1], NULL, 10) : 3000000;
    size_t read_len = argc > 2 ? strtoull(argv[2], NULL, 10) : 65536;
    int rounds = argc > 3 ? atoi(argv[3]) : 7;
    int varied = argc > 4 ? strcmp(argv[4], "same") != 0 : 1;
    if (argc > 5 && scan_use(argv[5])) {
        fprintf(stderr,
                "parse_bench: no %s path for the byte scans here; give avx2, sse2 or "
                "scalar\n",
                argv[5]);
        return 2;
    }
    if (!events || !read_len || rounds < 1) {
        fprintf(stderr, "usage: parse_bench [EVENTS [READ_BYTES [ROUNDS [same|varied]]]]: "
                        "each a positive number\n");
        return 2;
    }
    const char *head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                       "transfer-encoding: chunked\r\n\r\n";
    size_t per_response = events < 300 ? events : 300, responses = events / per_response;
    events = per_response * responses;
    size_t cap = strlen(head) + per_response * 256 + 64, len = 0;
    char *stream = malloc(cap);
    if (!stream) {
        fprintf(stderr, "parse_bench: no memory for %zu events; ask for fewer\n", events);
        return 1;
    }
    len += (size_t)snprintf(stream, cap, "%s", head);
    for (size_t i = 0; i < per_response; i++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":"
                 "1700000000,\"model\":\"strobe-emu\",\"choices\":[{\"index\":0,\"delta\":{"
                 "\"content\":\" %s%zu\"},\"logprobs\":null,\"finish_reason\":null}]}",
                 varied ? "tok" : "token", varied ? i : 0);
        len += frame(stream + len, cap - len, json);
    }
    len += (size_t)snprintf(stream + len, cap - len, "0\r\n\r\n");
    struct sink *sink = calloc(1, sizeof *sink);
    char errbody[512];
    struct http_response rsp;
    http_response_init(&rsp, 0, errbody, sizeof errbody, on_event, sink, 0);
    double best = 0;
    for (int r = 0; r < rounds; r++) {
        sink->events = sink->keyed = 0;
        double t0 = thread_cpu_ns();
        for (size_t k = 0; k < responses; k++) {
            http_response_reset(&rsp);
            sink->req_id = (uint64_t)r * responses + k + 1;
            enum http_response_state st = HTTP_RESPONSE_MORE;
            for (size_t at = 0; at < len && st == HTTP_RESPONSE_MORE; at += read_len)
                st = http_response_feed(&rsp, stream + at,
                                        len - at < read_len ? len - at : read_len, (int64_t)at);
        }
        double ns = (thread_cpu_ns() - t0) / (double)sink->events;
        if (sink->events != events) {
            fprintf(stderr, "parse_bench: %llu events parsed of %zu: the parser stopped (%s)\n",
                    (unsigned long long)sink->events, events, errbody);
            return 1;
        }
        if (!r || ns < best) best = ns;
    }
    printf("%zu %s events of %zu bytes in %zu-byte reads: %.1f ns of CPU per event (least of %d "
           "rounds); %.0f %% keyed; byte scans %s\n",
           events, varied ? "varied" : "identical", len / per_response, read_len, best, rounds,
           100.0 * (double)sink->keyed / (double)events, scan_path());
    http_response_free(&rsp);
    free(sink);
    free(stream);
    return 0;
}
