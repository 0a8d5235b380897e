/* JSON numbers as integers without undefined behaviour: casting a double outside int64's
 * range is undefined in C, and server responses, event logs and trace files are outside
 * input. Needs cJSON (include it where this is used). */
#ifndef STROBE_JSON_NUM_H
#define STROBE_JSON_NUM_H
#include <cjson/cJSON.h>
#include <stdint.h>

#define JSON_INT_LIMIT 4611686018427387904.0 /* 2^62: the difference of two still fits */

/* 1 with *out set (truncated toward zero) when j is a number within +-2^62; else 0. */
static inline int json_int64(const cJSON *j, int64_t *out)
{
    if (!cJSON_IsNumber(j) ||
        !(j->valuedouble >= -JSON_INT_LIMIT && j->valuedouble <= JSON_INT_LIMIT))
        return 0;
    *out = (int64_t)j->valuedouble;
    return 1;
}

#endif
