/* Small helpers for the JSON the analysis writes (results.json). */
#ifndef STROBE_JSON_OUT_H
#define STROBE_JSON_OUT_H
#include <cjson/cJSON.h>
#include <math.h>

/* A figure, or null when it is not finite (JSON has no inf or nan). */
static inline void json_add_num_or_null(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

#endif
