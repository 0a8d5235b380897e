/* Helpers for the fuzz targets: a private scratch folder on tmpfs per process, and writing a
 * fuzz input where a file-reading parser expects it. */
#ifndef STROBE_FUZZ_UTIL_H
#define STROBE_FUZZ_UTIL_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline const char *fuzz_dir(void)
{
    static char dir[128];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/strobe-fuzz-%d",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
        mkdir(dir, 0700);
    }
    return dir;
}

static inline void fuzz_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (len) fwrite(data, 1, len, f);
    fclose(f);
}

#endif
