#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tap *tap_open(const char *spec, char *err, size_t errlen, int *bad_spec)
{
    static const struct tap_backend *const all[] = {&tap_backend_sim, &tap_backend_xrt};
    *bad_spec = 1;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        size_t n = strlen(all[i]->name);
        if (strncmp(spec, all[i]->name, n) || (spec[n] && spec[n] != ':')) continue;
        /* "xrt:" would read as plain "xrt" (device 0): a typo's missing part is not a default */
        if (spec[n] == ':' && !spec[n + 1]) {
            snprintf(err, errlen, "tap spec '%s' ends with ':': give what follows it (%s)", spec,
                     i == 0 ? "sim:FILE.pcap or sim:iface=NAME" : "xrt:INDEX[,XCLBIN]");
            return NULL;
        }
        struct tap *t = calloc(1, sizeof *t);
        t->b = all[i];
        t->next_seq = -1;
        int rc = t->b->open(t, spec[n] ? spec + n + 1 : "", err, errlen);
        if (rc) {
            *bad_spec = rc == -2;
            free(t);
            return NULL;
        }
        *bad_spec = 0;
        return t;
    }
    snprintf(err, errlen,
             "unknown tap '%s': give sim:FILE.pcap, sim:iface=NAME or xrt:INDEX[,XCLBIN]", spec);
    return NULL;
}

int tap_start(struct tap *t, char *err, size_t errlen) { return t->b->start(t, err, errlen); }

int tap_poll(struct tap *t, struct tap_record *out, int max)
{
    uint8_t raw[64][32];
    if (max > 64) max = 64;
    int n = t->b->poll(t, raw, max), k = 0;
    for (int i = 0; i < n; i++) {
        if (tap_record_decode(raw[i], &out[k])) continue;
        /* the tap numbers every record it makes, so a gap is a record lost on the way */
        if (t->next_seq >= 0 && out[k].rec_seq != (uint32_t)t->next_seq)
            t->lost += (uint32_t)(out[k].rec_seq - (uint32_t)t->next_seq);
        t->next_seq = (int64_t)out[k].rec_seq + 1;
        t->received++;
        k++;
    }
    return n < 0 ? n : k;
}

int tap_read_clock(struct tap *t, int64_t *tap_ns, int64_t *host_ns)
{
    return t->b->read_clock(t, tap_ns, host_ns);
}

void tap_stop(struct tap *t) { t->b->stop(t); }

void tap_close(struct tap *t)
{
    if (!t) return;
    t->b->close(t);
    free(t);
}

uint64_t tap_lost(const struct tap *t) { return t->lost; }
uint64_t tap_received(const struct tap *t) { return t->received; }

int tap_file_progress(const struct tap *t, char *what, size_t n)
{
    return t->b->file_progress ? t->b->file_progress(t, what, n) : 0;
}
