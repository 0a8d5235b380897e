/* AA's tool-call format check on streamed answers (analysis/tool_calls.h): calls gathered
 * across deltas by index, each rule broken once, and the call the output cap cut excused. */
#include "check.h"
#include "tool_calls.h"

#include <string.h>

#define CALL(idx, fn)                                                                              \
    "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":" #idx ",\"function\":" fn   \
    "}]}}]}"

/* Feeds the events and runs the check; 0 pass, -1 fail (why written). */
static int verdict(const char *const *events, int n, const char *finish, uint32_t *calls, char *why,
                   size_t wl)
{
    struct tool_calls tc = {0};
    for (int i = 0; i < n; i++) tool_calls_feed(&tc, events[i], strlen(events[i]));
    why[0] = 0;
    int rc = tool_calls_check(&tc, finish, why, wl);
    *calls = tc.n;
    tool_calls_free(&tc);
    return rc;
}

int main(void)
{
    char why[256];
    uint32_t n;
    const char *good[] = {
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Looking.\"}}]}",
        CALL(0, "{\"name\":\"search_catalog\",\"arguments\":\"\"}"),
        CALL(0, "{\"arguments\":\"{\\\"topic\\\": \"}"),
        CALL(0, "{\"arguments\":\"\\\"stars\\\"}\"}"),
        CALL(1, "{\"name\":\"get_availability\",\"arguments\":\"{}\"}"),
    };
    CHECK(verdict(good, 5, "tool_calls", &n, why, sizeof why) == 0 && n == 2,
          "two calls, arguments split over deltas: pass with 2 calls (got %u, %s)", n, why);
    CHECK(verdict(good, 1, "stop", &n, why, sizeof why) == 0 && n == 0,
          "no call: pass with 0 calls (got %u, %s)", n, why);
    CHECK(verdict(good, 5, "stop", &n, why, sizeof why) == -1 && strstr(why, "finish reason"),
          "calls finishing with stop fail on the finish reason (%s)", why);
    const char *gap[] = {CALL(0, "{\"name\":\"a\",\"arguments\":\"{}\"}"),
                         CALL(2, "{\"name\":\"b\",\"arguments\":\"{}\"}")};
    CHECK(verdict(gap, 2, "tool_calls", &n, why, sizeof why) == -1 && strstr(why, "contiguous") &&
              n == 3,
          "indices 0 and 2 fail as not contiguous (%s)", why);
    const char *space[] = {CALL(0, "{\"name\":\"bad name\",\"arguments\":\"{}\"}")};
    CHECK(verdict(space, 1, "tool_calls", &n, why, sizeof why) == -1 && strstr(why, "name"),
          "a name with a space fails (%s)", why);
    const char *empty[] = {CALL(0, "{\"arguments\":\"{}\"}")};
    CHECK(verdict(empty, 1, "tool_calls", &n, why, sizeof why) == -1 && strstr(why, "name"),
          "a call without a name fails (%s)", why);
    char longname[300];
    snprintf(
        longname, sizeof longname,
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"%0129d\","
        "\"arguments\":\"{}\"}}]}}]}",
        0);
    const char *toolong[] = {longname};
    CHECK(verdict(toolong, 1, "tool_calls", &n, why, sizeof why) == -1 && strstr(why, "name"),
          "a 129-character name fails (%s)", why);
    const char *array[] = {CALL(0, "{\"name\":\"a\",\"arguments\":\"[1]\"}")};
    CHECK(verdict(array, 1, "tool_calls", &n, why, sizeof why) == -1 && strstr(why, "arguments"),
          "arguments that are a JSON array fail (%s)", why);
    const char *cut[] = {CALL(0, "{\"name\":\"a\",\"arguments\":\"{}\"}"),
                         CALL(1, "{\"name\":\"b\",\"arguments\":\"{\\\"x\\\": \"}")};
    CHECK(verdict(cut, 2, "length", &n, why, sizeof why) == 0,
          "the last call cut off by the output cap is excused (%s)", why);
    CHECK(verdict(cut, 2, "tool_calls", &n, why, sizeof why) == -1 && strstr(why, "call 1"),
          "the same call unfinished without the cap fails (%s)", why);
    const char *cut_first[] = {CALL(0, "{\"name\":\"a\",\"arguments\":\"{\"}"),
                               CALL(1, "{\"name\":\"b\",\"arguments\":\"{}\"}")};
    CHECK(verdict(cut_first, 2, "length", &n, why, sizeof why) == -1 && strstr(why, "call 0"),
          "only the last call is excused by the cap (%s)", why);
    return check_done("test_tool_calls");
}
