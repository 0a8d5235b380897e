/* `strobe tap`: read an FPGA timestamping tap's records into a run directory, where
 * `strobe analyze` joins them to the run's events (analysis/tap_join.h). */
#include "flag_once.h"
#include "commands.h"

#include "clock.h"
#include "num_arg.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* --seconds: from a millisecond (the poll's sleep) to 10^8 s, so its nanoseconds fit 64 bits */
#define SECONDS_MIN 0.001
#define SECONDS_MAX 1e8

#ifdef STROBE_HAVE_FPGA
#include "tap.h"

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* One file the tap writes, with the first error writing it: a full disk must end the
 * command with the file's name, not leave it empty behind a success. */
struct out {
    FILE *f;
    char path[4096];
    int err; /* errno of the first failed write; 0 while every write went in */
};

/* What stands at a path the tap will not write over, for the sentence refusing it. */
static const char *kind_at(const char *path)
{
    struct stat st;
    if (lstat(path, &st)) return "something";
    if (S_ISLNK(st.st_mode)) return "a symbolic link";
    if (S_ISFIFO(st.st_mode)) return "a FIFO";
    if (S_ISDIR(st.st_mode)) return "a directory";
    return S_ISREG(st.st_mode) ? "a file" : "a special file";
}

/* A new file only: O_EXCL|O_NOFOLLOW, so an earlier tap's records are not overwritten
 * without a word, a link planted there does not redirect the write to its target, and a
 * FIFO does not block the command for ever. */
static int out_open(struct out *o, const char *dir, const char *name, const char *mode)
{
    o->err = 0;
    o->f = NULL;
    /* a cut path would name another file */
    if ((size_t)snprintf(o->path, sizeof o->path, "%s/%s", dir, name) >= sizeof o->path) {
        fprintf(stderr, "strobe tap: --out is too long for the paths of the files under it: "
                        "give a shorter path.\n");
        return -1;
    }
    int fd = open(o->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd >= 0 && !(o->f = fdopen(fd, mode))) close(fd);
    if (o->f) return 0;
    if (errno == EEXIST || errno == ELOOP)
        fprintf(stderr,
                "strobe tap: %s is already there (%s), and strobe tap writes only new files: "
                "remove it, or give another --out.\n",
                o->path, kind_at(o->path));
    else
        fprintf(stderr,
                "strobe tap: cannot create %s: %s; give an existing, writable run "
                "directory as --out.\n",
                o->path, strerror(errno));
    return -1;
}

static void out_failed(struct out *o)
{
    if (!o->err) o->err = errno ? errno : EIO;
}

static void out_write(struct out *o, const void *p, size_t n)
{
    errno = 0;
    if (!o->err && fwrite(p, 1, n, o->f) != n) out_failed(o);
}

static void out_pair(struct out *o, int64_t tap_ns, int64_t host_ns)
{
    errno = 0;
    if (!o->err && fprintf(o->f, "%lld,%lld\n", (long long)tap_ns, (long long)host_ns) < 0)
        out_failed(o);
}

/* Flushed, synced and closed: stdio's buffer, and the filesystem's delayed allocation, can
 * hold a full disk back until one of these, so each one's result counts. 0, or -1 after a
 * sentence naming the file. */
static int out_close(struct out *o)
{
    errno = 0;
    if (!o->err && fflush(o->f)) out_failed(o);
    /* EINVAL: a file that cannot be synced (not a disk's): nothing to wait for */
    if (!o->err && fsync(fileno(o->f)) && errno != EINVAL) out_failed(o);
    errno = 0;
    if (fclose(o->f) && !o->err) out_failed(o);
    if (o->err)
        fprintf(stderr,
                "strobe tap: writing %s failed: %s; free space there, remove the tap files "
                "left in it (or give another --out) and run strobe tap again.\n",
                o->path, strerror(o->err));
    return o->err ? -1 : 0;
}

/* How a reading ended. */
enum read_end {
    READ_ALL,     /* the source is exhausted (a capture read to its end) */
    READ_STOPPED, /* --seconds, a signal or a failed write stopped it first */
    READ_BROKEN,  /* the source turned out broken (t->why says how) */
};

/* Records until the source is exhausted (sim), --seconds have passed (0: no limit), a signal
 * comes or a write fails; a cross-timestamp of the clocks a second, and one at each end. */
static enum read_end read_tap(struct tap *t, double seconds, struct out *rec, struct out *clk)
{
    int64_t start = clock_now_ns(), limit = (int64_t)(seconds * 1e9), last_pair = 0;
    int64_t tap_ns, host_ns;
    struct tap_record r[64];
    int n;
    for (;;) {
        n = tap_poll(t, r, 64);
        if (n < 0) break;
        for (int i = 0; i < n; i++) {
            uint8_t raw[32];
            tap_record_encode(&r[i], raw);
            out_write(rec, raw, sizeof raw);
        }
        int64_t now = clock_now_ns();
        if ((!last_pair || now - last_pair > 1000000000LL) &&
            tap_read_clock(t, &tap_ns, &host_ns) == 0) {
            out_pair(clk, tap_ns, host_ns);
            last_pair = now;
        }
        /* a write that failed ends the reading: what follows could not be kept either */
        if (stop || rec->err || clk->err || (limit && now - start > limit)) break;
        if (!n) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (tap_read_clock(t, &tap_ns, &host_ns) == 0) out_pair(clk, tap_ns, host_ns);
    return n < -1 ? READ_BROKEN : n == -1 ? READ_ALL : READ_STOPPED;
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
        "                                loses one record in N, 2 to 1e9 (to test the fallback)\n"
        "  sim:iface=NAME[,drop-every=N] the same model fed live from an interface during the run\n"
        "  xrt[:INDEX[,XCLBIN]]          an Alveo card running the tap, during the run (device 0\n"
        "                                when no INDEX)\n"
        "  --out RUN_DIR                 an existing directory (a run's) with no tap files yet\n"
        "  --seconds S                   how long to read a live tap, 0.001 to 1e8 (default:\n"
        "                                until SIGINT); a capture is read to its end unless\n"
        "                                --seconds or SIGINT stop it first\n\n"
        "Exit status: 0 done, 1 failed, 2 bad command line, 3 a capture not read to its end\n"
        "(stopped by --seconds or a signal: the records read are kept, and how far is said).\n");
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
    struct flag_once seen = {0};
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (flag_once(&seen, opts, o, optarg, "tap", NULL)) return 2;
        if (o == O_OUT)
            out = optarg;
        else if (o == O_SECONDS) {
            if (num_arg("tap", "seconds", optarg, SECONDS_MIN, SECONDS_MAX, 0, &seconds)) return 2;
        } else if (o == O_HELP || o == 'h') {
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
    /* "" would make the files' paths "/tap_records.bin": the filesystem's root */
    if (!*out) {
        fprintf(stderr, "strobe tap: --out is empty: give the run directory to write the tap's "
                        "files into; see strobe tap --help.\n");
        return 2;
    }
#ifndef STROBE_HAVE_FPGA
    (void)seconds;
    fprintf(stderr, "strobe tap: this strobe was built without the tap runtime (install verilator "
                    "and rebuild).\n");
    return 1;
#else
    char err[512];
    int bad_spec;
    struct tap *t = tap_open(argv[optind], err, sizeof err, &bad_spec);
    if (!t) {
        if (bad_spec)
            fprintf(stderr, "strobe tap: %s; see strobe tap --help.\n", err);
        else
            fprintf(stderr, "strobe tap: %s.\n", err);
        return bad_spec ? 2 : 1;
    }
    if (tap_start(t, err, sizeof err)) {
        fprintf(stderr, "strobe tap: %s.\n", err);
        tap_close(t);
        return 1;
    }
    struct out rec, clk;
    if (out_open(&rec, out, "tap_records.bin", "wb") || out_open(&clk, out, "tap_clock.csv", "w")) {
        /* the records file made just now goes again, so that running again is not refused */
        if (rec.f) {
            fclose(rec.f);
            unlink(rec.path);
        }
        tap_close(t);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    enum read_end end = read_tap(t, seconds, &rec, &clk);
    tap_stop(t);
    /* both closed whatever happened, and each failure said */
    int bad_rec = out_close(&rec), bad_clk = out_close(&clk);
    /* a capture has an end: stopped before it, the run's tap records are only a part (a live
     * tap, though, is meant to be stopped by --seconds or a signal) */
    char how_far[1600];
    int cut = end == READ_STOPPED && !bad_rec && !bad_clk &&
              tap_file_progress(t, how_far, sizeof how_far);
    if (end == READ_BROKEN)
        fprintf(stderr, "strobe tap: %s (the %llu records before it are in %s).\n", t->why,
                (unsigned long long)tap_received(t), rec.path);
    else if (!bad_rec && !bad_clk)
        printf("tap: %llu records, %llu lost (sequence gaps), written to %s%s\n",
               (unsigned long long)tap_received(t), (unsigned long long)tap_lost(t), rec.path,
               cut ? " (incomplete: the capture was not read to its end)" : "");
    if (cut)
        fprintf(stderr,
                "strobe tap: %s before the capture's end: %s (the %llu records read are in %s); "
                "for all of them, remove tap_records.bin and tap_clock.csv and run strobe tap "
                "again%s, letting it finish.\n",
                stop ? "stopped by a signal" : "--seconds ran out", how_far,
                (unsigned long long)tap_received(t), rec.path, stop ? "" : " without --seconds");
    tap_close(t);
    /* the summary is the command's result: lost to a full disk or closed pipe, it failed */
    int lost = fflush(stdout) ? errno : ferror(stdout) ? EIO : 0;
    if (lost) {
        fprintf(stderr,
                "strobe tap: writing the summary to standard output failed: %s; the records "
                "are in %s and only the summary line was lost: send stdout where it can be "
                "written next time.\n",
                strerror(lost), rec.path);
        return 1;
    }
    if (end == READ_BROKEN || bad_rec || bad_clk) return 1;
    return cut ? 3 : 0;
#endif
}
