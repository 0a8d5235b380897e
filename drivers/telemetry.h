/* The telemetry thread: samples every power source at a fixed rate and writes each reading
 * into the event log, on strobe's timeline, so the analysis integrates energy over exactly
 * the measured windows. A source that fails is recorded as failing and retried. */
#ifndef STROBE_TELEMETRY_H
#define STROBE_TELEMETRY_H
#include "eventlog.h"
#include "power.h"

struct telemetry;

/* producer: this thread's event-log producer index. NULL if nothing to sample. */
struct telemetry *telemetry_start(struct power_source *sources, int n, struct eventlog *log,
                                  int producer, double rate_hz);
/* Stops sampling (one last round first) and joins the thread. */
void telemetry_stop(struct telemetry *t);

#endif
