#include "prices.h"

#include "read_file.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern const char prices_json[];

int price_lookup(const char *accelerator, const char *prices_file, const char *basis, double given,
                 struct price *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (given > 0) {
        out->usd_per_accelerator_hour = given;
        snprintf(out->basis, sizeof out->basis, "given");
        snprintf(out->source, sizeof out->source, "--price-per-hour");
        return 0;
    }
    char *text = prices_file ? read_file(prices_file, NULL) : NULL;
    if (prices_file && !text) {
        snprintf(err, errlen,
                 "cannot read --prices %s: %s; give a JSON price table file "
                 "(like control/prices.json)",
                 prices_file, strerror(errno));
        return -1;
    }
    cJSON *root = cJSON_Parse(text ? text : prices_json);
    free(text);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "prices");
    if (!cJSON_IsArray(list)) {
        snprintf(err, errlen, "the price table%s%s has no 'prices' array", prices_file ? " " : "",
                 prices_file ? prices_file : "");
        cJSON_Delete(root);
        return -1;
    }
    const cJSON *e, *hit = NULL;
    cJSON_ArrayForEach (e, list) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "accelerator");
        if (cJSON_IsString(a) && !strcasecmp(a->valuestring, accelerator)) hit = e;
    }
    if (!hit) {
        snprintf(err, errlen,
                 "no price for accelerator '%s' in the price table; give "
                 "--price-per-hour USD or a --prices FILE",
                 accelerator);
        cJSON_Delete(root);
        return -1;
    }
    const cJSON *committed =
        cJSON_GetObjectItemCaseSensitive(hit, "committed_1y_usd_per_accelerator_hour");
    const cJSON *on_demand =
        cJSON_GetObjectItemCaseSensitive(hit, "on_demand_usd_per_accelerator_hour");
    int want_on_demand = basis && !strcmp(basis, "on-demand");
    if (!want_on_demand && cJSON_IsNumber(committed)) {
        out->usd_per_accelerator_hour = committed->valuedouble;
        snprintf(out->basis, sizeof out->basis, "committed-1y");
    } else if (cJSON_IsNumber(on_demand)) {
        out->usd_per_accelerator_hour = on_demand->valuedouble;
        snprintf(out->basis, sizeof out->basis, "on-demand");
    } else {
        snprintf(err, errlen, "the price table has no usable price for '%s'", accelerator);
        cJSON_Delete(root);
        return -1;
    }
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(hit, "source");
    const cJSON *taken = cJSON_GetObjectItemCaseSensitive(hit, "taken");
    snprintf(out->source, sizeof out->source, "%s",
             cJSON_IsString(src) ? src->valuestring : "price table");
    snprintf(out->taken, sizeof out->taken, "%s", cJSON_IsString(taken) ? taken->valuestring : "");
    cJSON_Delete(root);
    return 0;
}
