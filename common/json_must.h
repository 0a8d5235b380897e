/* cJSON's allocations made must_alloc's (must_alloc.h): cJSON answers running out of memory
 * by leaving out the key or value it was adding, so results.json would lack figures without
 * a word. With these hooks the process exits, status 1, saying so. Each program calls
 * json_must_init once, at start, before any cJSON call. Needs cJSON and common. */
#ifndef STROBE_JSON_MUST_H
#define STROBE_JSON_MUST_H
#include "must_alloc.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

static inline void *json_must_malloc(size_t size) { return must_malloc(size, "JSON"); }

static inline void json_must_init(void)
{
    cJSON_Hooks hooks = {json_must_malloc, free};
    cJSON_InitHooks(&hooks);
}

#endif
