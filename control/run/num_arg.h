/* Numbers on the command line, one parser for every command's flags: a bad number, an
 * overflow, inf or nan, a fraction where a count is needed, or a value out of range is
 * refused with one sentence naming the flag. */
#ifndef STROBE_NUM_ARG_H
#define STROBE_NUM_ARG_H
#include <stddef.h>

/* Parses `text`, the value of --`flag` (its name without dashes) of `cmd`, as a finite
 * number in [lo, hi]; with `whole`, a whole number. hi may be INFINITY (no upper bound but
 * finiteness). 0 with *out set, or 2 (the exit status for a bad command line) after one
 * sentence on stderr. */
int num_arg(const char *cmd, const char *flag, const char *text, double lo, double hi, int whole,
            double *out);
/* The same for a whole number kept exactly in 64 bits (e.g. a seed). */
int num_arg_int(const char *cmd, const char *flag, const char *text, long long lo, long long hi,
                long long *out);
/* The message num_arg would print (without "strobe CMD: " and the help hint), or "" when
 * text is good: for tests and for callers that print elsewhere. */
void num_arg_check(const char *flag, const char *text, double lo, double hi, int whole, char *why,
                   size_t n);

#endif
