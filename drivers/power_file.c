/* file: replays a CSV of timestamped watts, "time_s,watts[,device]" (a header line is
 * skipped), in time order. Times below 1e9 are seconds from the first sample (a recording
 * replayed live); larger ones are Unix seconds. Rows are handed out as their time comes. A
 * row that cannot be read as such (a unit after the watts, a time going backwards) refuses
 * the file, naming its line. Whole-system unless the option ",accelerator" follows the path. */
#include "power.h"

#include "clock.h"
#include "read_file.h"
#include "must_alloc.h"

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
    struct file_impl *f = must_calloc(1, sizeof *f, "a power file source");
    size_t cap = 0;
    int lineno = 0;
    char why[200] = "";
    int first = 1; /* the first line that is not blank: it may be a header */
    /* line by line, blank ones counted (strtok skipped them), so that a message names the
     * line an editor shows */
    for (char *line = text, *nl; line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl) *nl = 0;
        lineno++;
        if (!line[strspn(line, " \t\r")]) continue; /* blank */
        int header_may_be = first;
        first = 0;
        char *end;
        double t = strtod(line, &end);
        if (end == line && header_may_be) continue; /* header */
        if (end == line || *end != ',') {
            snprintf(why, sizeof why, "expected time_s,watts[,device]");
            break;
        }
        /* times become int64 nanoseconds: up to 9e9 s (Unix seconds to the year 2255) */
        if (!(t >= 0 && t <= 9e9)) {
            snprintf(why, sizeof why, "time_s must be seconds from 0 to 9e9");
            break;
        }
        /* rows are handed out as their time comes: a row earlier than the one before it would
         * wait behind it and land out of order in the series */
        if (f->n && t < f->rows[f->n - 1].t_s) {
            snprintf(why, sizeof why,
                     "time %.17g is before the previous row's %.17g; sort the rows by time", t,
                     f->rows[f->n - 1].t_s);
            break;
        }
        char *p = end + 1;
        double w = strtod(p, &end);
        if (end == p || !isfinite(w) || w < 0 || w > 1e12) {
            snprintf(why, sizeof why, "watts must be a number from 0 to 1e12");
            break;
        }
        char dev[64] = "file";
        if (*end == ',') {
            snprintf(dev, sizeof dev, "%s", end + 1);
            dev[strcspn(dev, "\r")] = 0;
        } else {
            /* "100 W" or "100kW" would be read as 100 watts: nothing but blanks may follow */
            const char *rest = end + strspn(end, " \t\r");
            if (*rest) {
                int len = (int)strcspn(end, "\r");
                snprintf(why, sizeof why,
                         "'%.*s' follows the watts; give them as a plain number of watts, then "
                         "at most ,device",
                         len < 40 ? len : 40, end);
                break;
            }
        }
        if (f->n == cap) {
            cap = cap ? cap * 2 : 256;
            f->rows = must_realloc(f->rows, cap * sizeof *f->rows, "a power file's rows");
        }
        f->rows[f->n++] = (struct row){t, w, device_index(s, dev)};
    }
    if (why[0]) {
        snprintf(err, errlen, "--power file:%s line %d: %s", path, lineno, why);
        free(text);
        free(f->rows);
        free(f);
        return -1;
    }
    free(text);
    if (!f->n) {
        snprintf(err, errlen, "--power file:%s holds no sample", path);
        free(f);
        return -1;
    }
    f->relative = f->rows[0].t_s < 1e9;
    power_place_path(s, path);
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
