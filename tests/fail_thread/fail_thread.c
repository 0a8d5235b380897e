/* An LD_PRELOAD stand-in for pthread_create that refuses one call, for the tests of what
 * strobe does when a thread cannot start (as under a low ulimit -v or a cgroup's pids.max):
 * the STROBE_FAIL_THREAD-th call (from 1) in a process named strobe returns EAGAIN, every
 * other call goes to the real pthread_create. Other processes (the built-in strobe-emu, which
 * inherits the preload) are left alone. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

static _Atomic long calls;

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg)
{
    static create_fn real;
    if (!real) real = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
    const char *which = getenv("STROBE_FAIL_THREAD");
    long n = atomic_fetch_add(&calls, 1) + 1;
    if (which && !strcmp(program_invocation_short_name, "strobe") && n == atol(which))
        return EAGAIN;
    return real(thread, attr, start, arg);
}
