/* Power over HTTP: a Redfish Power resource (BMC, libcurl; credentials from
 * STROBE_REDFISH_USER / STROBE_REDFISH_PASSWORD), and strobe-emu's Redfish-shaped endpoint,
 * whose Oem.StrobeEmu.EnergyJoules is an exact energy counter. Each PowerControl member is a
 * device. A reading is stamped at the midpoint of the request on strobe's clock. */
#include "power.h"

#include "clock.h"
#include "http_body.h"
#include "must_alloc.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_impl {
    CURL *curl;
    char url[512];
    struct http_body body;
    int emu;
};

static int fetch(struct power_source *s, cJSON **out, int64_t *t_mid, char *err, size_t errlen)
{
    struct http_impl *h = s->impl;
    http_body_reset(&h->body);
    int64_t t0 = clock_now_ns();
    CURLcode rc = curl_easy_perform(h->curl);
    int64_t t1 = clock_now_ns();
    long status = 0;
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status != 200) {
        snprintf(err, errlen, "%s: %s", h->url,
                 rc != CURLE_OK  ? curl_easy_strerror(rc)
                 : status == 401 ? "HTTP 401: set STROBE_REDFISH_USER and STROBE_REDFISH_PASSWORD"
                                 : "unexpected HTTP status");
        if (rc == CURLE_OK && status != 401) {
            size_t l = strlen(err);
            snprintf(err + l, errlen - l, " %ld", status);
        }
        return -1;
    }
    *out = cJSON_ParseWithLength(h->body.p ? h->body.p : "", h->body.len);
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(*out, "PowerControl"))) {
        snprintf(err, errlen, "%s is not a Redfish Power resource (no PowerControl array)", h->url);
        cJSON_Delete(*out);
        return -1;
    }
    *t_mid = t0 + (t1 - t0) / 2;
    return 0;
}

static int read_members(struct power_source *s, const cJSON *root, int64_t t,
                        struct power_reading *out, int max)
{
    struct http_impl *h = s->impl;
    int n = 0;
    const cJSON *pc;
    cJSON_ArrayForEach (pc, cJSON_GetObjectItemCaseSensitive(root, "PowerControl")) {
        if (n >= max || n >= POWER_MAX_DEVICES) break;
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(pc, "PowerConsumedWatts");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pc, "Oem"),
                                             "StrobeEmu"),
            "EnergyJoules");
        out[n] = (struct power_reading){n, t, cJSON_IsNumber(w) ? w->valuedouble : NAN,
                                        h->emu && cJSON_IsNumber(e) ? e->valuedouble : NAN};
        n++;
    }
    return n;
}

static int open_common(struct power_source *s, const char *url, int emu, int insecure, char *err,
                       size_t errlen)
{
    static int global_init;
    if (!global_init) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        global_init = 1;
    }
    struct http_impl *h = must_calloc(1, sizeof *h, "an HTTP power source");
    h->emu = emu;
    snprintf(h->url, sizeof h->url, "%s", url);
    snprintf(s->place, sizeof s->place, "%s", url);
    h->curl = curl_easy_init();
    curl_easy_setopt(h->curl, CURLOPT_URL, h->url);
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, http_body_collect);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &h->body);
    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
    if (insecure) {
        curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    const char *user = getenv("STROBE_REDFISH_USER"), *pass = getenv("STROBE_REDFISH_PASSWORD");
    if (user && pass) {
        curl_easy_setopt(h->curl, CURLOPT_USERNAME, user);
        curl_easy_setopt(h->curl, CURLOPT_PASSWORD, pass);
    }
    s->impl = h;
    /* a first reading names the devices and proves the source answers */
    cJSON *root;
    int64_t t;
    if (fetch(s, &root, &t, err, errlen)) return -1;
    const cJSON *pc;
    cJSON_ArrayForEach (pc, cJSON_GetObjectItemCaseSensitive(root, "PowerControl")) {
        if (s->ndevices >= POWER_MAX_DEVICES) break;
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(pc, "Name");
        const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(pc, "PhysicalContext");
        snprintf(s->device_names[s->ndevices], sizeof s->device_names[0], "%s%s%s",
                 cJSON_IsString(name) ? name->valuestring : "PowerControl",
                 cJSON_IsString(ctx) ? "/" : "", cJSON_IsString(ctx) ? ctx->valuestring : "");
        s->ndevices++;
    }
    cJSON_Delete(root);
    if (!s->ndevices) {
        snprintf(err, errlen, "%s has an empty PowerControl array", h->url);
        return -1;
    }
    return 0;
}

static int emu_open(struct power_source *s, const char *opt, char *err, size_t errlen)
{
    if (!*opt) {
        snprintf(err, errlen,
                 "--power emu needs the emulator's URL, e.g. emu:http://127.0.0.1:8000");
        return -1;
    }
    char url[512];
    size_t n = strlen(opt);
    while (n && opt[n - 1] == '/') n--;
    snprintf(url, sizeof url, "%.*s/redfish/v1/Chassis/emu/Power", (int)n, opt);
    s->accelerator_only = 1;
    snprintf(s->boundary, sizeof s->boundary,
             "strobe-emu's modelled accelerator power (all accelerators)");
    return open_common(s, url, 1, 0, err, errlen);
}

static int redfish_open(struct power_source *s, const char *opt, char *err, size_t errlen)
{
    char url[512];
    snprintf(url, sizeof url, "%s", opt);
    int insecure = 0, accel = 0;
    for (char *comma; (comma = strrchr(url, ',')) != NULL; *comma = 0) {
        if (!strcmp(comma + 1, "insecure"))
            insecure = 1;
        else if (!strcmp(comma + 1, "accelerator"))
            accel = 1;
        else {
            snprintf(err, errlen, "--power redfish: unknown option '%s' (insecure, accelerator)",
                     comma + 1);
            return -1;
        }
    }
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
        snprintf(err, errlen,
                 "--power redfish needs the Power resource's URL, e.g. "
                 "redfish:https://BMC/redfish/v1/Chassis/1/Power");
        return -1;
    }
    s->accelerator_only = accel;
    snprintf(s->boundary, sizeof s->boundary,
             accel ? "BMC PowerControl members, declared accelerator-only"
                   : "BMC PowerControl members (chassis/system power)");
    return open_common(s, url, 0, insecure, err, errlen);
}

static int http_sample(struct power_source *s, struct power_reading *out, int max, char *err,
                       size_t errlen)
{
    cJSON *root;
    int64_t t;
    if (fetch(s, &root, &t, err, errlen)) return -1;
    int n = read_members(s, root, t, out, max);
    cJSON_Delete(root);
    return n;
}

static void http_close(struct power_source *s)
{
    struct http_impl *h = s->impl;
    if (!h) return;
    if (h->curl) curl_easy_cleanup(h->curl);
    http_body_free(&h->body);
    free(h);
    s->impl = NULL;
}

const struct power_driver power_driver_emu = {"emu", emu_open, http_sample, http_close};
const struct power_driver power_driver_redfish = {"redfish", redfish_open, http_sample, http_close};
