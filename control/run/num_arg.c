#include "num_arg.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The bound a value broke, as "; the most is 1024"; "" when there is none. */
static void most(double hi, char *out, size_t n)
{
    if (isinf(hi))
        out[0] = 0;
    else
        snprintf(out, n, "; the most is %.17g", hi);
}

void num_arg_check(const char *flag, const char *text, double lo, double hi, int whole, char *why,
                   size_t n)
{
    const char *kind = whole ? "whole number" : "number";
    char cap[64];
    most(hi, cap, sizeof cap);
    why[0] = 0;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    int range_err = errno == ERANGE;
    const char *p = text;
    while (isspace((unsigned char)*p)) p++;
    if (end == text || *end || !*p) {
        snprintf(why, n, "--%s: '%s' is not a %s", flag, text, kind);
    } else if (isnan(v) || (isinf(v) && !range_err)) {
        /* strtod takes inf, infinity and nan: none is a value to run with */
        snprintf(why, n, "--%s: %s is not a finite number", flag, text);
    } else if (range_err && isinf(v)) {
        snprintf(why, n, "--%s: %s is too large (it overflows%s)", flag, text, cap);
    } else if (range_err && fabs(v) < 1) {
        snprintf(why, n,
                 "--%s: %s is too small to represent (it underflows); give a number from %.17g",
                 flag, text, lo);
    } else if (v < lo) {
        snprintf(why, n, "--%s: %s is not a %s >= %.17g", flag, text, kind, lo);
    } else if (v > hi) {
        /* a count given a value no integer holds: say it overflows */
        if (whole && v >= 9007199254740992.0)
            snprintf(why, n, "--%s: %s is too large (it overflows%s)", flag, text, cap);
        else
            snprintf(why, n, "--%s: %s is not a %s <= %.17g", flag, text, kind, hi);
    } else if (whole && v != floor(v)) {
        snprintf(why, n, "--%s: %s is not a whole number", flag, text);
    }
}

static int refuse(const char *cmd, const char *why)
{
    fprintf(stderr, "strobe %s: %s; see strobe %s --help.\n", cmd, why, cmd);
    return 2;
}

int num_arg(const char *cmd, const char *flag, const char *text, double lo, double hi, int whole,
            double *out)
{
    char why[400];
    num_arg_check(flag, text, lo, hi, whole, why, sizeof why);
    if (why[0]) return refuse(cmd, why);
    *out = strtod(text, NULL);
    return 0;
}

int num_arg_int(const char *cmd, const char *flag, const char *text, long long lo, long long hi,
                long long *out)
{
    /* plain digits: exact in 64 bits, where a double would round */
    const char *p = text;
    if (*p == '+' || *p == '-') p++;
    int digits = *p != 0;
    for (const char *q = p; *q; q++) digits &= *q >= '0' && *q <= '9';
    if (digits) {
        char *end;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        char why[400];
        if (errno == ERANGE) {
            snprintf(why, sizeof why, "--%s: %s is too large (it overflows; the most is %lld)",
                     flag, text, hi);
            return refuse(cmd, why);
        }
        if (v < lo || v > hi) {
            snprintf(why, sizeof why, "--%s: %s is not a whole number %s %lld", flag, text,
                     v < lo ? ">=" : "<=", v < lo ? lo : hi);
            return refuse(cmd, why);
        }
        *out = v;
        return 0;
    }
    /* 1e6 and the like: through the double parser, which refuses what is not whole */
    double v;
    int rc = num_arg(cmd, flag, text, (double)lo, (double)hi, 1, &v);
    if (rc) return rc;
    /* (double)hi may round up past hi: clamp what rounds to it */
    *out = v >= (double)hi ? hi : v <= (double)lo ? lo : (long long)v;
    return 0;
}
