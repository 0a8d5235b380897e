#include "log_ship.h"

#include "eventlog.h"
#include "ranks.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (1u << 20)

static const char *const files[2] = {"events.bin", "bodies.bin"};

static int64_t file_size(const char *dir, const char *name)
{
    char path[4400];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) ? 0 : (int64_t)st.st_size;
}

int log_ship_send(const char *dir, char *err, size_t errlen)
{
    int64_t have[2], want[2];
    for (int i = 0; i < 2; i++) have[i] = file_size(dir, files[i]);
    if (ranks_send(0, RTAG_FILE, have, sizeof have, err, errlen) ||
        ranks_recv(0, RTAG_FILE, want, sizeof want, 600, err, errlen))
        return -1;
    char *buf = malloc(CHUNK);
    int rc = 0;
    for (int i = 0; i < 2 && !rc; i++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        int fd = open(path, O_RDONLY);
        for (int64_t at = want[i]; fd >= 0 && at < have[i] && !rc;) {
            size_t n = have[i] - at < CHUNK ? (size_t)(have[i] - at) : CHUNK;
            ssize_t got = pread(fd, buf, n, at);
            if (got <= 0) {
                snprintf(err, errlen, "cannot read %s to send it to rank 0: %s", path,
                         got ? strerror(errno) : "it shrank");
                rc = -1;
                break;
            }
            rc = ranks_send(0, RTAG_FILE, buf, (size_t)got, err, errlen);
            at += got;
        }
        if (fd >= 0) close(fd);
    }
    free(buf);
    return rc;
}

/* Whether dir's log is this run's (its header names run_id). */
static int same_run(const char *dir, const char *run_id)
{
    char lerr[256];
    struct eventlog_reader *lr = eventlog_open(dir, lerr, sizeof lerr);
    if (!lr) return 0;
    cJSON *h = cJSON_Parse(lr->header_json);
    eventlog_reader_close(lr);
    const cJSON *id =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(h, "ranks"), "run_id");
    int same = cJSON_IsString(id) && !strcmp(id->valuestring, run_id);
    cJSON_Delete(h);
    return same;
}

int log_ship_take(const char *out, int k, const char *run_id, double wait_s, char *err,
                  size_t errlen)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/rank-%d", out, k);
    int64_t have[2], seen[2];
    if (ranks_recv(k, RTAG_FILE, have, sizeof have, wait_s, err, errlen)) return -1;
    int ours = same_run(dir, run_id);
    for (int i = 0; i < 2; i++) {
        seen[i] = ours ? file_size(dir, files[i]) : 0;
        if (seen[i] > have[i]) seen[i] = have[i];
    }
    if (ranks_send(k, RTAG_FILE, seen, sizeof seen, err, errlen)) return -1;
    if (seen[0] == have[0] && seen[1] == have[1]) return 0;
    mkdir(dir, 0755);
    char *buf = malloc(CHUNK);
    int rc = 0;
    for (int i = 0; i < 2 && !rc; i++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        int fd = open(path, O_WRONLY | O_CREAT | (seen[i] ? 0 : O_TRUNC), 0644);
        if (fd < 0) {
            snprintf(err, errlen, "cannot write rank %d's %s into %s: %s", k, files[i], dir,
                     strerror(errno));
            rc = -1;
        }
        for (int64_t at = seen[i]; !rc && at < have[i];) {
            size_t n = 0;
            if (ranks_recv_any_len(k, RTAG_FILE, buf, CHUNK, &n, wait_s, err, errlen)) {
                rc = -1;
                break;
            }
            if (pwrite(fd, buf, n, at) != (ssize_t)n) {
                snprintf(err, errlen, "cannot write rank %d's %s into %s: %s", k, files[i], dir,
                         strerror(errno));
                rc = -1;
            }
            at += (int64_t)n;
        }
        if (fd >= 0) close(fd);
    }
    free(buf);
    return rc;
}
