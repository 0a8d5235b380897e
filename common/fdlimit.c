#include "fdlimit.h"

#include <stdio.h>
#include <sys/resource.h>

/* what sets the sessions a run is sized for: --concurrency auto is sized for its ceiling */
#define SESSION_FLAGS                                                                              \
    "the largest --concurrency, --max-concurrency under --concurrency auto, --max-in-flight, "     \
    "--max-agents"

long fdlimit_raise(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (long)rl.rlim_cur;
}

int fdlimit_check(long needed, char *err, size_t errlen)
{
    long have = fdlimit_raise();
    if (have < 0 || needed <= have) return 0;
    snprintf(err, errlen,
             "this run needs about %ld file descriptors but RLIMIT_NOFILE allows %ld; raise it "
             "(ulimit -n %ld, or LimitNOFILE= for a service) or lower the most sessions the run "
             "may hold (" SESSION_FLAGS ")",
             needed, have, needed);
    return -1;
}

int memlimit_check(unsigned long long bytes, const char *what, char *err, size_t errlen)
{
    unsigned long long avail = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &avail) == 1) {
            avail *= 1024;
            break;
        }
    if (f) fclose(f);
    struct rlimit as;
    unsigned long long limit = avail;
    const char *which = "available memory (MemAvailable)";
    if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY &&
        (!limit || (unsigned long long)as.rlim_cur < limit)) {
        limit = (unsigned long long)as.rlim_cur;
        which = "the address-space limit (RLIMIT_AS)";
    }
    if (!limit || bytes <= limit) return 0;
    snprintf(err, errlen,
             "%s needs about %llu MiB but %s is %llu MiB; lower the most sessions the run may "
             "hold (" SESSION_FLAGS "), free memory, or raise the limit (ulimit -v)",
             what, bytes >> 20, which, limit >> 20);
    return -1;
}
