#include "json_must.h"

#include "must_alloc.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

static int installed; /* set once, before any thread starts */

static void *json_must_malloc(size_t size) { return must_malloc(size, "JSON"); }

void json_must_init(void)
{
    installed = 1;
    json_hooks_restore();
}

void json_hooks_restore(void)
{
    cJSON_Hooks hooks = {json_must_malloc, free};
    cJSON_InitHooks(installed ? &hooks : NULL);
}
