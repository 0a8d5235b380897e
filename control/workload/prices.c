#include "prices.h"

#include "read_file.h"
#include "json_whole.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
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
                 "(like control/workload/prices.json)",
                 prices_file, strerror(errno));
        return -1;
    }
    /* the whole file must be the one table: cJSON_Parse stops after the first value, so a
     * second table pasted below the first, or a stray character, would be silently dropped */
    const char *json = text ? text : prices_json;
    char table[300];
    snprintf(table, sizeof table, "the price table%s%s", prices_file ? " " : "",
             prices_file ? prices_file : "");
    char where[80];
    int more;
    cJSON *root = json_parse_whole(json, &more, where, sizeof where);
    if (!root) {
        snprintf(err, errlen,
                 "%s %s %s; give one JSON object shaped like control/workload/prices.json", table,
                 more ? "holds more after its JSON object" : "is not valid JSON", where);
        free(text);
        return -1;
    }
    free(text);
    char twice[200] = "";
    if (json_key_twice(root, twice, sizeof twice)) {
        snprintf(err, errlen, "%s sets %s twice; give each field once", table, twice);
        cJSON_Delete(root);
        return -1;
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "prices");
    if (!cJSON_IsArray(list)) {
        snprintf(err, errlen, "%s has no 'prices' array", table);
        cJSON_Delete(root);
        return -1;
    }
    const cJSON *e, *hit = NULL;
    cJSON_ArrayForEach (e, list) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "accelerator");
        if (!cJSON_IsString(a) || strcasecmp(a->valuestring, accelerator)) continue;
        if (hit) {
            snprintf(err, errlen,
                     "%s lists accelerator '%s' twice; give each accelerator one entry", table,
                     a->valuestring);
            cJSON_Delete(root);
            return -1;
        }
        hit = e;
    }
    if (!hit) {
        snprintf(err, errlen,
                 "no price for accelerator '%s' in the price table; give "
                 "--price-per-hour USD or a --prices FILE",
                 accelerator);
        cJSON_Delete(root);
        return -1;
    }
    /* a price is known (a positive, finite number) or unknown (null or absent): a negative
     * or zero price would give a negative or zero cost per token, which reads as a result,
     * and a string would be skipped as if unknown */
    static const char *const fields[] = {"on_demand_usd_per_accelerator_hour",
                                         "committed_1y_usd_per_accelerator_hour"};
    for (int i = 0; i < 2; i++) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(hit, fields[i]);
        if (!f || cJSON_IsNull(f)) continue;
        if (!cJSON_IsNumber(f) || !isfinite(f->valuedouble) || f->valuedouble <= 0) {
            /* cJSON prints an infinite number (read from 1e999) as null: say it */
            char num[32];
            snprintf(num, sizeof num, "%g", f->valuedouble);
            char *v = cJSON_IsNumber(f) ? strdup(num) : cJSON_PrintUnformatted(f);
            snprintf(
                err, errlen,
                "in %s, the entry for '%s' has %s %.40s; a price must be a positive number of USD "
                "per accelerator-hour, or null when unknown",
                table, accelerator, fields[i], v ? v : "?");
            free(v);
            cJSON_Delete(root);
            return -1;
        }
    }
    const cJSON *committed = cJSON_GetObjectItemCaseSensitive(hit, fields[1]);
    const cJSON *on_demand = cJSON_GetObjectItemCaseSensitive(hit, fields[0]);
    /* --price-basis committed asked for that price: another one in its place would be a cost
     * on a basis nobody chose, so it is refused. Without --price-basis the committed price is
     * preferred and on-demand taken when none is known, which results.json's price_basis
     * records. */
    int want_on_demand = basis && !strcmp(basis, "on-demand");
    int must_commit = basis && !strcmp(basis, "committed");
    if (must_commit && !cJSON_IsNumber(committed)) {
        snprintf(err, errlen,
                 "--price-basis committed: %s has no 1-year committed price for '%s' (%s is "
                 "null or absent); give --price-basis on-demand, a --prices FILE with that "
                 "price, or --price-per-hour USD",
                 table, accelerator, fields[1]);
        cJSON_Delete(root);
        return -1;
    }
    if (!want_on_demand && cJSON_IsNumber(committed)) {
        out->usd_per_accelerator_hour = committed->valuedouble;
        snprintf(out->basis, sizeof out->basis, "committed-1y");
    } else if (cJSON_IsNumber(on_demand)) {
        out->usd_per_accelerator_hour = on_demand->valuedouble;
        snprintf(out->basis, sizeof out->basis, "on-demand");
    } else {
        snprintf(err, errlen, "%s has no %s price for '%s'; give %s, or --price-per-hour USD",
                 table, want_on_demand ? "on-demand" : "usable", accelerator,
                 want_on_demand ? "--price-basis committed" : "a --prices FILE with one");
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
