/* The power-source seam: open a source from its --power spec, sample it (watts and, where
 * the device keeps one, a cumulative energy counter), close it. A source may cover several
 * devices (GPUs, RAPL domains); each sample names its device. Sampling runs on the
 * telemetry thread only, never on the dataplane.
 *
 * Specs: emu:URL  redfish:URL[,insecure]  file:PATH.csv  rapl[:POWERCAP_DIR]
 *        nvml[:0,1,…]  amdsmi[:0,1,…]  ipmi[:HOST] */
#ifndef STROBE_POWER_H
#define STROBE_POWER_H
#include <stddef.h>
#include <stdint.h>

#define POWER_MAX_DEVICES 64

struct power_reading {
    int device;      /* index into the source's devices */
    int64_t t_ns;    /* when it was taken, CLOCK_REALTIME */
    double watts;    /* NAN when the device only keeps energy */
    double energy_j; /* cumulative, NAN when the device keeps none */
};

struct power_source {
    const struct power_driver *driver;
    void *impl;
    char spec[512];
    int ndevices;
    char device_names[POWER_MAX_DEVICES][64];
    /* where the device names hold (the drivers set it): a CSV file's or a powercap tree's real
     * path, a URL; "" for the host's own GPUs and BMC. Two sources of one driver and one place
     * that name a device alike read that one device. */
    char place[512];
    int accelerator_only; /* 1: accelerator power (what per-MW uses); 0: whole system/host */
    char boundary[160];   /* what the figure covers, in words */
};

struct power_driver {
    const char *name;
    /* options: the spec after "NAME:" ("" when none). 0, or -1 with one sentence in err. */
    int (*open)(struct power_source *s, const char *options, char *err, size_t errlen);
    /* Up to max readings taken now; returns how many, or -1 with err set. */
    int (*sample)(struct power_source *s, struct power_reading *out, int max, char *err,
                  size_t errlen);
    void (*close)(struct power_source *s);
};

/* A GPU list "0,1,3" (the options of nvml and amdsmi, named by `driver` in the sentence) into
 * idx: each a whole number, none twice, at most max. How many, or -1 with one sentence in err. */
int power_parse_indices(const char *driver, const char *opt, int *idx, int max, char *err,
                        size_t errlen);

/* Opens a source from a --power spec. 0, or -1 with one sentence in err. */
int power_open(struct power_source *s, const char *spec, char *err, size_t errlen);
void power_close(struct power_source *s);
/* Whether two opened sources read one device (its watts would count twice): 1 with one
 * sentence naming it in err, else 0. */
int power_overlap(const struct power_source *a, const struct power_source *b, char *err,
                  size_t errlen);
/* The real path of path (or path itself where it cannot be resolved) into place. */
void power_place_path(struct power_source *s, const char *path);

extern const struct power_driver power_driver_emu, power_driver_redfish, power_driver_file,
    power_driver_rapl, power_driver_nvml, power_driver_amdsmi, power_driver_ipmi;

#endif
