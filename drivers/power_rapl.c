/* rapl: CPU package and DRAM energy from the Linux powercap tree (default
 * /sys/class/powercap; a different root lets tests use a fake tree). Every intel-rapl zone
 * with an energy_uj file is a device; counter wrap-around (max_energy_range_uj) is undone
 * here. Host power, never accelerator power. */
#include "power.h"

#include "clock.h"
#include "must_alloc.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rapl_impl {
    char path[POWER_MAX_DEVICES][512];
    double range_uj[POWER_MAX_DEVICES], last_uj[POWER_MAX_DEVICES], wraps[POWER_MAX_DEVICES];
    int seen[POWER_MAX_DEVICES];
};

static int read_number(const char *path, double *v)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int ok = fscanf(f, "%lf", v) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int rapl_open(struct power_source *s, const char *opt, char *err, size_t errlen)
{
    const char *root = *opt ? opt : "/sys/class/powercap";
    DIR *d = opendir(root);
    if (!d) {
        snprintf(err, errlen,
                 "--power rapl: cannot read %s (%s); this host has no powercap "
                 "RAPL interface, or it is not readable (run as root)",
                 root, strerror(errno));
        return -1;
    }
    char *names[256];
    int nn = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nn < 256)
        if (!strncmp(e->d_name, "intel-rapl:", 11)) names[nn++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)nn, sizeof *names, by_name);
    struct rapl_impl *r = must_calloc(1, sizeof *r, "a RAPL power source");
    power_place_path(s, root);
    for (int i = 0; i < nn; i++) {
        char p[600];
        double v;
        snprintf(p, sizeof p, "%s/%s/energy_uj", root, names[i]);
        if (s->ndevices < POWER_MAX_DEVICES && read_number(p, &v) == 0) {
            int k = s->ndevices++;
            snprintf(r->path[k], sizeof r->path[k], "%s", p);
            snprintf(p, sizeof p, "%s/%s/max_energy_range_uj", root, names[i]);
            if (read_number(p, &r->range_uj[k])) r->range_uj[k] = 0;
            char zone[64] = "";
            snprintf(p, sizeof p, "%s/%s/name", root, names[i]);
            FILE *f = fopen(p, "r");
            if (f) {
                if (!fgets(zone, sizeof zone, f)) zone[0] = 0;
                fclose(f);
            }
            zone[strcspn(zone, "\n")] = 0;
            snprintf(s->device_names[k], sizeof s->device_names[k], "%s %s", names[i], zone);
        }
        free(names[i]);
    }
    if (!s->ndevices) {
        snprintf(err, errlen, "--power rapl: no readable intel-rapl:*/energy_uj under %s", root);
        free(r);
        return -1;
    }
    snprintf(s->boundary, sizeof s->boundary,
             "host CPU packages and DRAM (RAPL), not accelerators");
    s->impl = r;
    return 0;
}

static int rapl_sample(struct power_source *s, struct power_reading *out, int max, char *err,
                       size_t errlen)
{
    struct rapl_impl *r = s->impl;
    int n = 0;
    for (int k = 0; k < s->ndevices && n < max; k++) {
        double uj;
        if (read_number(r->path[k], &uj)) {
            snprintf(err, errlen, "--power rapl: %s stopped answering", r->path[k]);
            return -1;
        }
        if (r->seen[k] && uj < r->last_uj[k] && r->range_uj[k] > 0) r->wraps[k] += r->range_uj[k];
        r->seen[k] = 1;
        r->last_uj[k] = uj;
        out[n++] = (struct power_reading){k, clock_now_ns(), NAN, (uj + r->wraps[k]) / 1e6};
    }
    return n;
}

static void rapl_close(struct power_source *s)
{
    free(s->impl);
    s->impl = NULL;
}

const struct power_driver power_driver_rapl = {"rapl", rapl_open, rapl_sample, rapl_close};
