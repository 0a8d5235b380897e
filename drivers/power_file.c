/* file: replays a CSV of timestamped watts, "time_s,watts[,device]" (a header line is
 * skipped). Times below 1e9 are seconds from the first sample (a recording replayed live);
 * larger ones are Unix seconds. Rows are handed out as their time comes. Whole-system unless
 * the option ",accelerator" follows the path. */
#include "power.h"

#include "clock.h"
#include "read_file.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct row {
    double t_s, watts;
    int device;
};

struct file_impl {
    struct row *rows;
    size_t n, next;
    int relative;
    int64_t t0;
};

static int device_index(struct power_source *s, const char *name)
{
    for (int i = 0; i < s->ndevices; i++)
        if (!strcmp(s->device_names[i], name)) return i;
    if (s->ndevices == POWER_MAX_DEVICES) return -1;
    snprintf(s->device_names[s->ndevices], sizeof s->device_names[0], "%s", name);
    return s->ndevices++;
}

static int file_open(struct power_source *s, const char *opt, char *err, size_t errlen)
{
    char path[512];
    snprintf(path, sizeof path, "%s", opt);
    char *comma = strrchr(path, ',');
    if (comma && !strcmp(comma + 1, "accelerator")) {
        *comma = 0;
        s->accelerator_only = 1;
    }
    char *text = read_file(path, NULL);
    if (!text) {
        snprintf(err, errlen,
                 "--power file:%s: cannot read it: %s; give a CSV file of "
                 "time_s,watts[,device] rows",
                 path, strerror(errno));
        return -1;
    }
    struct file_impl *f = calloc(1, sizeof *f);
    size_t cap = 0;
    int lineno = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        lineno++;
        char *end;
        double t = strtod(line, &end);
        if (end == line) {
            if (lineno == 1) continue; /* header */
            snprintf(err, errlen, "--power file:%s line %d: expected time_s,watts[,device]", path,
                     lineno);
            free(text);
            free(f->rows);
            free(f);
            return -1;
        }
        char *p = end;
        if (*p == ',') p++;
        double w = strtod(p, &end);
        if (end == p || !isfinite(w) || w < 0) {
            snprintf(err, errlen, "--power file:%s line %d: watts must be a non-negative number",
                     path, lineno);
            free(text);
            free(f->rows);
            free(f);
            return -1;
        }
        char dev[64] = "file";
        if (*end == ',') {
            snprintf(dev, sizeof dev, "%s", end + 1);
            dev[strcspn(dev, "\r")] = 0;
        }
        if (f->n == cap) {
            cap = cap ? cap * 2 : 256;
            f->rows = realloc(f->rows, cap * sizeof *f->rows);
        }
        f->rows[f->n++] = (struct row){t, w, device_index(s, dev)};
    }
    free(text);
    if (!f->n) {
        snprintf(err, errlen, "--power file:%s holds no sample", path);
        free(f);
        return -1;
    }
    f->relative = f->rows[0].t_s < 1e9;
    snprintf(s->boundary, sizeof s->boundary, "%s",
             s->accelerator_only ? "recorded watts, declared accelerator-only" : "recorded watts");
    s->impl = f;
    return 0;
}

static int file_sample(struct power_source *s, struct power_reading *out, int max, char *err,
                       size_t errlen)
{
    (void)err;
    (void)errlen;
    struct file_impl *f = s->impl;
    int64_t now = clock_now_ns();
    if (f->relative && !f->t0) f->t0 = now - (int64_t)(f->rows[0].t_s * 1e9);
    int n = 0;
    while (n < max && f->next < f->n) {
        const struct row *r = &f->rows[f->next];
        int64_t t = f->relative ? f->t0 + (int64_t)(r->t_s * 1e9) : (int64_t)(r->t_s * 1e9);
        if (t > now) break;
        out[n++] = (struct power_reading){r->device, t, r->watts, NAN};
        f->next++;
    }
    return n;
}

static void file_close(struct power_source *s)
{
    struct file_impl *f = s->impl;
    if (f) free(f->rows);
    free(f);
    s->impl = NULL;
}

const struct power_driver power_driver_file = {"file", file_open, file_sample, file_close};
