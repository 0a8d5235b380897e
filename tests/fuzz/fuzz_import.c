/* The trajectory importers (mini-swe-agent, SWE-agent, OpenAI message lists) on any file:
 * imported, or skipped with one line, never a crash. The first byte picks the format. */
#include "fuzz_util.h"
#include "commands.h"

#include <dirent.h>
#include <stdint.h>

/* Empties the previous input's replay directory: import refuses a non-empty -o, so without
 * this every input after the first would stop at that check. */
static void remove_replay(const char *out)
{
    char path[512];
    snprintf(path, sizeof path, "%s/traces", out);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char file[1024];
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        unlink(file);
    }
    if (d) closedir(d);
    rmdir(path);
    snprintf(path, sizeof path, "%s/manifest.json", out);
    unlink(path);
    rmdir(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const formats[] = {"mini-swe-agent", "swe-agent", "openai-messages"};
    if (!size) return 0;
    const char *dir = fuzz_dir();
    char in[256], out[256];
    snprintf(in, sizeof in, "%s/input.json", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    fuzz_write(in, data + 1, size - 1);
    remove_replay(out);
    char *argv[] = {"import", "--from", (char *)formats[data[0] % 3], in, "-o", out, NULL};
    extern int optind;
    optind = 0; /* cmd_import parses with getopt */
    cmd_import(6, argv);
    return 0;
}
