/* Outside input at the edges: read_file on a directory, an empty file, a file whose size
 * fstat does not know (/proc), a pipe; the API key blanked in place at its own length; the
 * Content-Type and Content-Encoding of a response kept from header callbacks split anywhere. */
#include "check.h"
#include "http_meta.h"
#include "json_must.h"
#include "must_alloc.h"
#include "read_file.h"
#include "redact.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void files(void)
{
    char dir[] = "/tmp/strobe-test-input-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    size_t len = 123;
    errno = 0;
    char *b = read_file(dir, &len);
    CHECK(!b && errno == EISDIR, "a directory: NULL with EISDIR, got %p errno %d", (void *)b,
          errno);
    char path[256];
    snprintf(path, sizeof path, "%s/empty", dir);
    FILE *f = fopen(path, "w");
    fclose(f);
    b = read_file(path, &len);
    CHECK(b && len == 0 && b[0] == 0, "an empty file: \"\" and length 0");
    free(b);
    snprintf(path, sizeof path, "%s/some", dir);
    f = fopen(path, "w");
    for (int i = 0; i < 100000; i++) fputc('a' + i % 26, f);
    fclose(f);
    b = read_file(path, &len);
    CHECK(b && len == 100000 && b[99999] == 'a' + 99999 % 26 && b[100000] == 0,
          "a regular file: every byte, NUL-terminated (len %zu)", len);
    free(b);
    remove(path);
    snprintf(path, sizeof path, "%s/empty", dir);
    remove(path);
    errno = 0;
    snprintf(path, sizeof path, "%s/missing", dir);
    b = read_file(path, NULL);
    CHECK(!b && errno == ENOENT, "a missing file: ENOENT, got errno %d", errno);
    rmdir(dir);
    /* st_size 0, yet it has bytes */
    b = read_file("/proc/self/status", &len);
    CHECK(b && len > 0 && strstr(b, "Pid:"), "/proc/self/status is read to its end (len %zu)", len);
    free(b);
    /* a pipe: no size at all */
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    static char big[200000];
    memset(big, 'x', sizeof big);
    pid_t child = fork();
    if (child == 0) {
        close(p[0]);
        size_t off = 0;
        while (off < sizeof big) {
            ssize_t w = write(p[1], big + off, sizeof big - off);
            if (w <= 0) _exit(1);
            off += (size_t)w;
        }
        _exit(0);
    }
    close(p[1]);
    snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
    b = read_file(path, &len);
    CHECK(b && len == sizeof big && b[len - 1] == 'x', "a pipe is read to its end (len %zu)", len);
    free(b);
    close(p[0]);
}

static void secrets(void)
{
    CHECK(redact_set("short") == -1, "a key under REDACT_MIN_LEN is refused");
    char s0[] = "short text";
    CHECK(redact(s0, strlen(s0)) == 0 && !strcmp(s0, "short text"), "a refused key blanks nothing");
    CHECK(redact_set("sk-secret-123") == 0, "a key is set");
    char s[] = "a sk-secret-123sk-secret-123 b sk-secret-12 c sk-secret-123";
    size_t n = redact(s, strlen(s));
    CHECK(n == 3 && !strcmp(s, "a ************************** b sk-secret-12 c *************"),
          "every occurrence, adjacent ones too, at the same length: %zu, %s", n, s);
    char t[] = "sk-secret-123";
    CHECK(redact(t, 12) == 0, "a key cut short by the buffer is not matched past it");
    redact_set(NULL);
}

static void feed(struct http_meta *m, const char *field, const char *value, size_t split)
{
    size_t fl = strlen(field), vl = strlen(value);
    size_t fs = split < fl ? split : fl, vs = split < vl ? split : vl;
    http_meta_field(m, field, fs);
    if (fs < fl) http_meta_field(m, field + fs, fl - fs);
    http_meta_value(m, value, vs);
    if (vs < vl) http_meta_value(m, value + vs, vl - vs);
}

static void headers(void)
{
    char why[300];
    for (size_t split = 0; split < 20; split++) {
        struct http_meta m;
        http_meta_reset(&m);
        feed(&m, "Date", "today", split);
        feed(&m, "content-TYPE", "text/event-stream; charset=utf-8", split);
        feed(&m, "Content-Encoding", "identity", split);
        CHECK(!http_meta_not_sse(&m, why, sizeof why),
              "SSE with a charset and identity (split %zu): %s", split, why);
        http_meta_reset(&m);
        feed(&m, "Content-Type", "application/json", split);
        CHECK(http_meta_not_sse(&m, why, sizeof why) &&
                  strstr(why, "Content-Type application/json, not text/event-stream"),
              "JSON is named (split %zu): %s", split, why);
        http_meta_reset(&m);
        feed(&m, "Content-Type", "text/event-stream", split);
        feed(&m, "Content-Encoding", "gzip", split);
        CHECK(http_meta_not_sse(&m, why, sizeof why) &&
                  strstr(why, "gzip-compressed (Content-Encoding: gzip)"),
              "gzip is named (split %zu): %s", split, why);
        http_meta_reset(&m);
        feed(&m, "X-Content-Type-Options-And-More-Than-24", "application/json", split);
        feed(&m, "Content-Typo", "application/json", split);
        CHECK(!http_meta_not_sse(&m, why, sizeof why),
              "other headers are not taken for ours (split %zu)", split);
    }
    struct http_meta m;
    http_meta_reset(&m);
    CHECK(!http_meta_not_sse(&m, why, sizeof why), "no Content-Type at all is taken as a stream");
    feed(&m, "Content-Type", "text/event-streamer", 100);
    CHECK(http_meta_not_sse(&m, why, sizeof why), "text/event-streamer is not text/event-stream");
}

#ifdef __SANITIZE_ADDRESS__
/* Under ASan an allocation past its limit aborts unless told to fail as malloc does; the tests'
 * ASAN_OPTIONS set other keys, which merge with these. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }
#endif

/* Runs an allocation that cannot be met in a child, its stderr into a pipe: exit status 1 and
 * the message naming what was being allocated, never a NULL handed back. */
static void out_of_memory_exits(int which)
{
    int fds[2];
    if (pipe(fds)) {
        CHECK(0, "pipe: %s", strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        void *p = NULL;
        switch (which) {
        case 0: p = must_malloc((size_t)-1 / 2, "a test's huge buffer"); break;
        case 1: p = must_calloc((size_t)1 << 40, (size_t)1 << 40, "a test's huge buffer"); break;
        case 2: p = must_realloc(NULL, (size_t)-1 / 2, "a test's huge buffer"); break;
        case 3: p = must_have(NULL, "a test's huge buffer"); break;
        default: /* cJSON's own allocations, through the hooks every program installs */
            json_must_init();
            p = cJSON_malloc((size_t)-1 / 2);
            break;
        }
        _exit(p ? 0 : 2); /* reached only when the allocation returned */
    }
    close(fds[1]);
    char msg[512] = "";
    size_t got = 0;
    for (ssize_t n;
         got < sizeof msg - 1 && (n = read(fds[0], msg + got, sizeof msg - 1 - got)) > 0;)
        got += (size_t)n;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1, "case %d: exit status 1, got 0x%x", which,
          status);
    CHECK(strstr(msg, "out of memory allocating") &&
              strstr(msg, which < 4 ? "a test's huge buffer" : "for JSON"),
          "case %d: a message naming the allocation, got '%s'", which, msg);
}

static void allocations(void)
{
    for (int which = 0; which < 5; which++) out_of_memory_exits(which);
    char *s = must_strdup("kept", "a test's copy");
    CHECK(!strcmp(s, "kept"), "must_strdup copies, got '%s'", s);
    free(s);
    void *zero = must_malloc(0, "nothing");
    CHECK(zero != NULL, "a size of 0 gives a pointer, not NULL");
    free(zero);
}

int main(void)
{
    files();
    secrets();
    headers();
    allocations();
    return check_done("test_input");
}
