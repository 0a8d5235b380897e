/* nvml: NVIDIA GPUs through libnvidia-ml.so.1, loaded with dlopen so the build needs no CUDA.
 * Per GPU: board power (nvmlDeviceGetPowerUsage, mW) and, where the GPU keeps it, the total
 * energy counter (nvmlDeviceGetTotalEnergyConsumption, mJ), which the analysis prefers.
 * Options: GPU indices "0,1,2,3" (default all). */
#include "power.h"

#include "clock.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvml_ret;
typedef void *nvml_device;

struct nvml_impl {
    void *lib;
    nvml_ret (*shutdown)(void);
    nvml_ret (*power)(nvml_device, unsigned int *);
    nvml_ret (*energy)(nvml_device, unsigned long long *);
    const char *(*error_string)(nvml_ret);
    nvml_device dev[POWER_MAX_DEVICES];
};

static int nvml_open(struct power_source *s, const char *opt, char *err, size_t errlen)
{
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(err, errlen,
                 "--power nvml: NVIDIA's NVML library libnvidia-ml.so.1 was not found "
                 "(%s); install the NVIDIA driver on this host or drop --power nvml",
                 dlerror());
        return -1;
    }
    struct nvml_impl *m = calloc(1, sizeof *m);
    if (!m) {
        dlclose(lib);
        snprintf(err, errlen, "--power nvml: out of memory; free some and run again");
        return -1;
    }
    m->lib = lib;
    nvml_ret (*init)(void) = (nvml_ret(*)(void))dlsym(lib, "nvmlInit_v2");
    nvml_ret (*count)(unsigned int *) =
        (nvml_ret(*)(unsigned int *))dlsym(lib, "nvmlDeviceGetCount_v2");
    nvml_ret (*handle)(unsigned int, nvml_device *) =
        (nvml_ret(*)(unsigned int, nvml_device *))dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
    nvml_ret (*name)(nvml_device, char *, unsigned int) =
        (nvml_ret(*)(nvml_device, char *, unsigned int))dlsym(lib, "nvmlDeviceGetName");
    m->shutdown = (nvml_ret(*)(void))dlsym(lib, "nvmlShutdown");
    m->power = (nvml_ret(*)(nvml_device, unsigned int *))dlsym(lib, "nvmlDeviceGetPowerUsage");
    m->energy = (nvml_ret(*)(nvml_device, unsigned long long *))dlsym(
        lib, "nvmlDeviceGetTotalEnergyConsumption");
    m->error_string = (const char *(*)(nvml_ret))dlsym(lib, "nvmlErrorString");
    s->impl = m;
    if (!init || !count || !handle || !m->power || !m->shutdown) {
        snprintf(err, errlen,
                 "--power nvml: libnvidia-ml.so.1 lacks the NVML v2 functions; update the NVIDIA "
                 "driver");
        return -1;
    }
    nvml_ret rc = init();
    if (rc) {
        snprintf(err, errlen, "--power nvml: nvmlInit failed: %s",
                 m->error_string ? m->error_string(rc) : "error");
        m->shutdown = NULL;
        return -1;
    }
    unsigned int total = 0;
    count(&total);
    int idx[POWER_MAX_DEVICES], n;
    if (*opt) {
        if ((n = power_parse_indices("nvml", opt, idx, POWER_MAX_DEVICES, err, errlen)) < 0)
            return -1;
    } else {
        for (n = 0; n < (int)total && n < POWER_MAX_DEVICES; n++) idx[n] = n;
    }
    for (int i = 0; i < n; i++) {
        if (idx[i] >= (int)total || handle((unsigned int)idx[i], &m->dev[i])) {
            snprintf(err, errlen, "--power nvml: GPU %d does not exist (this host has %u)", idx[i],
                     total);
            return -1;
        }
        char nm[96] = "GPU";
        if (name) name(m->dev[i], nm, sizeof nm);
        snprintf(s->device_names[i], sizeof s->device_names[i], "GPU %d %s", idx[i], nm);
    }
    s->ndevices = n;
    if (!n) {
        snprintf(err, errlen, "--power nvml: this host has no NVIDIA GPU");
        return -1;
    }
    s->accelerator_only = 1;
    snprintf(s->boundary, sizeof s->boundary,
             "NVML board power per GPU (module power, not die + HBM only)");
    return 0;
}

static int nvml_sample(struct power_source *s, struct power_reading *out, int max, char *err,
                       size_t errlen)
{
    struct nvml_impl *m = s->impl;
    int n = 0;
    for (int i = 0; i < s->ndevices && n < max; i++) {
        unsigned int mw = 0;
        unsigned long long mj = 0;
        /* The energy read can take milliseconds (3.9 ms on an H200 with driver 580, against
         * about 1 us for the power read), so the reading is stamped at the middle of that call; the
         * power read follows it at once. */
        int64_t before = clock_now_ns();
        double e = m->energy && m->energy(m->dev[i], &mj) == 0 ? (double)mj / 1e3 : NAN;
        int64_t after = clock_now_ns();
        int64_t t = isnan(e) ? after : before + (after - before) / 2;
        nvml_ret rc = m->power(m->dev[i], &mw);
        if (rc && isnan(e)) {
            snprintf(err, errlen, "--power nvml: %s: %s", s->device_names[i],
                     m->error_string ? m->error_string(rc) : "read failed");
            return -1;
        }
        out[n++] = (struct power_reading){i, t, rc ? NAN : mw / 1e3, e};
    }
    return n;
}

static void nvml_close(struct power_source *s)
{
    struct nvml_impl *m = s->impl;
    if (!m) return;
    if (m->shutdown) m->shutdown();
    dlclose(m->lib);
    free(m);
    s->impl = NULL;
}

const struct power_driver power_driver_nvml = {"nvml", nvml_open, nvml_sample, nvml_close};
