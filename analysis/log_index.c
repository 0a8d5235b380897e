#include "log_index.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct phase_start {
    int phase;
    size_t first;
};

static struct {
    char path[PATH_MAX]; /* events.bin, and which file it was */
    dev_t dev;
    ino_t ino;
    char *header;   /* the log's header: a log written again over the same file differs */
    size_t scanned; /* records indexed, from the first */
    size_t *run, nrun, run_cap;
    struct phase_start *starts;
    size_t nstarts, starts_cap;
} cache;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static void forget(void)
{
    free(cache.header);
    free(cache.run);
    free(cache.starts);
    memset(&cache, 0, sizeof cache);
}

static int is_run_record(uint8_t type) { return !log_type_is_request(type); }

/* Indexes records [cache.scanned, lr->nrecords): the log only ever grows at its end. */
static int extend(const struct eventlog_reader *lr)
{
    for (size_t i = cache.scanned; i < lr->nrecords; i++) {
        const struct log_record *rec = &lr->records[i];
        if (is_run_record(rec->type)) {
            if (cache.nrun == cache.run_cap) {
                size_t cap = cache.run_cap ? cache.run_cap * 2 : 256;
                size_t *run = realloc(cache.run, cap * sizeof *run);
                if (!run) return -1;
                cache.run = run;
                cache.run_cap = cap;
            }
            cache.run[cache.nrun++] = i;
        } else if (rec->type == REC_REQUEST_SENT) {
            int phase = rec_request_sent_decode(rec).phase;
            size_t k;
            for (k = 0; k < cache.nstarts && cache.starts[k].phase != phase; k++) {
            }
            if (k < cache.nstarts) continue;
            if (cache.nstarts == cache.starts_cap) {
                size_t cap = cache.starts_cap ? cache.starts_cap * 2 : 64;
                struct phase_start *s = realloc(cache.starts, cap * sizeof *s);
                if (!s) return -1;
                cache.starts = s;
                cache.starts_cap = cap;
            }
            cache.starts[cache.nstarts++] = (struct phase_start){phase, i};
        }
    }
    cache.scanned = lr->nrecords;
    return 0;
}

/* The index still describes lr: the same header, and the records it names are still what they
 * were (a log written again over the same file would not be). */
static int still_valid(const struct eventlog_reader *lr)
{
    if (!cache.header || strcmp(cache.header, lr->header_json)) return 0;
    for (size_t k = 0; k < cache.nrun; k++)
        if (!is_run_record(lr->records[cache.run[k]].type)) return 0;
    for (size_t k = 0; k < cache.nstarts; k++) {
        const struct log_record *rec = &lr->records[cache.starts[k].first];
        if (rec->type != REC_REQUEST_SENT ||
            rec_request_sent_decode(rec).phase != cache.starts[k].phase)
            return 0;
    }
    return 1;
}

int log_index_phase(const char *dir, const struct eventlog_reader *lr, int phase, size_t **run,
                    size_t *nrun, size_t *first)
{
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/events.bin", dir);
    int known = !stat(path, &st);
    pthread_mutex_lock(&cache_lock);
    /* another log, the same log written again, or a log that cannot be told apart */
    if (!known || strcmp(path, cache.path) || st.st_dev != cache.dev || st.st_ino != cache.ino ||
        lr->nrecords < cache.scanned || !still_valid(lr)) {
        forget();
        snprintf(cache.path, sizeof cache.path, "%s", known ? path : "");
        cache.dev = known ? st.st_dev : 0;
        cache.ino = known ? st.st_ino : 0;
        cache.header = strdup(lr->header_json);
    }
    int rc = extend(lr);
    *first = lr->nrecords;
    for (size_t k = 0; !rc && k < cache.nstarts; k++)
        if (cache.starts[k].phase == phase) *first = cache.starts[k].first;
    *nrun = cache.nrun;
    *run = rc ? NULL : malloc((cache.nrun ? cache.nrun : 1) * sizeof **run);
    if (*run) memcpy(*run, cache.run, cache.nrun * sizeof **run);
    if (!*run) rc = -1;
    if (rc || !known) forget(); /* an unknown file is never trusted next time */
    pthread_mutex_unlock(&cache_lock);
    return rc;
}
