/* The Prometheus text parser and the server-series mapping on any input: an exposition is a
 * server's output, outside strobe's control. Each input is read as two scrapes (its first and
 * second half) and summarised over a window, as the analysis does; ASan/UBSan catch the rest. */
#include "prom_text.h"
#include "server_series.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void touch(const struct prom_sample *s, void *arg)
{
    size_t *n = arg;
    *n += s->name.len + s->family.len;
    for (int i = 0; i < s->nlabels; i++) *n += s->label_name[i].len + s->label_value[i].len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes: a read past the end is caught */
    char *text = malloc(size ? size : 1);
    memcpy(text, data, size);
    size_t n = 0;
    prom_parse(text, size, touch, &n);
    struct server_metrics m = {0};
    server_metrics_take(&m, 1, text, size / 2);
    server_metrics_take(&m, 2, text + size / 2, size - size / 2);
    struct server_window w;
    server_metrics_window(&m, 0, 3, &w);
    server_metrics_free(&m);
    free(text);
    return 0;
}
