#include "slo_tiers.h"

#include <stdio.h>
#include <string.h>

extern const char slo_tiers_json[];

cJSON *slo_tiers_select(const char *profile, const char *tier, double speed_p25, double ttft_p95,
                        char *err, size_t errlen)
{
    cJSON *out = cJSON_CreateArray();
    if (speed_p25 >= 0) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "tier", "custom");
        cJSON_AddNumberToObject(t, "output_speed_p25_tokens_per_s", speed_p25);
        cJSON_AddNumberToObject(t, "ttft_p95_s", ttft_p95);
        cJSON_AddItemToArray(out, t);
        return out;
    }
    cJSON *all = cJSON_Parse(slo_tiers_json);
    const cJSON *list =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(all, "models"), profile);
    if (!cJSON_IsArray(list)) {
        snprintf(err, errlen,
                 "--model-profile '%s' is not one of gpt-oss-120b, "
                 "deepseek-v4-pro, deepseek-v4-pro-launch",
                 profile);
        cJSON_Delete(all);
        cJSON_Delete(out);
        return NULL;
    }
    const cJSON *t;
    cJSON_ArrayForEach (t, list) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "tier");
        if (strcmp(tier, "all") && strcmp(tier, name->valuestring)) continue;
        cJSON *copy = cJSON_Duplicate(t, 1);
        char full[128];
        snprintf(full, sizeof full, "%s/%s", profile, name->valuestring);
        cJSON_ReplaceItemInObjectCaseSensitive(copy, "tier", cJSON_CreateString(full));
        cJSON_AddItemToArray(out, copy);
    }
    cJSON_Delete(all);
    if (cJSON_GetArraySize(out) == 0) {
        snprintf(err, errlen, "--slo-tier '%s' is not a tier of %s (try all)", tier, profile);
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}
