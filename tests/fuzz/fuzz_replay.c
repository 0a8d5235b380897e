/* The replay loader (AA's format) on any trace file: load or a sentence, never a crash. */
#include "fuzz_util.h"
#include "replay.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/traces", dir);
    mkdir(path, 0700);
    static const char manifest[] = "{\"tasks\":[{\"task_id\":\"t\",\"trace\":\"traces/"
                                   "t.jsonl\",\"model_calls\":1,\"tool_calls\":0}]}";
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    fuzz_write(path, manifest, sizeof manifest - 1);
    snprintf(path, sizeof path, "%s/traces/t.jsonl", dir);
    fuzz_write(path, data, size);
    struct replay r;
    char err[512];
    if (replay_load(dir, &r, err, sizeof err) == 0)
        replay_free(&r);
    else if (!err[0])
        abort();
    return 0;
}
