/* The trajectory importers (mini-swe-agent, SWE-agent, OpenAI message lists) on any file:
 * imported, or skipped with one line, never a crash. The first byte picks the format. */
#include "fuzz_util.h"
#include "commands.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const formats[] = {"mini-swe-agent", "swe-agent", "openai-messages"};
    if (!size) return 0;
    const char *dir = fuzz_dir();
    char in[256], out[256];
    snprintf(in, sizeof in, "%s/input.json", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    fuzz_write(in, data + 1, size - 1);
    char *argv[] = {"import", "--from", (char *)formats[data[0] % 3], in, "-o", out, NULL};
    extern int optind;
    optind = 0; /* cmd_import parses with getopt */
    cmd_import(6, argv);
    return 0;
}
