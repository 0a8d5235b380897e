#include "fdlimit.h"

#include <stdio.h>
#include <sys/resource.h>

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
             "(ulimit -n %ld, or LimitNOFILE= for a service) or lower the concurrency",
             needed, have, needed);
    return -1;
}
