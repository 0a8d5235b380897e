/* ipmi: the DCMI power reading of a BMC through FreeIPMI, in band (default: the local BMC
 * through /dev/ipmi0) or over the LAN (ipmi:HOST, IPMI 2.0, credentials from
 * STROBE_IPMI_USER / STROBE_IPMI_PASSWORD). Whole-system power. */
#include "power.h"

#include "clock.h"
#include "must_alloc.h"

#include <freeipmi/freeipmi.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ipmi_impl {
    ipmi_ctx_t ctx;
    fiid_obj_t rs;
};

static void ipmi_close_src(struct power_source *s)
{
    struct ipmi_impl *p = s->impl;
    if (!p) return;
    if (p->rs) fiid_obj_destroy(p->rs);
    if (p->ctx) {
        ipmi_ctx_close(p->ctx);
        ipmi_ctx_destroy(p->ctx);
    }
    free(p);
    s->impl = NULL;
}

static int ipmi_open_src(struct power_source *s, const char *opt, char *err, size_t errlen)
{
    struct ipmi_impl *p = must_calloc(1, sizeof *p, "an IPMI power source");
    s->impl = p;
    p->ctx = ipmi_ctx_create();
    if (!p->ctx) {
        snprintf(err, errlen, "--power ipmi: FreeIPMI could not create a context");
        return -1;
    }
    if (*opt) {
        const char *user = getenv("STROBE_IPMI_USER"), *pass = getenv("STROBE_IPMI_PASSWORD");
        if (ipmi_ctx_open_outofband_2_0(p->ctx, opt, user, pass, NULL, 0, IPMI_PRIVILEGE_LEVEL_USER,
                                        3, 0, 0, 0, 0) < 0) {
            snprintf(err, errlen,
                     "--power ipmi:%s: cannot open an IPMI 2.0 session: %s (set "
                     "STROBE_IPMI_USER and STROBE_IPMI_PASSWORD)",
                     opt, ipmi_ctx_errormsg(p->ctx));
            return -1;
        }
        snprintf(s->device_names[0], sizeof s->device_names[0], "BMC %s", opt);
    } else {
        ipmi_driver_type_t type;
        int found = ipmi_ctx_find_inband(p->ctx, &type, 0, 0, 0, NULL, 0, 0);
        if (found != 1) {
            snprintf(err, errlen,
                     "--power ipmi: no in-band IPMI device on this host (/dev/ipmi0); "
                     "load the ipmi_si and ipmi_devintf modules, or give ipmi:BMC_HOST");
            return -1;
        }
        snprintf(s->device_names[0], sizeof s->device_names[0], "local BMC");
    }
    p->rs = fiid_obj_create(tmpl_cmd_dcmi_get_power_reading_rs);
    s->ndevices = 1;
    snprintf(s->boundary, sizeof s->boundary, "DCMI system power reading (whole system)");
    struct power_reading r;
    return s->driver->sample(s, &r, 1, err, errlen) < 0 ? -1 : 0;
}

static int ipmi_sample(struct power_source *s, struct power_reading *out, int max, char *err,
                       size_t errlen)
{
    struct ipmi_impl *p = s->impl;
    if (max < 1) return 0;
    int64_t t = clock_now_ns();
    uint64_t watts = 0;
    if (ipmi_cmd_dcmi_get_power_reading(
            p->ctx, IPMI_DCMI_POWER_READING_MODE_SYSTEM_POWER_STATISTICS, 0, p->rs) < 0 ||
        fiid_obj_get(p->rs, "current_power", &watts) < 0) {
        snprintf(err, errlen, "--power ipmi: DCMI power reading failed: %s",
                 ipmi_ctx_errormsg(p->ctx));
        return -1;
    }
    out[0] = (struct power_reading){0, t, (double)watts, NAN};
    return 1;
}

const struct power_driver power_driver_ipmi = {"ipmi", ipmi_open_src, ipmi_sample, ipmi_close_src};
