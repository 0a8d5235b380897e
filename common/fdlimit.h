/* Resource limits checked before a run starts: file descriptors (the soft RLIMIT_NOFILE is
 * raised to the hard limit; a run needing more is refused) and memory (a run whose sessions
 * would not fit in the memory available, or under RLIMIT_AS, is refused). */
#ifndef STROBE_FDLIMIT_H
#define STROBE_FDLIMIT_H
#include <stddef.h>

/* Raises the soft limit as far as allowed; returns the limit now in force. */
long fdlimit_raise(void);
/* 0 if `needed` descriptors fit, else -1 with a sentence in err saying what to raise. */
int fdlimit_check(long needed, char *err, size_t errlen);
/* 0 if `bytes` fit in MemAvailable and under RLIMIT_AS, else -1 with a sentence in err
 * naming both figures and what to do. `what` says what the bytes are for. */
int memlimit_check(unsigned long long bytes, const char *what, char *err, size_t errlen);

#endif
