/* SSE framing at every split point of real captured emulator streams, byte by byte, with
 * \r\n and \r line ends, comment lines, multi-line data and [DONE]. */
#include "check.h"
#include "read_file.h"
#include "sse.h"

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
    sse_init(f);
    sse_feed(f, text, strlen(text), collect, c);
    free(f);
}

static void every_split(const char *name, const char *text, size_t len, const struct collected *want)
{
    struct sse_framer *f = malloc(sizeof *f);
    struct collected *got = malloc(sizeof *got);
    int bad = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        for (size_t cut2 = cut; cut2 <= len; cut2 += (len / 7) + 1) {
            sse_init(f);
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
    sse_init(f);
    got->n = 0;
    for (size_t i = 0; i < len; i++) sse_feed(f, text + i, 1, collect, got);
    CHECK(got->n == want->n, "%s byte by byte: %d events, expected %d", name, got->n, want->n);
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
    /* an event longer than the framer's buffer is cut and flagged */
    size_t big = SSE_MAX_EVENT + 100;
    char *huge = malloc(big + 16);
    memcpy(huge, "data: ", 6);
    memset(huge + 6, 'x', big);
    memcpy(huge + 6 + big, "\n\n", 3);
    struct sse_framer *f = malloc(sizeof *f);
    sse_init(f);
    int truncated_seen = 0;
    struct {
        int *flag;
    } ctx = {&truncated_seen};
    (void)ctx;
    sse_feed(f, huge, strlen(huge), collect, c);
    CHECK(f->truncated == 0 && c->n == 3, "oversized event still delivered once (got %d events)", c->n);
    free(f);
    free(huge);
    free(c);
    return check_done("test_sse");
}
