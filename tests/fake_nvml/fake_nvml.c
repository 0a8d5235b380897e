/* A stand-in for NVIDIA's libnvidia-ml.so.1 with the few functions strobe's nvml power source
 * calls, so that the source's whole path (load, open, sample, per-window energy) is tested on
 * machines without a GPU. GPU i draws a known power that depends only on the wall clock:
 *   P_i(t) = 100 W + 50 W * i + a triangle of period 30 s: up 10 W/s for 15 s, then down
 * (continuous, so that neither the counter's interpolation between samples nor the trapezoid
 * over the readings meets a step), and its energy counter is that power's exact integral since
 * the Unix epoch, in mJ, so a test computes any window's true mean power in closed form.
 * Environment: FAKE_NVML_GPUS (default 2), FAKE_NVML_NO_ENERGY=1 (the energy counter is "not
 * supported", as on GPUs older than Volta), FAKE_NVML_INIT_FAIL=1 (nvmlInit fails: no driver). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_DRIVER_NOT_LOADED = 9
};

static int gpu_count(void)
{
    const char *s = getenv("FAKE_NVML_GPUS");
    return s ? atoi(s) : 2;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* the triangle's rise over the first r seconds of a period, and its integral from 0 to r */
static double triangle(double r) { return 10.0 * (r <= 15.0 ? r : 30.0 - r); }

static double triangle_integral(double r)
{
    return r <= 15.0 ? 5.0 * r * r : 1125.0 + 300.0 * (r - 15.0) - 5.0 * (r * r - 225.0);
}

static double watts(int gpu, double t)
{
    return 100.0 + 50.0 * gpu + triangle(t - 30.0 * (long long)(t / 30.0));
}

/* the integral of watts() from 0 to t: whole 30 s periods, then the part period */
static double joules(int gpu, double t)
{
    long long periods = (long long)(t / 30.0);
    double rest = t - 30.0 * periods;
    double base = 100.0 + 50.0 * gpu;
    return periods * (base * 30.0 + triangle_integral(30.0)) + base * rest +
           triangle_integral(rest);
}

int nvmlInit_v2(void)
{
    const char *f = getenv("FAKE_NVML_INIT_FAIL");
    return f && *f == '1' ? NVML_ERROR_DRIVER_NOT_LOADED : NVML_SUCCESS;
}

int nvmlShutdown(void) { return NVML_SUCCESS; }

int nvmlDeviceGetCount_v2(unsigned int *n)
{
    *n = (unsigned int)gpu_count();
    return NVML_SUCCESS;
}

/* a handle is the GPU's index plus one, so that no handle is NULL */
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **dev)
{
    if ((int)i >= gpu_count()) return NVML_ERROR_INVALID_ARGUMENT;
    *dev = (void *)(size_t)(i + 1);
    return NVML_SUCCESS;
}

int nvmlDeviceGetName(void *dev, char *name, unsigned int len)
{
    if (len) {
        strncpy(name, "Fake GPU", len - 1);
        name[len - 1] = 0;
    }
    (void)dev;
    return NVML_SUCCESS;
}

int nvmlDeviceGetPowerUsage(void *dev, unsigned int *mw)
{
    *mw = (unsigned int)(watts((int)(size_t)dev - 1, now_s()) * 1e3);
    return NVML_SUCCESS;
}

int nvmlDeviceGetTotalEnergyConsumption(void *dev, unsigned long long *mj)
{
    const char *off = getenv("FAKE_NVML_NO_ENERGY");
    if (off && *off == '1') return NVML_ERROR_NOT_SUPPORTED;
    *mj = (unsigned long long)(joules((int)(size_t)dev - 1, now_s()) * 1e3);
    return NVML_SUCCESS;
}

const char *nvmlErrorString(int rc)
{
    switch (rc) {
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    default: return "Unknown Error";
    }
}
