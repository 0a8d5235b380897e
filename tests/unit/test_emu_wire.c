/* strobe-emu's number formatting without snprintf (emu_wire.c) writes what snprintf's %lld
 * writes: zero, one and two digits, every power of ten and the number before it, 19 digits,
 * the int64 limits, negatives; and a buffer one byte short is refused, as snprintf's would be. */
#include "check.h"
#include "emu_wire.h"

#include <inttypes.h>
#include <stdint.h>
#include <string.h>

static void usage_like_snprintf(int64_t v)
{
    /* total_tokens is prompt + completion: completion 0 keeps it v, whatever v */
    struct wire_usage u = {.prompt_tokens = v,
                           .completion_tokens = 0,
                           .cached_tokens = -(v / 7),
                           .reasoning_tokens = v / 3};
    char got[256], want[256];
    int n = emu_wire_usage_json(got, sizeof got, &u);
    int w =
        snprintf(want, sizeof want,
                 "{\"prompt_tokens\":%" PRId64 ",\"completion_tokens\":0,\"total_tokens\":%" PRId64
                 ",\"prompt_tokens_details\":{\"cached_tokens\":%" PRId64
                 "},\"completion_tokens_details\":{\"reasoning_tokens\":%" PRId64 "}}",
                 v, v, -(v / 7), v / 3);
    CHECK(n == w && !strcmp(got, want), "usage of %" PRId64 ": got %s, snprintf gives %s", v,
          n < 0 ? "(refused)" : got, want);
    /* exactly the room snprintf needs (the bytes and a NUL), then one byte less */
    char tight[256];
    CHECK(emu_wire_usage_json(tight, (size_t)w + 1, &u) == w && !strcmp(tight, want),
          "usage of %" PRId64 " fits in %d bytes and a NUL", v, w);
    CHECK(emu_wire_usage_json(tight, (size_t)w, &u) == -1,
          "usage of %" PRId64 " is refused in %d bytes (no room for the NUL)", v, w);
}

int main(void)
{
    int64_t values[] = {0,
                        1,
                        -1,
                        9,
                        10,
                        11,
                        99,
                        -99,
                        100,
                        101,
                        12345,
                        -12345,
                        INT64_MAX,
                        INT64_MIN,
                        INT64_MIN + 1,
                        1796031944161098075,
                        -1796031944161098075};
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) usage_like_snprintf(values[i]);
    for (int64_t p = 1; p <= INT64_MAX / 10; p *= 10) {
        usage_like_snprintf(p);
        usage_like_snprintf(p - 1);
        usage_like_snprintf(-p);
        usage_like_snprintf(p * 10 - 1);
    }
    return check_done("emu wire numbers");
}
