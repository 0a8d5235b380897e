/* Per-request timings a server reports in its stream (llama.cpp's "timings" object in the last
 * chunk: prompt_ms, the prompt's processing, and predicted_ms, the generation), read from a
 * request's last data event after the run, once per request. They give the server's own
 * prefill and decode time beside strobe's TTFT and decode window for the same request. */
#ifndef STROBE_SERVER_TIMINGS_H
#define STROBE_SERVER_TIMINGS_H
#include <stddef.h>

/* 1 with both times (milliseconds) when data holds a "timings" object with numeric
 * prompt_ms and predicted_ms; else 0. */
int server_timings_read(const char *data, size_t len, double *prompt_ms, double *predicted_ms);

#endif
