/* File descriptors: raise the soft RLIMIT_NOFILE to the hard limit at start, and refuse up
 * front a run that would need more descriptors than the system allows. */
#ifndef STROBE_FDLIMIT_H
#define STROBE_FDLIMIT_H
#include <stddef.h>

/* Raises the soft limit as far as allowed; returns the limit now in force. */
long fdlimit_raise(void);
/* 0 if `needed` descriptors fit, else -1 with a sentence in err saying what to raise. */
int fdlimit_check(long needed, char *err, size_t errlen);

#endif
