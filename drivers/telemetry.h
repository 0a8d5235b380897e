/* Telemetry, never on a worker's time: a power thread samples every power source at a fixed
 * rate and writes each reading into the event log, on strobe's timeline, so the analysis
 * integrates energy over exactly the measured windows; a scrape thread fetches the server's
 * metrics into the log at its own rate. Two threads, so that a server slow to answer its
 * /metrics (a scrape may wait seconds for its timeout) never delays a power sample. A source
 * that fails is recorded as failing and retried. */
#ifndef STROBE_TELEMETRY_H
#define STROBE_TELEMETRY_H
#include "eventlog.h"
#include "metrics_scrape.h"
#include "power.h"

/* The rates telemetry keeps to (per second); a rate outside is taken to the nearer bound, so
 * that the schedule's nanosecond sums cannot overflow. The flags refuse rates outside. */
#define TELEMETRY_MIN_HZ 0.01
#define TELEMETRY_MAX_HZ 1000.0

struct telemetry;

/* power_producer, scrape_producer: the power and the scrape thread's event-log producer
 * indices (one thread each, so they differ). scrape may be NULL. A rate that is not > 0 takes
 * the default (10 and 1 per second). NULL if there is nothing to sample, or (err set, else err
 * is "") if a thread cannot start; then none runs. */
struct telemetry *telemetry_start(struct power_source *sources, int n, double rate_hz,
                                  struct metrics_scrape *scrape, double scrape_rate_hz,
                                  struct eventlog *log, int power_producer, int scrape_producer,
                                  char *err, size_t errlen);
/* Stops sampling and joins the threads without waiting for the next sample, whatever the
 * rates: a scrape in flight is abandoned within about a second (and not logged). One last
 * power round first, and one last scrape when the previous one succeeded (each bounded by its
 * source's own timeout). */
void telemetry_stop(struct telemetry *t);

#endif
