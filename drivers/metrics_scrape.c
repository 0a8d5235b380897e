#include "metrics_scrape.h"

#include "clock.h"
#include "http_body.h"
#include "log_records.h"
#include "must_alloc.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL_MAX 1024

struct metrics_scrape {
    CURL *curl;
    char url[URL_MAX];
    struct http_body body;
    const _Atomic int *cancel; /* metrics_scrape_once's, during it */
};

/* libcurl calls this while it transfers or waits (about once a second when nothing comes):
 * non-zero aborts the GET, so that stopping does not wait for a stuck server's timeout. */
static int progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                    curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    struct metrics_scrape *m = arg;
    return m->cancel && atomic_load(m->cancel);
}

int metrics_scrape_url_check(const char *url, char *err, size_t errlen)
{
    const char *p = !strncmp(url, "http://", 7)    ? url + 7
                    : !strncmp(url, "https://", 8) ? url + 8
                                                   : NULL;
    if (!p) {
        snprintf(err, errlen,
                 "--server-metrics needs an http:// or https:// URL (or auto), not '%s'", url);
        return -1;
    }
    /* the authority ends at the path, query or fragment; an '@' inside it ends userinfo */
    if (memchr(p, '@', strcspn(p, "/?#"))) {
        /* not echoed: what comes before '@' is a password, and the URL is printed and stored
         * with the run */
        snprintf(err, errlen,
                 "--server-metrics holds credentials (USER:PASSWORD@HOST), which strobe would "
                 "print and keep in the run's files: give the URL without them");
        return -1;
    }
    if (strlen(url) >= URL_MAX) {
        snprintf(err, errlen,
                 "--server-metrics: the URL is longer than %d characters; give a shorter one",
                 URL_MAX - 1);
        return -1;
    }
    return 0;
}

/* One GET: the HTTP status (0 without a response), the timing, and in why a failure's cause. */
static long fetch(struct metrics_scrape *m, int64_t *t_mid, int64_t *took, char *why, size_t wl)
{
    http_body_reset(&m->body);
    int64_t t0 = clock_now_ns();
    CURLcode rc = curl_easy_perform(m->curl);
    int64_t t1 = clock_now_ns();
    *t_mid = t0 + (t1 - t0) / 2;
    *took = t1 - t0;
    long status = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(m->curl, CURLINFO_RESPONSE_CODE, &status);
    if (m->body.too_big)
        snprintf(why, wl, "%s: the exposition is larger than %u MiB", m->url,
                 METRICS_SCRAPE_MAX_BYTES >> 20);
    else if (rc != CURLE_OK)
        snprintf(why, wl, "%s: %s", m->url, curl_easy_strerror(rc));
    else if (status != 200)
        snprintf(why, wl, "%s: HTTP %ld", m->url, status);
    return m->body.too_big ? 0 : status;
}

struct metrics_scrape *metrics_scrape_open(const char *url, int insecure, const char *ca_file,
                                           char *err, size_t errlen)
{
    if (metrics_scrape_url_check(url, err, errlen)) return NULL;
    struct metrics_scrape *m = must_calloc(1, sizeof *m, "the /metrics scrape");
    snprintf(m->url, sizeof m->url, "%s", url);
    m->curl = curl_easy_init();
    curl_easy_setopt(m->curl, CURLOPT_URL, m->url);
    m->body.max = METRICS_SCRAPE_MAX_BYTES;
    curl_easy_setopt(m->curl, CURLOPT_WRITEFUNCTION, http_body_collect);
    curl_easy_setopt(m->curl, CURLOPT_WRITEDATA, &m->body);
    curl_easy_setopt(m->curl, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(m->curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(m->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(m->curl, CURLOPT_ACCEPT_ENCODING, ""); /* gzip when the server offers it */
    curl_easy_setopt(m->curl, CURLOPT_XFERINFOFUNCTION, progress);
    curl_easy_setopt(m->curl, CURLOPT_XFERINFODATA, m);
    curl_easy_setopt(m->curl, CURLOPT_NOPROGRESS, 0L);
    if (insecure) {
        curl_easy_setopt(m->curl, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(m->curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (ca_file) curl_easy_setopt(m->curl, CURLOPT_CAINFO, ca_file);
    int64_t t, took;
    char why[400] = "";
    if (fetch(m, &t, &took, why, sizeof why) != 200) {
        snprintf(err, errlen,
                 "the server's metrics could not be read (%s): check the URL given to "
                 "--server-metrics, or start the server with its metrics on (SGLang: "
                 "--enable-metrics, llama.cpp: --metrics), or leave --server-metrics out",
                 why);
        metrics_scrape_close(m);
        return NULL;
    }
    return m;
}

int metrics_scrape_once(struct metrics_scrape *m, struct eventlog *log, int producer,
                        const _Atomic int *cancel)
{
    int64_t t, took;
    char why[400] = "";
    m->cancel = cancel;
    long status = fetch(m, &t, &took, why, sizeof why);
    m->cancel = NULL;
    int cancelled = status != 200 && cancel && atomic_load(cancel);
    /* a GET cut short by the cancel is not the server's failure, unless the server had kept
     * it waiting a second already (a /metrics answer takes milliseconds): that one is counted
     * failed, so that a server that stopped answering is not reported as never failing */
    if (cancelled && took < 1000000000LL) return -1;
    if (cancelled)
        snprintf(why, sizeof why, "%s: no answer after %.1f s, when the run ended", m->url,
                 (double)took / 1e9);
    struct log_record rec = rec_server_metrics_encode(
        &(struct rec_server_metrics){.t = t, .took_ns = took, .status = (int)status});
    if (status == 200)
        eventlog_put(log, producer, &rec, m->body.p, m->body.len);
    else
        eventlog_put(log, producer, &rec, why, strlen(why));
    return cancelled ? -1 : status == 200;
}

const char *metrics_scrape_url(const struct metrics_scrape *m) { return m->url; }

void metrics_scrape_close(struct metrics_scrape *m)
{
    if (!m) return;
    if (m->curl) curl_easy_cleanup(m->curl);
    http_body_free(&m->body);
    free(m);
}
