/* The server's own view of a run: its Prometheus /metrics, fetched over HTTP (libcurl) by the
 * telemetry thread, never the dataplane, and written verbatim into the event log
 * (REC_SERVER_METRICS); the analysis parses it afterwards (analysis/server_series.h). */
#ifndef STROBE_METRICS_SCRAPE_H
#define STROBE_METRICS_SCRAPE_H
#include "eventlog.h"

#define METRICS_SCRAPE_MAX_BYTES (8u << 20) /* a larger exposition is refused, not cut */

struct metrics_scrape;

/* 0 when url is an http:// or https:// URL strobe can scrape; -1 with one sentence in err
 * otherwise. A URL holding credentials (USER:PASSWORD@HOST) is refused without echoing it. */
int metrics_scrape_url_check(const char *url, char *err, size_t errlen);
/* url: http(s)://... of the exposition (metrics_scrape_url_check's). One probe GET first: a
 * URL that does not answer 200 is an error (NULL, err says why and what to do). */
struct metrics_scrape *metrics_scrape_open(const char *url, int insecure, const char *ca_file,
                                           char *err, size_t errlen);
/* One GET, its text or its failure written to the log as producer `producer`: 1 (its text),
 * 0 (its failure); or -1 when *cancel (may be NULL) was set during it, which gives up within
 * about a second: abandoned, written as a failure only when the server had kept it waiting
 * for a second or more. */
int metrics_scrape_once(struct metrics_scrape *m, struct eventlog *log, int producer,
                        const _Atomic int *cancel);
const char *metrics_scrape_url(const struct metrics_scrape *m);
void metrics_scrape_close(struct metrics_scrape *m);

#endif
