/* Files a user hands strobe: a price table (--prices) and an FPGA tap's record file; each is
 * read or refused with a sentence. */
#include "fuzz_util.h"
#include "prices.h"
#include "tap_join.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_dir();
    char path[256], err[512] = "";
    snprintf(path, sizeof path, "%s/prices.json", dir);
    fuzz_write(path, data, size);
    struct price p;
    if (price_lookup("TPU v6e", path, "committed", 0, &p, err, sizeof err) != 0 && !err[0]) abort();
    snprintf(path, sizeof path, "%s/tap_records.bin", dir);
    fuzz_write(path, data, size);
    snprintf(path, sizeof path, "%s/tap_clock.csv", dir);
    fuzz_write(path, data, size > 64 ? 64 : size);
    err[0] = 0;
    struct tap_join *j = tap_join_open(
        dir, "{\"config\":{\"resolved_address\":\"10.0.0.1\",\"url\":\"http://h:80\"}}", err,
        sizeof err);
    if (j) {
        int64_t t;
        for (int64_t off = 0; off < 4096; off += 97)
            tap_join_lookup(j, off, (int64_t)0x0A000002 << 16 | 40000, &t);
        tap_join_close(j);
    }
    return 0;
}
