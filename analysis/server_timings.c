#include "server_timings.h"

#include <cjson/cJSON.h>
#include <string.h>

int server_timings_read(const char *data, size_t len, double *prompt_ms, double *predicted_ms)
{
    static const char key[] = "\"timings\"";
    if (!data || !memmem(data, len, key, sizeof key - 1)) return 0; /* the common case: cheap */
    cJSON *root = cJSON_ParseWithLength(data, len);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "timings");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(t, "prompt_ms");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(t, "predicted_ms");
    int ok = cJSON_IsNumber(p) && cJSON_IsNumber(d) && p->valuedouble >= 0 && d->valuedouble >= 0;
    if (ok) {
        *prompt_ms = p->valuedouble;
        *predicted_ms = d->valuedouble;
    }
    cJSON_Delete(root);
    return ok;
}
