/* `strobe tap`: read an FPGA timestamping tap's records into a run directory, where
 * `strobe analyze` joins them to the run's events (analysis/tap_join.h). */
#include "commands.h"

#include "clock.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef STROBE_HAVE_FPGA
#include "tap.h"

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}
#endif

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: strobe tap SPEC --out RUN_DIR [--seconds S]\n\n"
        "Reads an FPGA timestamping tap's records (hw/README.md) into RUN_DIR/tap_records.bin,\n"
        "with cross-timestamps of its clock in RUN_DIR/tap_clock.csv; `strobe analyze RUN_DIR`\n"
        "then gives every SSE event the tap's time of the frame that carried its last byte.\n\n"
        "  sim:FILE.pcap[,drop-every=N]  the tap's RTL (Verilator model) fed with a capture of\n"
        "                                the run's traffic, at its captured times; drop-every\n"
        "                                loses one record in N (to test the fallback)\n"
        "  sim:iface=NAME                the same model fed live from an interface during the run\n"
        "  xrt:INDEX[,XCLBIN]            an Alveo card running the tap, during the run\n"
        "  --seconds S                   how long to read a live tap (default: until SIGINT)\n");
}

int cmd_tap(int argc, char **argv)
{
    enum { O_OUT = 1, O_SECONDS, O_HELP };
    static const struct option opts[] = {
        {"out", 1, 0, O_OUT}, {"seconds", 1, 0, O_SECONDS}, {"help", 0, 0, O_HELP}, {0}};
    const char *out = NULL;
    double seconds = 0;
    int o;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == O_OUT)
            out = optarg;
        else if (o == O_SECONDS)
            seconds = atof(optarg);
        else if (o == O_HELP || o == 'h') {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr,
                    "strobe tap: unknown or incomplete option '%s'; see strobe tap --help.\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (!out || optind != argc - 1) {
        fprintf(stderr, "strobe tap: give one SPEC and --out RUN_DIR; see strobe tap --help.\n");
        return 2;
    }
#ifndef STROBE_HAVE_FPGA
    (void)seconds;
    fprintf(stderr, "strobe tap: this strobe was built without the tap runtime (install verilator "
                    "and rebuild).\n");
    return 1;
#else
    char err[512], path[4096];
    struct tap *t = tap_open(argv[optind], err, sizeof err);
    if (!t) {
        fprintf(stderr, "strobe tap: %s.\n", err);
        return 1;
    }
    if (tap_start(t, err, sizeof err)) {
        fprintf(stderr, "strobe tap: %s.\n", err);
        tap_close(t);
        return 1;
    }
    snprintf(path, sizeof path, "%s/tap_records.bin", out);
    FILE *rec = fopen(path, "wb");
    snprintf(path, sizeof path, "%s/tap_clock.csv", out);
    FILE *clk = rec ? fopen(path, "w") : NULL;
    if (!rec || !clk) {
        fprintf(stderr, "strobe tap: cannot write into %s: give an existing run directory.\n", out);
        if (rec) fclose(rec);
        tap_close(t);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int64_t start = clock_now_ns(), last_pair = 0, tap_ns, host_ns;
    struct tap_record r[64];
    for (;;) {
        int n = tap_poll(t, r, 64);
        if (n < 0) break;
        for (int i = 0; i < n; i++) {
            uint8_t raw[32];
            tap_record_encode(&r[i], raw);
            fwrite(raw, 32, 1, rec);
        }
        int64_t now = clock_now_ns();
        /* a cross-timestamp a second, and one at each end */
        if ((!last_pair || now - last_pair > 1000000000LL) &&
            tap_read_clock(t, &tap_ns, &host_ns) == 0) {
            fprintf(clk, "%lld,%lld\n", (long long)tap_ns, (long long)host_ns);
            last_pair = now;
        }
        if (stop || (seconds > 0 && now - start > (int64_t)(seconds * 1e9))) break;
        if (!n) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (tap_read_clock(t, &tap_ns, &host_ns) == 0)
        fprintf(clk, "%lld,%lld\n", (long long)tap_ns, (long long)host_ns);
    tap_stop(t);
    int bad = ferror(rec) || ferror(clk);
    fclose(rec);
    fclose(clk);
    printf("tap: %llu records, %llu lost (sequence gaps), written to %s/tap_records.bin\n",
           (unsigned long long)tap_received(t), (unsigned long long)tap_lost(t), out);
    tap_close(t);
    if (bad) {
        fprintf(stderr, "strobe tap: writing the records failed (disk full?).\n");
        return 1;
    }
    return 0;
#endif
}
