#include "power.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct power_driver *const drivers[] = {
    &power_driver_emu,  &power_driver_redfish, &power_driver_file, &power_driver_rapl,
    &power_driver_nvml, &power_driver_amdsmi,  &power_driver_ipmi,
};

int power_open(struct power_source *s, const char *spec, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    snprintf(s->spec, sizeof s->spec, "%s", spec);
    const char *colon = strchr(spec, ':');
    size_t nl = colon ? (size_t)(colon - spec) : strlen(spec);
    for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++) {
        if (strlen(drivers[i]->name) == nl && !strncmp(spec, drivers[i]->name, nl)) {
            s->driver = drivers[i];
            if (drivers[i]->open(s, colon ? colon + 1 : "", err, errlen) == 0) return 0;
            power_close(s); /* drivers leave partial state for close to free */
            return -1;
        }
    }
    snprintf(err, errlen,
             "--power '%s': unknown source; use emu:URL, redfish:URL, file:CSV, "
             "rapl, nvml[:GPUS], amdsmi[:GPUS] or ipmi[:HOST]",
             spec);
    return -1;
}

int power_parse_indices(const char *driver, const char *opt, int *idx, int max, char *err,
                        size_t errlen)
{
    int n = 0;
    for (const char *p = opt; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (*p < '0' || *p > '9' || v > INT_MAX || (*end && *end != ',') || n == max) {
            snprintf(err, errlen,
                     "--power %s: the GPU list '%s' must be indices like 0,1,2,3 (at most %d)",
                     driver, opt, max);
            return -1;
        }
        for (int i = 0; i < n; i++)
            if (idx[i] == (int)v) {
                snprintf(err, errlen,
                         "--power %s: GPU %ld is listed twice in '%s': its power would count "
                         "twice; list each GPU once",
                         driver, v, opt);
                return -1;
            }
        idx[n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return n;
}

int power_overlap(const struct power_source *a, const struct power_source *b, char *err,
                  size_t errlen)
{
    if (a->driver != b->driver || strcmp(a->place, b->place)) return 0;
    for (int i = 0; i < a->ndevices; i++)
        for (int j = 0; j < b->ndevices; j++)
            if (!strcmp(a->device_names[i], b->device_names[j])) {
                snprintf(err, errlen,
                         "--power %.200s and --power %.200s both read %s: its power would count "
                         "twice; give each device once",
                         a->spec, b->spec, a->device_names[i]);
                return 1;
            }
    return 0;
}

void power_place_path(struct power_source *s, const char *path)
{
    char *real = realpath(path, NULL);
    snprintf(s->place, sizeof s->place, "%s", real ? real : path);
    free(real);
}

void power_close(struct power_source *s)
{
    if (s->driver && s->driver->close) s->driver->close(s);
    s->driver = NULL;
}
