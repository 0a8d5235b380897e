/* The chunk scanner against the full JSON parse: for every input the scanner either falls
 * back or gives the facts cJSON gives (chunk_facts_equal), texts included; and so does the
 * shape-by-shape reader (chunk_template.h) for every pair of inputs (its shape learned on one,
 * the other read by it): each capture line against every other of its file, and against its
 * own mutations (each byte replaced, dropped or doubled, each value replaced by values of
 * every type and of other lengths). Inputs: the files
 * and folders named on the command line (each line an event's data, with or without its
 * "data: " prefix: captures of real servers' shapes, the emulator's profiles, the fuzz corpus),
 * every truncation and many one-byte mutations of the capture lines, and written cases for
 * the corners (escapes, surrogates, duplicate keys, odd types). Prints how many events of each
 * file the scanner read and how many fell back. */
#include "check.h"
#include "chunk_facts.h"
#include "chunk_scan.h"
#include "chunk_template.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static struct chunk_reader scan_rd, parse_rd, shape_rd;
static size_t shape_reads;    /* pairs the shape read, of all its checks */
static size_t previous_reads; /* capture events read by the shape of the one before */

/* a's facts of data against cJSON's: a failed check naming who read them when they differ */
static void agrees(const struct chunk_facts *a, const char *data, size_t len, int want,
                   const char *who)
{
    struct chunk_facts b;
    chunk_facts_parse(data, len, want, &parse_rd, &b);
    char why[200];
    int eq = chunk_facts_equal(a, &b, why, sizeof why);
    CHECK(eq, "%s and cJSON agree on %.*s (texts %s): %s", who, (int)(len > 300 ? 300 : len), data,
          want ? "on" : "off", why);
}

/* Learns learned's shape; 1 when the scanner read it (the shape is then kept). */
static int learn(const char *learned, size_t len)
{
    struct chunk_facts cf;
    return chunk_template_learn(learned, len, 7, 1, &shape_rd, &cf);
}

/* data read by the shape learned last, when it matches, against cJSON; 1 when it matched.
 * (A read may move the shape onto data's values: then the next read is by data's shape.) */
static int by_shape(const char *data, size_t len)
{
    int read = 0;
    for (int want = 0; want < 2; want++) {
        struct chunk_facts a;
        if (!chunk_template_read(data, len, 7, want, &shape_rd, &a)) continue;
        read = 1;
        agrees(&a, data, len, want, "the shape");
        /* the shape now holds data's values where they differed: data is its own shape */
        CHECK(chunk_template_read(data, len, 7, want, &shape_rd, &a),
              "an event read by a shape is read by it again: %.*s", (int)(len > 300 ? 300 : len),
              data);
    }
    shape_reads += (size_t)read;
    return read;
}

/* 1 when the scanner read it; a failed check when it read it differently */
static int same(const char *data, size_t len)
{
    int scanned = 0;
    for (int want = 0; want < 2; want++) {
        struct chunk_facts a;
        if (!chunk_scan(data, len, want, &scan_rd, &a)) continue;
        scanned = 1;
        agrees(&a, data, len, want, "the scanner");
    }
    return scanned;
}

static const unsigned char mutations[] = {'"', '\\', '{', '}', '[', ']', ',',  ':',  '0', '-',
                                          'n', 'u',  ' ', 'e', '.', 0,   0x1f, 0x80, 'd', 'D'};

/* values of every type and several lengths for a shape's holes */
static const char *const values[] = {
    "\"\"",
    "\"x\"",
    "\"longer value\"",
    "\"a\\\"b\"",
    "\"\\n\\u00e9\"",
    "\"\\ud83d\"",
    "\"\\u0000\"",
    "\"stop\"",
    "\"length\"",
    "0",
    "-0",
    "7",
    "-12",
    "1.5",
    "1e3",
    "-",
    "01",
    "4611686018427387905",
    "12345678901234567890",
    "99999999999999999999999",
    "-1234567890123456789012345",
    "null",
    "true",
    "false",
    "{}",
    "[]",
    "{\"a\":1}",
    "[\"x\",2]",
    " 5",
    "5 ",
    "",
};

/* line with [from, to) replaced by the n bytes at with, into m (len + n + 1 bytes) */
static size_t splice(char *m, const char *line, size_t len, size_t from, size_t to,
                     const char *with, size_t n)
{
    memcpy(m, line, from);
    memcpy(m + from, with, n);
    memcpy(m + from + n, line + to, len - to);
    return from + n + len - to;
}

/* line's shape against its own mutations: each byte replaced, dropped or doubled, and each
 * value (a hole) replaced by each of values[] */
static void mutate_shape(const char *line, size_t len)
{
    struct chunk_hole h[64];
    struct chunk_holes holes = {.h = h, .cap = 64};
    struct chunk_facts cf;
    if (!chunk_scan_shape(line, len, 0, &scan_rd, &cf, &holes) || !learn(line, len)) return;
    char *m = malloc(len + 64);
    /* each mutation by line's own shape: learned again, as a read may have moved it */
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < sizeof mutations; k++)
            learn(line, len),
                by_shape(m, splice(m, line, len, i, i + 1, (const char *)&mutations[k], 1));
        learn(line, len), by_shape(m, splice(m, line, len, i, i + 1, "", 0));
        learn(line, len), by_shape(m, splice(m, line, len, i, i, line + i, 1));
    }
    for (size_t i = 0; i < holes.n && !holes.overflow; i++) {
        /* a string's value begins at its opening quote, before the hole */
        int quoted = h[i].role == HOLE_STRING || h[i].role == HOLE_TEXT || h[i].role == HOLE_FINISH;
        size_t from = h[i].at - (size_t)quoted, to = (size_t)h[i].at + h[i].len;
        for (size_t k = 0; k < sizeof values / sizeof *values; k++)
            learn(line, len),
                by_shape(m, splice(m, line, len, from, to, values[k], strlen(values[k])));
    }
    free(m);
}

/* every prefix, and each byte replaced by each mutation; the shape's pairs too */
static void mutate(const char *line, size_t len)
{
    char *m = malloc(len + 1);
    for (size_t i = 0; i <= len; i++) same(line, i);
    for (size_t i = 0; i < len; i++) {
        memcpy(m, line, len);
        for (size_t k = 0; k < sizeof mutations; k++) {
            m[i] = (char)mutations[k];
            same(m, len);
        }
    }
    free(m);
    mutate_shape(line, len);
}

/* each event's shape against every event of its file; how many it read */
static size_t shape_pairs(const char *const *ev, const size_t *evlen, size_t n)
{
    size_t read = 0;
    for (size_t i = 0; i < n; i++) {
        if (!learn(ev[i], evlen[i])) continue;
        for (size_t j = 0; j < n; j++) read += (size_t)by_shape(ev[j], evlen[j]);
    }
    return read;
}

static void run_file(const char *path, int do_mutate)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "%s opens", path);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *text = malloc((size_t)size + 1);
    size_t got = fread(text, 1, (size_t)size, f);
    fclose(f);
    text[got] = 0;
    size_t events = 0, scanned = 0, cap = 512;
    const char **ev = malloc(cap * sizeof *ev);
    size_t *evlen = malloc(cap * sizeof *evlen);
    same(text, got); /* the whole file as one event: what fuzz_chunk_scan's corpus holds */
    for (char *line = text; line < text + got;) {
        char *nl = memchr(line, '\n', (size_t)(text + got - line));
        size_t len = nl ? (size_t)(nl - line) : (size_t)(text + got - line);
        const char *data = line;
        size_t dlen = len;
        if (dlen >= 5 && !memcmp(data, "data:", 5)) {
            data += 5, dlen -= 5;
            if (dlen && *data == ' ') data++, dlen--;
            same(line, len); /* also as the fuzz target sees it: the whole line */
        }
        if (dlen && !(dlen == 6 && !memcmp(data, "[DONE]", 6))) {
            if (events < cap) ev[events] = data, evlen[events] = dlen;
            events++;
            scanned += (size_t)same(data, dlen);
            if (do_mutate) mutate(data, dlen);
        }
        line += len + 1;
    }
    /* the stream as analysis reads it: each event by the shape of the one before */
    size_t by_previous = 0, pairs = shape_pairs(ev, evlen, events < cap ? events : cap);
    for (size_t i = 1; i < events && i < cap; i++)
        by_previous += (size_t)(learn(ev[i - 1], evlen[i - 1]) && by_shape(ev[i], evlen[i]));
    printf("%s: %zu events, %zu read by the scanner, %zu fell back to cJSON; %zu read by the "
           "previous event's shape, %zu pairs by each other's\n",
           path, events, scanned, events - scanned, by_previous, pairs);
    previous_reads += by_previous;
    free(ev);
    free(evlen);
    free(text);
}

static void run_path(const char *path, int do_mutate)
{
    struct stat st;
    if (stat(path, &st)) {
        printf("%s: absent, skipped\n", path); /* the fuzz corpus exists once fuzz.sh ran */
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        run_file(path, do_mutate);
        return;
    }
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        run_path(sub, do_mutate);
    }
    if (d) closedir(d);
}

/* Integer holes read by their changed digits (chunk_scan_holes): a stream of events whose
 * stamps and counts change in their last 1, 5, 10, 18 or 19 digits, change length, cross
 * sign, reach 19 digits and the int64 and 2^62 limits, or turn invalid ("00", "01", "1.5"),
 * each read by the shape the ones before it left, against cJSON. */
static uint64_t lcg = 88172645463325252u;
static uint64_t next_random(void)
{
    lcg = lcg * 6364136223846793005u + 1442695040888963407u;
    return lcg >> 17;
}

/* prev (a token) with its last k digits replaced by other digits into out */
static void change_digits(char *out, const char *prev, size_t k)
{
    size_t n = strlen(prev);
    strcpy(out, prev);
    for (size_t i = n - k; i < n; i++)
        if (out[i] >= '0' && out[i] <= '9')
            out[i] = (char)('0' + (out[i] - '0' + 1 + next_random() % 9) % 10);
}

/* a random integer token of 1 to 19 digits, either sign */
static void random_int(char *out)
{
    size_t n = 1 + next_random() % 19, at = 0;
    if (next_random() % 4 == 0) out[at++] = '-';
    out[at++] = (char)('1' + next_random() % 9);
    for (size_t i = 1; i < n; i++) out[at++] = (char)('0' + next_random() % 10);
    out[at] = 0;
}

static const char *const int_corners[] = {
    "0",
    "00",
    "-0",
    "-00",
    "01",
    "10",
    "00",
    "1.5",
    "9",
    "-9",
    "10",
    "-10",
    "9223372036854775807",
    "9223372036854775806",
    "-9223372036854775808",
    "-9223372036854775807",
    "4611686018427387904",
    "4611686018427387905",
    "4611686018427388159",
    "4611686018427388160",
    "-4611686018427387904",
    "-4611686018427387905",
    "4611686018427387903",
    "1000000000000000000",
    "9999999999999999999",
    "1999999999999999999",
    "2000000000000000000",
    "99999999999999999999",
    "1764444444123456789",
    "1764444444123456790",
    "-1764444444123456789",
    "-1764444444123456790",
    "12345678",
    "12345679",
    "-1234567",
    "-1234568",
    "123456789",
    "223456789",
};

static void integer_holes(void)
{
    static const char fmt[] =
        "{\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":{\"completion_tokens\":%s},"
        "\"x_emu_sent_ns\":%s,\"x_emu_sched_ns\":%s,\"x_emu_tokens\":%s}";
    char v[4][32] = {"1764444444123456789", "1764444444123456789", "-1764444444000000001", "7"};
    char ev[256];
    int n = snprintf(ev, sizeof ev, fmt, v[0], v[1], v[2], v[3]);
    CHECK(learn(ev, (size_t)n), "the scanner reads %s", ev);
    static const size_t changed[] = {1, 5, 10, 18, 19};
    size_t read = 0, reads = 0;
    for (size_t i = 0; i < 20000; i++) {
        size_t which = next_random() % 4;
        size_t how = next_random() % 8;
        if (how < 5) { /* the common case: the last digits changed */
            char was[32];
            strcpy(was, v[which]);
            size_t len = strlen(was) - (was[0] == '-');
            size_t k = changed[next_random() % 5];
            change_digits(v[which], was, k < len ? k : len);
        } else if (how == 5) {
            random_int(v[which]);
        } else {
            strcpy(v[which],
                   int_corners[next_random() % (sizeof int_corners / sizeof *int_corners)]);
        }
        n = snprintf(ev, sizeof ev, fmt, v[0], v[1], v[2], v[3]);
        int valid = 1;
        for (size_t j = 0; j < 4; j++) {
            const char *t = v[j] + (v[j][0] == '-');
            valid &= strlen(t) <= 19 && !strchr(t, '.') && (t[0] != '0' || !t[1]);
        }
        reads++;
        int by = by_shape(ev, (size_t)n);
        /* as the scanner: "00", "01", 20 digits or a fraction fall back */
        CHECK(by == valid, "the shape %s %s", valid ? "reads" : "falls back on", ev);
        if (by) {
            read++;
        } else {
            /* an invalid token makes the stream learn again from a valid one */
            for (size_t j = 0; j < 4; j++) random_int(v[j]);
            n = snprintf(ev, sizeof ev, fmt, v[0], v[1], v[2], v[3]);
            CHECK(learn(ev, (size_t)n), "the scanner reads %s", ev);
        }
    }
    printf("integer holes: %zu of %zu events read by the shape\n", read, reads);
    CHECK(read > reads / 2, "the shape read most events with changed integers (%zu)", read);
}

/* the scanner must read these (the hot shapes) and agree */
static const char *const must_scan[] = {
    "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"a\\\"b\\\\c\\/"
    "d\\n\\t\\u00e9\\u4f60\\ud83d\\ude00\"}}]}",
    "{\"choices\":[{\"delta\":{\"reasoning_content\":\"think\"}}],\"usage\":{\"prompt_tokens\":10,"
    "\"completion_tokens\":3,\"total_tokens\":13}}",
    "{\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7,"
    "\"prompt_tokens_details\":{\"cached_tokens\":2},\"completion_tokens_details\":{"
    "\"reasoning_tokens\":4}}}",
    "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"f\","
    "\"arguments\":\"{\\\"x\\\":1}\"}},{\"index\":1,\"function\":{\"arguments\":\"[]\"}}]}}]}",
    "{\"choices\":[{\"text\":\" world\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"length\"}"
    "],\"object\":\"text_completion\"}",
    "{\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"x_emu_sent_ns\":1764444444123456789,"
    "\"x_emu_sched_ns\":-5,\"x_emu_tokens\":2}",
    "{\"usage\":{\"completion_tokens\":9007199254740993},\"x_emu_tokens\":4611686018427387905}",
    "{\"usage\":null,\"choices\":null,\"x\":[1,2.5e-3,-0,true,false,null,{\"a\":[]}]}",
    "{\"choices\":[{\"delta\":{\"content\":null,\"reasoning\":5,\"tool_calls\":null}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"\"},\"finish_reason\":\"weird\"}]}",
    "  {\"choices\":[{\"delta\":{\"content\":\"t\"}}]}\r\n ",
    "{\"usage\":{\"completion_tokens\":\"12\",\"prompt_tokens\":3}}",
    "{\"usage\":{\"completion_tokens\":12,\"prompt_tokens_details\":[1]}}",
};

/* the scanner must fall back on these (cJSON decides) */
static const char *const must_fall_back[] = {
    "{\"error\":{\"message\":\"overloaded\"}}",
    "{\"choices\":[{\"delta\":{\"content\":\"a\"}},{\"delta\":{\"content\":\"b\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"a\",\"content\":\"b\"}}]}",
    "{\"choices\":{\"0\":{\"delta\":{\"content\":\"a\"}}}}",
    "{\"choices\":[{\"delta\":{\"content\":\"a\\u0000b\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"\\ud83d\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"\\ude00\"}}]}",
    "{\"choices\":[{\"delta\":{\"con\\u0074ent\":\"a\"}}]}",
    "{\"usage\":{\"completion_tokens\":1.5}}",
    "{\"usage\":{\"completion_tokens\":12345678901234567890}}",
    "{\"a\":1} trailing",
    "[1]",
    "{\"a\":01}",
    "{\"a\":\"\x01\"}",
    "{\"choices\":[{\"delta\":{\"tool_calls\":{\"a\":{\"function\":{\"name\":\"f\"}}}}}]}",
};

int main(int argc, char **argv)
{
    integer_holes();
    for (size_t i = 0; i < sizeof must_scan / sizeof *must_scan; i++)
        CHECK(same(must_scan[i], strlen(must_scan[i])), "the scanner reads %s", must_scan[i]);
    for (size_t i = 0; i < sizeof must_fall_back / sizeof *must_fall_back; i++) {
        struct chunk_facts cf;
        CHECK(!chunk_scan(must_fall_back[i], strlen(must_fall_back[i]), 1, &scan_rd, &cf),
              "the scanner falls back on %s", must_fall_back[i]);
    }
    /* the corner cases' every mutation too */
    for (size_t i = 0; i < sizeof must_scan / sizeof *must_scan; i++)
        mutate(must_scan[i], strlen(must_scan[i]));
    /* arguments: --mutate makes the following paths' lines mutated as well */
    int do_mutate = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mutate")) {
            do_mutate = 1;
            continue;
        }
        if (!strcmp(argv[i], "--no-mutate")) {
            do_mutate = 0;
            continue;
        }
        run_path(argv[i], do_mutate);
    }
    printf("%zu reads by a learned shape checked\n", shape_reads);
    CHECK(shape_reads > 1000, "the shape read many of the pairs (%zu)", shape_reads);
    if (argc > 1) /* the emulator's streams: most events have the previous one's shape */
        CHECK(previous_reads > 30, "captures read by the previous event's shape: %zu",
              previous_reads);
    chunk_reader_free(&scan_rd);
    chunk_reader_free(&parse_rd);
    chunk_reader_free(&shape_rd);
    return check_done("chunk scanner against cJSON");
}
