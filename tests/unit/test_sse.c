/* SSE framing at every split point of real captured emulator streams, byte by byte, with
 * \r\n and \r line ends, comment lines, multi-line data and [DONE]; events of 100 KB and
 * 1 MB (a tool call's arguments in one chunk) intact across arbitrary splits, the buffer
 * grown once and kept; an event over the limit cut, flagged once, and the stream going on. */
#include "check.h"
#include "read_file.h"
#include "sse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct collected {
    char events[64][2048];
    int n;
};

static int collect(void *arg, const char *data, size_t len, int truncated, int is_error)
{
    (void)truncated;
    (void)is_error;
    struct collected *c = arg;
    if (c->n < 64) {
        if (len > sizeof c->events[0] - 1) len = sizeof c->events[0] - 1;
        memcpy(c->events[c->n], data, len);
        c->events[c->n][len] = 0;
    }
    c->n++;
    return 0;
}

/* The reference: events split on blank lines, "data: " stripped. */
static void reference(const char *text, struct collected *c)
{
    struct sse_framer *f = malloc(sizeof *f);
    sse_init(f, 0);
    sse_feed(f, text, strlen(text), collect, c);
    sse_free(f);
    free(f);
}

static void every_split(const char *name, const char *text, size_t len,
                        const struct collected *want)
{
    struct sse_framer *f = malloc(sizeof *f);
    struct collected *got = malloc(sizeof *got);
    int bad = 0;
    sse_init(f, 0);
    for (size_t cut = 0; cut <= len; cut++) {
        for (size_t cut2 = cut; cut2 <= len; cut2 += (len / 7) + 1) {
            sse_reset(f);
            got->n = 0;
            sse_feed(f, text, cut, collect, got);
            sse_feed(f, text + cut, cut2 - cut, collect, got);
            sse_feed(f, text + cut2, len - cut2, collect, got);
            int same = got->n == want->n;
            for (int i = 0; same && i < want->n; i++)
                same = !strcmp(got->events[i], want->events[i]);
            if (!same) bad++;
        }
    }
    CHECK(bad == 0, "%s: %d of the split pairs changed the events", name, bad);
    sse_reset(f);
    got->n = 0;
    for (size_t i = 0; i < len; i++) sse_feed(f, text + i, 1, collect, got);
    CHECK(got->n == want->n, "%s byte by byte: %d events, expected %d", name, got->n, want->n);
    sse_free(f);
    free(f);
    free(got);
}

static char *with_line_ends(const char *text, const char *eol)
{
    size_t n = strlen(text), el = strlen(eol);
    char *out = malloc(n * el + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\n') {
            memcpy(o, eol, el);
            o += el;
        } else {
            *o++ = text[i];
        }
    }
    *o = 0;
    return out;
}

/* ---------- large events ---------- */

/* Every event's data in full, as the framer delivered it. */
struct big {
    char *data[8];
    size_t len[8];
    int truncated[8];
    int n;
};

static int keep(void *arg, const char *data, size_t len, int truncated, int is_error)
{
    (void)is_error;
    struct big *b = arg;
    if (b->n < 8) {
        b->data[b->n] = malloc(len + 1);
        memcpy(b->data[b->n], data, len);
        b->len[b->n] = len;
        b->truncated[b->n] = truncated;
    }
    b->n++;
    return 0;
}

static void big_clear(struct big *b)
{
    for (int i = 0; i < b->n && i < 8; i++) free(b->data[i]);
    memset(b, 0, sizeof *b);
}

/* A tool-call chunk whose arguments string is `args` bytes, as servers stream it. */
static char *tool_chunk(size_t args, size_t *len)
{
    static const char head[] = "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,"
                               "\"function\":{\"arguments\":\"";
    static const char tail[] = "\"}}]}}]}";
    char *j = malloc(sizeof head + args + sizeof tail);
    memcpy(j, head, sizeof head - 1);
    uint32_t x = (uint32_t)args;
    for (size_t i = 0; i < args; i++) {
        x = x * 1103515245u + 12345u;
        j[sizeof head - 1 + i] = "abcdefghijklmnopqrstuvwxyz0123456789 {}:,"[(x >> 16) % 41];
    }
    memcpy(j + sizeof head - 1 + args, tail, sizeof tail);
    *len = sizeof head - 1 + args + sizeof tail - 1;
    return j;
}

/* The stream: a small event, the 100 KB chunk, the 1 MB chunk split over 4 data lines
 * (joined by \n), a comment, [DONE]. want[] holds each event's data. */
static char *big_stream(char *want[4], size_t want_len[4], size_t *len)
{
    size_t l100, l1m;
    char *c100 = tool_chunk(100 * 1000, &l100), *c1m = tool_chunk(1000 * 1000, &l1m);
    size_t cap = l100 + l1m + 256, n = 0;
    char *s = malloc(cap);
    n += (size_t)sprintf(s + n, "data: {\"choices\":[]}\r\n\r\n");
    n += (size_t)sprintf(s + n, "data: ");
    memcpy(s + n, c100, l100);
    n += l100;
    n += (size_t)sprintf(s + n, "\n\n");
    size_t q = l1m / 4, at = 0;
    for (int k = 0; k < 4; k++) {
        size_t part = k == 3 ? l1m - at : q;
        n += (size_t)sprintf(s + n, "data:");
        memcpy(s + n, c1m + at, part);
        n += part;
        s[n++] = '\n';
        at += part;
    }
    n += (size_t)sprintf(s + n, "\n: keep-alive\n\ndata: [DONE]\n\n");
    want[0] = strdup("{\"choices\":[]}");
    want_len[0] = strlen(want[0]);
    want[1] = c100;
    want_len[1] = l100;
    want[2] = malloc(l1m + 3);
    at = 0;
    size_t w = 0;
    for (int k = 0; k < 4; k++) {
        size_t part = k == 3 ? l1m - at : q;
        memcpy(want[2] + w, c1m + at, part);
        w += part;
        at += part;
        if (k < 3) want[2][w++] = '\n';
    }
    want_len[2] = w;
    want[3] = strdup("[DONE]");
    want_len[3] = 6;
    free(c1m);
    *len = n;
    return s;
}

static int big_same(const struct big *got, char *const want[4], const size_t want_len[4])
{
    if (got->n != 4) return 0;
    for (int i = 0; i < 4; i++)
        if (got->truncated[i] || got->len[i] != want_len[i] ||
            memcmp(got->data[i], want[i], want_len[i]))
            return 0;
    return 1;
}

static void large_events(void)
{
    char *want[4];
    size_t want_len[4], len;
    char *text = big_stream(want, want_len, &len);
    struct sse_framer f;
    sse_init(&f, 0); /* the default limit, 8 MiB */
    struct big got = {0};
    /* small events first: the buffer stays at its initial size */
    sse_feed(&f, text, 26, keep, &got);
    CHECK(got.n == 1 && f.data_cap <= SSE_INITIAL_CAP,
          "a small event: 1 event and the initial %d-byte buffer, got %d events, %zu bytes",
          SSE_INITIAL_CAP, got.n, f.data_cap);
    sse_feed(&f, text + 26, len - 26, keep, &got);
    CHECK(big_same(&got, want, want_len), "100 KB and 1 MB events in one feed: intact (%d events)",
          got.n);
    big_clear(&got);
    /* arbitrary splits: cuts at pseudo-random points, some inside "data:", some in \r\n */
    uint32_t x = 7;
    int bad = 0, rounds = 60;
    for (int r = 0; r < rounds; r++) {
        sse_reset(&f);
        size_t at = 0;
        while (at < len) {
            x = x * 1103515245u + 12345u;
            size_t piece =
                r % 3 == 0 ? 1 + (x >> 16) % 7 : 1 + (x >> 8) % (r % 3 == 1 ? 1500 : 70000);
            if (piece > len - at) piece = len - at;
            sse_feed(&f, text + at, piece, keep, &got);
            at += piece;
        }
        if (!big_same(&got, want, want_len)) bad++;
        big_clear(&got);
    }
    CHECK(bad == 0, "large events across arbitrary splits: %d of %d rounds changed them", bad,
          rounds);
    /* the grown buffer is kept: another stream of the same sizes does not allocate */
    char *kept = f.data;
    size_t kept_cap = f.data_cap;
    sse_reset(&f);
    sse_feed(&f, text, len, keep, &got);
    CHECK(big_same(&got, want, want_len) && f.data == kept && f.data_cap == kept_cap &&
              kept_cap >= want_len[2] && kept_cap < 2 * want_len[2] + SSE_INITIAL_CAP,
          "a second stream reuses the %zu-byte buffer (now %zu bytes, moved: %d)", kept_cap,
          f.data_cap, f.data != kept);
    big_clear(&got);
    sse_free(&f);
    for (int i = 0; i < 4; i++) free(want[i]);
    free(text);
}

/* Over the limit: cut at it, flagged once, and the next event is whole and unflagged. */
static void over_the_limit(void)
{
    char *want[4];
    size_t want_len[4], len;
    char *text = big_stream(want, want_len, &len);
    struct sse_framer f;
    sse_init(&f, 64 * 1024);
    struct big got = {0};
    for (size_t at = 0; at < len; at += 4093)
        sse_feed(&f, text + at, len - at < 4093 ? len - at : 4093, keep, &got);
    CHECK(got.n == 4, "over the limit: still 4 events, got %d", got.n);
    if (got.n == 4) {
        CHECK(!got.truncated[0] && got.truncated[1] && got.truncated[2] && !got.truncated[3],
              "the 100 KB and 1 MB events are flagged, the others not (%d %d %d %d)",
              got.truncated[0], got.truncated[1], got.truncated[2], got.truncated[3]);
        CHECK(got.len[1] == 64 * 1024 && !memcmp(got.data[1], want[1], 64 * 1024),
              "a cut event holds the limit's worth of its first bytes (%zu)", got.len[1]);
        CHECK(got.len[3] == 6 && !memcmp(got.data[3], "[DONE]", 6), "the stream goes on after it");
    }
    CHECK(f.data_cap <= 64 * 1024, "the buffer never passes the limit (%zu bytes)", f.data_cap);
    big_clear(&got);
    /* the old 16 KiB limit is gone: just over it is fine by default */
    sse_free(&f);
    sse_init(&f, 0);
    size_t l;
    char *j = tool_chunk(16384, &l);
    char *ev = malloc(l + 16);
    int n = sprintf(ev, "data: %s\n\n", j);
    sse_feed(&f, ev, (size_t)n, keep, &got);
    CHECK(got.n == 1 && !got.truncated[0] && got.len[0] == l,
          "a 16 KiB+ event by default: whole (%zu of %zu)", got.n ? got.len[0] : 0, l);
    big_clear(&got);
    sse_free(&f);
    free(j);
    free(ev);
    for (int i = 0; i < 4; i++) free(want[i]);
    free(text);
}

struct where {
    const char *lo, *hi; /* the fed buffer */
    int in_buffer, copied;
};

static int note_where(void *arg, const char *data, size_t len, int truncated, int is_error)
{
    (void)len;
    (void)truncated;
    (void)is_error;
    struct where *w = arg;
    if (data >= w->lo && data < w->hi)
        w->in_buffer++;
    else
        w->copied++;
    return 0;
}

/* An event in one data line within one feed is handed where it lies; one split across feeds,
 * or in two data lines, is copied (and whole: every_split checks the bytes). */
static void without_copies(void)
{
    const char *text = "data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\ndata: x\ndata: y\n\n";
    size_t len = strlen(text);
    struct sse_framer f;
    sse_init(&f, 0);
    struct where w = {text, text + len, 0, 0};
    sse_feed(&f, text, len, note_where, &w);
    CHECK(w.in_buffer == 2 && w.copied == 1,
          "one-line events in one feed are not copied: %d in the buffer, %d copied (want 2, 1)",
          w.in_buffer, w.copied);
    sse_reset(&f);
    w = (struct where){text, text + len, 0, 0};
    sse_feed(&f, text, 10, note_where, &w);
    sse_feed(&f, text + 10, len - 10, note_where, &w);
    CHECK(w.in_buffer == 1 && w.copied == 2,
          "an event split across feeds is copied: %d in the buffer, %d copied (want 1, 2)",
          w.in_buffer, w.copied);
    sse_free(&f);
}

static int note_errors(void *arg, const char *data, size_t len, int truncated, int is_error)
{
    (void)data;
    (void)len;
    (void)truncated;
    unsigned *flags = arg; /* bit k: event k was flagged; the count above bit 16 */
    unsigned k = *flags >> 16;
    if (is_error && k < 16) *flags |= 1u << k;
    *flags += 1u << 16;
    return 0;
}

/* "event: error" flags its event only, read whole (the one-step path) or cut anywhere. */
static void error_events(void)
{
    const char *text = "data: ok\n\nevent: error\ndata: {\"e\":1}\n\ndata: after\n\n"
                       "event: error\ndata:x\n\n";
    size_t len = strlen(text);
    struct sse_framer f;
    sse_init(&f, 0);
    int bad = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        unsigned flags = 0;
        sse_reset(&f);
        sse_feed(&f, text, cut, note_errors, &flags);
        sse_feed(&f, text + cut, len - cut, note_errors, &flags);
        if (flags != (4u << 16 | 0xau)) bad++;
    }
    CHECK(bad == 0, "event: error: %d of %zu cuts flagged other events than the 2nd and 4th", bad,
          len + 1);
    sse_free(&f);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/data";
    const char *files[] = {"emu_chat_final_chunk.sse", "emu_chat_finish_chunk.sse"};
    for (int k = 0; k < 2; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        size_t len;
        char *text = read_file(path, &len);
        CHECK(text != NULL, "cannot read %s", path);
        if (!text) continue;
        struct collected *want = calloc(1, sizeof *want);
        reference(text, want);
        int expected = k == 0 ? 9 : 8; /* finish-chunk style has no separate usage chunk */
        CHECK(want->n == expected, "%s: %d events (role, 5 tokens, finish, [usage], DONE), got %d",
              files[k], expected, want->n);
        CHECK(!strcmp(want->events[want->n - 1], "[DONE]"), "%s: last event is [DONE]", files[k]);
        CHECK(!strncmp(want->events[0], "{\"id\"", 5), "%s: data prefix stripped", files[k]);
        every_split(files[k], text, len, want);
        char *crlf = with_line_ends(text, "\r\n");
        every_split("CRLF", crlf, strlen(crlf), want);
        char *cr = with_line_ends(text, "\r");
        every_split("CR", cr, strlen(cr), want);
        free(crlf);
        free(cr);
        free(want);
        free(text);
    }
    /* comments, fields other than data, multi-line data, no space after the colon */
    const char *odd = ": keep-alive\n\nevent: message\nid: 7\ndata:{\"a\":\ndata: 1}\n\n"
                      ":comment\ndata: [DONE]\n\n";
    struct collected *c = calloc(1, sizeof *c);
    reference(odd, c);
    CHECK(c->n == 2, "odd stream: 2 events, got %d", c->n);
    CHECK(!strcmp(c->events[0], "{\"a\":\n1}"), "multi-line data joined by \\n, got '%s'",
          c->events[0]);
    every_split("odd stream", odd, strlen(odd), c);
    large_events();
    over_the_limit();
    without_copies();
    error_events();
    free(c);
    return check_done("test_sse");
}
