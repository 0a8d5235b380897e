/* The telemetry thread: samples every power source at a fixed rate and writes each reading
 * into the event log, on strobe's timeline, so the analysis integrates energy over exactly
 * the measured windows; and, at its own rate, scrapes the server's metrics into the log. A
 * source that fails is recorded as failing and retried. Never on a worker's time. */
#ifndef STROBE_TELEMETRY_H
#define STROBE_TELEMETRY_H
#include "eventlog.h"
#include "metrics_scrape.h"
#include "power.h"

struct telemetry;

/* producer: this thread's event-log producer index. scrape may be NULL. NULL if there is
 * nothing to sample, or (err set, else err is "") if its thread cannot start. */
struct telemetry *telemetry_start(struct power_source *sources, int n, double rate_hz,
                                  struct metrics_scrape *scrape, double scrape_rate_hz,
                                  struct eventlog *log, int producer, char *err, size_t errlen);
/* Stops sampling (one last round first) and joins the thread. */
void telemetry_stop(struct telemetry *t);

#endif
