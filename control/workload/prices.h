/* The price of an accelerator-hour for the cost figures: --price-per-hour, else the price
 * table (--prices FILE, else the table compiled into strobe from control/workload/prices.json),
 * 1-year committed price by default (the seed formula), on-demand on request or, without a
 * basis, when no committed price is known; "committed" asked for and not known is refused.
 * A table price must be a positive, finite number (or null: unknown), and the table one JSON
 * value with nothing after it. */
#ifndef STROBE_PRICES_H
#define STROBE_PRICES_H
#include <stddef.h>

struct price {
    double usd_per_accelerator_hour;
    char basis[32]; /* "committed-1y", "on-demand" or "given" */
    char source[256];
    char taken[128];
};

/* basis: "committed", "on-demand" or NULL (none given). 0, or -1 with one sentence in err. */
int price_lookup(const char *accelerator, const char *prices_file, const char *basis,
                 double given_usd_per_hour, struct price *out, char *err, size_t errlen);

#endif
