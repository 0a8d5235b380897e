/* amdsmi: AMD GPUs through libamd_smi.so (ROCm), loaded with dlopen. Per GPU the energy
 * accumulator (amdsmi_get_energy_count: counts × resolution µJ). Options: GPU indices. */
#include "power.h"

#include "clock.h"
#include "must_alloc.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AMDSMI_INIT_AMD_GPUS (1u << 1)

struct amd_impl {
    void *lib;
    int (*shut_down)(void);
    int (*energy)(void *, uint64_t *, float *, uint64_t *);
    void *dev[POWER_MAX_DEVICES];
};

static int amd_open(struct power_source *s, const char *opt, char *err, size_t errlen)
{
    void *lib = dlopen("libamd_smi.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib) lib = dlopen("/opt/rocm/lib/libamd_smi.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(err, errlen,
                 "--power amdsmi: AMD's SMI library libamd_smi.so was not found; "
                 "install ROCm's amd-smi-lib on this host or drop --power amdsmi");
        return -1;
    }
    struct amd_impl *a = must_calloc(1, sizeof *a, "an amdsmi power source");
    a->lib = lib;
    s->impl = a;
    int (*init)(uint64_t) = (int (*)(uint64_t))dlsym(lib, "amdsmi_init");
    int (*sockets)(uint32_t *, void **) =
        (int (*)(uint32_t *, void **))dlsym(lib, "amdsmi_get_socket_handles");
    int (*procs)(void *, uint32_t *, void **) =
        (int (*)(void *, uint32_t *, void **))dlsym(lib, "amdsmi_get_processor_handles");
    a->shut_down = (int (*)(void))dlsym(lib, "amdsmi_shut_down");
    a->energy =
        (int (*)(void *, uint64_t *, float *, uint64_t *))dlsym(lib, "amdsmi_get_energy_count");
    if (!init || !sockets || !procs || !a->energy) {
        snprintf(err, errlen,
                 "--power amdsmi: libamd_smi.so lacks amdsmi_init or the handle and energy "
                 "functions; update ROCm");
        return -1;
    }
    if (init(AMDSMI_INIT_AMD_GPUS)) {
        snprintf(err, errlen, "--power amdsmi: amdsmi_init failed: is the amdgpu driver loaded?");
        a->shut_down = NULL;
        return -1;
    }
    uint32_t ns = 0;
    void *sock[64];
    sockets(&ns, NULL);
    if (ns > 64) ns = 64;
    sockets(&ns, sock);
    void *all[POWER_MAX_DEVICES];
    int total = 0;
    for (uint32_t i = 0; i < ns; i++) {
        uint32_t np = 0;
        procs(sock[i], &np, NULL);
        if (np > (uint32_t)(POWER_MAX_DEVICES - total)) np = (uint32_t)(POWER_MAX_DEVICES - total);
        procs(sock[i], &np, all + total);
        total += (int)np;
    }
    int idx[POWER_MAX_DEVICES], n;
    if (*opt) {
        if ((n = power_parse_indices("amdsmi", opt, idx, POWER_MAX_DEVICES, err, errlen)) < 0)
            return -1;
    } else {
        for (n = 0; n < total; n++) idx[n] = n;
    }
    for (int i = 0; i < n; i++) {
        int k = idx[i];
        if (k >= total) {
            snprintf(err, errlen, "--power amdsmi: GPU %d does not exist (this host has %d)", k,
                     total);
            return -1;
        }
        a->dev[s->ndevices] = all[k];
        snprintf(s->device_names[s->ndevices++], sizeof s->device_names[0], "AMD GPU %d", k);
    }
    if (!s->ndevices) {
        snprintf(err, errlen, "--power amdsmi: this host has no AMD GPU");
        return -1;
    }
    s->accelerator_only = 1;
    snprintf(s->boundary, sizeof s->boundary, "AMD SMI GPU energy counters (socket power)");
    return 0;
}

static int amd_sample(struct power_source *s, struct power_reading *out, int max, char *err,
                      size_t errlen)
{
    struct amd_impl *a = s->impl;
    int n = 0;
    for (int i = 0; i < s->ndevices && n < max; i++) {
        uint64_t acc = 0, ts = 0;
        float res = 0;
        int64_t t = clock_now_ns();
        if (a->energy(a->dev[i], &acc, &res, &ts)) {
            snprintf(err, errlen, "--power amdsmi: %s: energy counter unreadable",
                     s->device_names[i]);
            return -1;
        }
        out[n++] = (struct power_reading){i, t, NAN, (double)acc * res / 1e6};
    }
    return n;
}

static void amd_close(struct power_source *s)
{
    struct amd_impl *a = s->impl;
    if (!a) return;
    if (a->shut_down) a->shut_down();
    dlclose(a->lib);
    free(a);
    s->impl = NULL;
}

const struct power_driver power_driver_amdsmi = {"amdsmi", amd_open, amd_sample, amd_close};
